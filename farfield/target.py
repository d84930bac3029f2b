"""Which talker is the target (the one the device should listen to).

Both classes plug into :class:`~farfield.frontend.Frontend` as its target policy (``update(rows, time_s) ->
track_id``):

- :class:`LoudestTalker`: track level, no diarization: the active track with the highest steered power, with
  hysteresis (another track must be ``switch_margin_db`` louder for ``hold_s``), kept through pauses for ``keep_s``;
- :class:`TargetSelector`: speaker level, fed by the online diarizer: enrolled voice, direction sector, nearest
  talker and an external trigger, combinable, with playback (TV / radio) rejection.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ._validate import check_settings, finite_or_nan
from .geometry import azimuth_difference_deg, mean_azimuth_deg
from .playback import EARLY_PLAYBACK_FROM_S, PlaybackZones

_BUSY_DEG = 20.0  # a new track this close to one that was talking before a cue does not answer it
_LABEL_MOVED_DEG = 10.0  # a track farther than this from where it last spoke with a label may be someone else
_NEAREST_MIN_UPDATES = 15  # about 0.5 s of a track's speech before its level counts for ``nearest``
_SECTOR_SAME_DEG = 10.0  # speech in the sector this close to where its most central talker speaks is theirs
_SECTOR_PEAK_DEG = 5  # half width of the window that finds where talkers speak in the sector (1-deg bins)
_RUN_RECENT_S = 0.5  # where a track speaks now: the mean of its directions over this much of its current run
_LOCK_PLACE_S = 1.0  # where a person is: the mean direction of the first this-many seconds of a run of speech (the
# lock's first run; an enrolled person's current run): the tracker may hand the track to someone beside them within it
_DIR_ALPHA = 0.03  # smoothing of track directions per localizer update (about 1 s at 31 updates/s)
_HEARD_TAU_S = 5.0  # time constant of the share of updates in which the tracker reports a track
_HEARD_SHARE = 0.6  # a track reported in more of them before a cue cannot take a settling lock (a TV), nor be
# chosen by level alone before playback_min_s
_SOUNDING_HITS = 2  # a track detected this often in the trigger_quiet_s before a cue was making sound already
_ECHO_DB = (-3.0, 10.0)  # after a cue that gives no direction, a voice that answers it cannot take the lock while
# a voice that cannot answer it (it was talking before the cue) and started again after the cue talks from elsewhere
# at a level this far above it (from 3 dB under to 10 dB over): a wall reflection of that voice
_DETECTION_MEMORY_S = 10.0  # detection times are kept this long beyond trigger_quiet_s (a wake word's length)
_TRACK_MEMORY_S = 10.0  # what is known of a track is kept this long after it was last reported or heard: the
# tracker stops reporting a silent track but revives it, with its id, for up to its ``forget_s`` (6 s by default)


def _or_zero(x: float) -> float:
    return 0.0 if math.isnan(x) else x


class LoudestTalker:
    """Target = loudest active track, with hysteresis.

    ``update(rows, time_s) -> track_id | None`` with the tracker rows of one localizer update.
    """

    def __init__(self, *, switch_margin_db: float = 3.0, hold_s: float = 0.5, keep_s: float = 2.0) -> None:
        self.switch_margin_db, self.hold_s, self.keep_s = float(switch_margin_db), float(hold_s), float(keep_s)
        self.reset()

    def reset(self) -> None:
        self.target: int | None = None
        self._last_seen = -1e9
        self._challenger: int | None = None
        self._challenge_since = 0.0

    def update(self, rows, time_s: float) -> int | None:
        power = {r.track_id: r.power_db for r in rows}
        if self.target in power:
            self._last_seen = time_s
        elif self.target is not None and time_s - self._last_seen > self.keep_s:
            self.target = None
        if not power:
            return self.target
        best = max(power, key=power.get)
        if self.target is None:
            self.target, self._last_seen, self._challenger = best, time_s, None
        elif best != self.target and power[best] > power.get(self.target, -1e9) + self.switch_margin_db:
            if self._challenger != best:
                self._challenger, self._challenge_since = best, time_s
            elif time_s - self._challenge_since >= self.hold_s:
                self.target, self._last_seen, self._challenger = best, time_s, None
        else:
            self._challenger = None
        return self.target


class TargetSelector:
    """Which talker is addressing the device, from combinable policies, with playback rejection.

    Candidates are the *tracks* the diarizer hears speech on now, each with its speaker label (``None`` until the
    diarizer has labelled the segment, about ``label_after_s``): a talker can become the target as soon as their
    voice activity starts, and when the diarizer gives one label to two tracks (a person and a TV the embeddings
    cannot tell apart) the target is still one place, not every place the label was heard.

    Policies (give any combination; scores add up among the candidates):

    - ``enrolled``: a name (or list of names) of enrolled people: +3 when such a person talks (a track keeps the
      label of its last labelled segment while a new segment is being labelled, also after a pause in which the
      tracker stopped reporting it, so the target starts with the person's first words; not when it speaks
      10 deg or more from where it last spoke with that label: the tracker may have handed it to someone else). Not
      while the track speaks (the mean of its directions over the last 0.5 s) more than 10 deg from where its
      current run of speech began (the mean over the run's first second): the tracker may hand it to someone
      beside the person within one run, and the diarizer's segment goes on with the person's name;
    - ``sector``: ``(centre_az_deg, half_width_deg)``: +2 inside the sector (e.g. in front of the robot). With
      ``exclusive``, only its most central talker: speech in the sector counts only within 10 deg of where the
      talker nearest its centre spoke over the last ``nearest_memory_s`` (a direction at which 0.5 s of its speech
      lies within 5 deg), judged by where a track has spoken over the last 0.5 s of its current run. A person at
      the sector's edge, whom the tracker often places a few degrees inside it, is then not the target while the
      person facing the device has spoken in that time, also when the tracker carries both on one track;
    - ``nearest``: the talker nearest the device, ranked by level and direct-to-reverberant ratio: the upper
      quartile of its tracks' steered power while they spoke, over the last ``nearest_memory_s``, plus
      ``nearest_cdr_weight`` times the median of their coherent-to-diffuse ratio (``TrackRow.cdr_db``, dB) over the
      same updates. Near talkers are louder, but voices differ in level; they are also less reverberant, whatever
      their level. +1 for the nearest candidate, +0.5 for the next; a track not heard for ``0.5 s`` yet is ranked
      by its power and ratio now (a ratio the rows do not carry counts as 0 dB);
    - ``trigger``: after :meth:`trigger` (a vision cue, a button: a cue that comes before the person speaks) lock on
      whoever starts speaking first after the cue, if their speech is detected within ``trigger_window_s``. Not a track
      that was talking already (a TV), nor one heard in the ``trigger_quiet_s`` before the cue, nor one the localizer
      detected twice or more in that time (the VAD's onsets lag by up to a second, so a TV that resumed just before the
      cue is new to it), nor a new track within 20 deg of such a track (the tracker re-identified a source that was
      talking). Nor, when the cue gives no direction, a voice that is less than 3 dB louder and less than 10 dB quieter
      than such a track that started speaking again after the cue: a wall reflection of that voice gets a track of its
      own, which looks like an answer (a much quieter voice is someone else). The lock holds until that track has been
      silent ``lock_timeout_s`` (the tracker keeps a talker's id through pauses). The locked track is the target only
      while it speaks within ``cue_hold_deg`` of where it spoke at the start of the lock's first run of speech (the mean
      of its directions over the first second of that run; the rest of that run and each later run are judged by the
      mean over their last 0.5 s): the tracker may hand the track to a talker beside the person or to a TV, also within
      one run of speech, and the lock stays, for when the person speaks on it again. A wake word is different: its
      speaker is already talking when the detector fires, so give when it began, ``trigger(end_s,
      spoken_from_s=start_s)``: the lock goes to whoever started speaking at the wake word's start (the same rules,
      counted from ``spoken_from_s``), at once when such a track spoke during the wake word, even if its voice activity
      has paused by the call (the loudest such track: a wall reflection of the speaker's voice starts with it, on a
      track of its own); else to a voice whose onset is detected within ``wake_word_lag_s`` after ``end_s`` (the VAD and
      the tracker stamp an onset 0.1-0.4 s late), not to one that starts later: someone who answers the person after the
      wake word did not say it (0.2 s instead of the cue's 1.5 s window: 85.5 -> 91.4 % of the wake word's target time
      right on the benchmark's rooms, 88.4 -> 97.6 % on held-out ones). ``require_trigger=True`` (a wake-word device):
      nobody is the target outside a lock; the target ends when the lock times out, not ``keep_s`` later (the tracker
      may give the silent track to someone else, such as a TV, meanwhile). The cue's 1.5 s window keeps a voice that
      only starts later (phantom tracks on a wall reflection of the TV, other talkers) from taking a lock whose
      addressee the tracker missed; where cues come just before speech, a shorter one keeps out more of them (0.8 s:
      84.9 -> 87.7 % of the trigger's target time right on the benchmark's rooms, whose cues come 0.3 s before the
      addressee speaks), but then nobody who starts later than about half a second after the cue is locked on. After a
      cue (not a wake word), for ``trigger_settle_s`` after the lock is taken, a louder voice that answers the cue as
      well (same rules) takes it over: a reflection's track is sometimes born a moment before the addressee's own, and
      it is quieter (a talker who answers later and louder is someone else: hence half a second). Not a track the
      tracker reported in more than 60 % of the updates of the seconds before the cue (a time constant of 5 s), though:
      a TV that the diarizer had not heard for a moment. ``trigger_settle_s=0`` turns it off. A cue may say where it saw
      the person, ``trigger(time_s, direction_deg=az)`` (a camera's face direction, in the array's azimuth): then only a
      track within ``cue_width_deg`` of that direction can take the lock, settling moves it only to a track nearer that
      direction, whoever else starts speaking, and the locked track is the target only while it speaks (its direction
      now) within ``cue_hold_deg`` of that direction, instead of where it spoke first.

    ``startup_s`` (default 5 s, when the playback rules start judging): for this long after the first update, nobody
    becomes the target by level alone (``nearest``, or no policy), only by a selective policy or a lock: a voice
    heard from start-up may be a TV that the playback rules cannot judge yet. After it, until ``playback_min_s``
    (when the rules are judged in full), a track the tracker reported in more than 60 % of the updates of the
    seconds before (a time constant of 5 s; a TV, while people take turns) is not chosen by level alone either. The
    levels are recorded meanwhile. ``startup_s=0`` turns both off (short clips).

    ``exclusive`` (default): when a selective policy is given (``enrolled``, ``sector``, ``require_trigger``, or
    a lock is held), only talkers who meet one of them can be the target; while none of them talks there is no
    target (after ``keep_s``), rather than whoever else is talking. When the target's track speaks and does not
    qualify (another label, outside the sector or away from its most central talker: the tracker handed it to someone
    else nearby, or to a TV), the target goes at once, not after ``keep_s``. With
    ``nearest`` alone, only the nearest talker heard in the last ``nearest_memory_s`` (or a track within 20 deg of
    where they were) can be the target: a farther person speaking in between is a bystander. ``exclusive=False``:
    the policies only rank.

    Playback rejection (always on): tracks in a playback zone (:class:`~farfield.playback.PlaybackZones`, from the
    ``playback_*`` settings: a direction where a source goes on being detected while others are heard, as a TV or
    radio does, and people taking turns do not) are never chosen, by their direction smoothed over about a second or
    by their direction now (on a small array a track born on a person beside a TV can be pulled onto the TV). Known
    limit: a TV can still be chosen in its first seconds by a selective policy (a TV in the sector; ``startup_s``
    keeps level alone from choosing it).

    ``update(rows, time_s)`` (the :class:`~farfield.frontend.Frontend` target-policy call) returns the target
    *track*; its speaker label is :attr:`target`. Call :meth:`observe` after each block with the diarizer's
    :meth:`~farfield.diarize.OnlineDiarizer.speaking_tracks`. Each change of target track or label raises a
    ``target_changed`` event.
    """

    def __init__(self, *, enrolled=None, sector: tuple[float, float] | None = None, nearest: bool = True,
                 trigger_window_s: float = 1.5, trigger_quiet_s: float = 1.5, lock_timeout_s: float = 3.0,
                 keep_s: float = 2.0, playback_window_s: float = 60.0, playback_fraction: float = 0.45,
                 playback_overlap: float = 0.15, playback_width_deg: float = 10.0, playback_min_s: float = 15.0,
                 playback_slot_fraction: float = 0.8, playback_masked: float = 0.1,
                 hold_s: float = 0.3, exclusive: bool = True, require_trigger: bool = False,
                 nearest_memory_s: float = 30.0, trigger_settle_s: float = 0.5, cue_width_deg: float = 20.0,
                 cue_hold_deg: float = 10.0, startup_s: float = EARLY_PLAYBACK_FROM_S,
                 wake_word_lag_s: float = 0.2, nearest_cdr_weight: float = 0.5) -> None:
        check_settings("TargetSelector", trigger_window_s=trigger_window_s, trigger_quiet_s=trigger_quiet_s,
                       wake_word_lag_s=wake_word_lag_s,
                       trigger_settle_s=trigger_settle_s,
                       lock_timeout_s=lock_timeout_s, keep_s=keep_s, playback_window_s=playback_window_s,
                       playback_min_s=playback_min_s, hold_s=hold_s, nearest_memory_s=nearest_memory_s,
                       playback_overlap=playback_overlap, startup_s=startup_s)
        check_settings("TargetSelector", high=1.0, playback_fraction=playback_fraction,
                       playback_slot_fraction=playback_slot_fraction, playback_masked=playback_masked)
        check_settings("TargetSelector", high=180.0, playback_width_deg=playback_width_deg, cue_width_deg=cue_width_deg,
                       cue_hold_deg=cue_hold_deg)
        if sector is not None and (len(sector) != 2 or not 0 < sector[1] <= 180):
            raise ValueError(f"TargetSelector: sector must be (centre_az_deg, half_width_deg) with a half width in "
                             f"(0, 180], got {sector!r}")
        self.enrolled = {enrolled} if isinstance(enrolled, str) else set(enrolled or ())
        self.sector = sector
        self.nearest = bool(nearest)
        if not (math.isfinite(nearest_cdr_weight) and nearest_cdr_weight >= 0):
            raise ValueError(f"TargetSelector: nearest_cdr_weight must be a finite number >= 0 (dB of level per dB of "
                             f"coherent-to-diffuse ratio), got {nearest_cdr_weight!r}")
        self.nearest_cdr_weight = float(nearest_cdr_weight)
        self.exclusive, self.require_trigger = bool(exclusive), bool(require_trigger)
        self.nearest_memory_s = float(nearest_memory_s)
        self.trigger_window_s, self.lock_timeout_s, self.keep_s = trigger_window_s, lock_timeout_s, keep_s
        self.wake_word_lag_s = float(wake_word_lag_s)
        self.trigger_quiet_s, self.trigger_settle_s = float(trigger_quiet_s), float(trigger_settle_s)
        self.cue_width_deg, self.cue_hold_deg = float(cue_width_deg), float(cue_hold_deg)
        self.playback = PlaybackZones(window_s=playback_window_s, fraction=playback_fraction,
                                      overlap=playback_overlap, width_deg=playback_width_deg, min_s=playback_min_s,
                                      slot_fraction=playback_slot_fraction, masked=playback_masked)
        self.hold_s = hold_s
        self.startup_s = float(startup_s)
        self.reset()

    def reset(self) -> None:
        self.target: str | None = None
        self._target_track: int | None = None
        self._last_target_s = -1e9
        self._trigger_s: float | None = None  # onsets at or after this answer the pending cue
        self._trigger_deadline = -1e9  # ... if detected by then
        self._locked_track: int | None = None
        self._locked_last_s = -1e9
        self._lock_taken: tuple[float, float] | None = None  # (when the lock was taken, the cue it answered)
        self._settle = False  # the pending trigger is a cue before speech: its lock may settle on a louder voice
        self._cue_dir: float | None = None  # where the pending cue saw the person (azimuth, degrees), if it says
        self._lock_run: float | None = None  # onset of the locked track's first run of speech under the lock
        self._lock_place: float | None = None  # where it spoke in that run (mean azimuth, degrees)
        self._speaking: dict[int, str | None] = {}
        self._track_label: dict[int, str] = {}  # the last label each track carried
        self._label_at: dict[int, float] = {}  # ... and its azimuth when it last spoke with a label
        self._track_dir: dict[int, complex] = {}  # smoothed unit direction of each track
        self._track_seen: dict[int, float] = {}  # when each track was last reported or heard speaking
        self._reported: dict[int, float] = {}  # share of recent updates reporting each track (_HEARD_TAU_S)
        self._reported_s: float | None = None  # time of the update the shares are for
        self._heard: set[int] = set()  # tracks with a share above _HEARD_SHARE at the last cue
        self.playback_tracks: set[int] = set()  # tracks in a playback zone at the last update
        # per track: (time_s, power_db, azimuth, cdr_db) while it spoke (nearest_memory_s)
        self._levels: dict[int, deque] = {}
        self._nearest: tuple[int, float] | None = None  # the nearest talker's track and its last azimuth
        # speech heard in the sector over nearest_memory_s: (time_s, 1-deg bin of its offset from the centre), and
        # the count per bin
        self._sector_speech: deque = deque()
        self._sector_counts = np.zeros(2 * math.ceil(self.sector[1]) + 1 if self.sector is not None else 0)
        self._central: float | None = None  # where the talker nearest the sector's centre speaks (azimuth), if any
        self._onset: dict[int, float] = {}  # when each track was first seen speaking in its latest run
        self._last_spoke: dict[int, float] = {}  # when each track was last seen speaking
        self._prev_end: dict[int, float] = {}  # when each track's run before the latest one was last heard
        self._busy: set[int] = set()  # tracks that spoke within trigger_quiet_s before the last cue
        self._busy_dirs: list[complex] = []  # their smoothed directions at the cue
        self._detected: dict[int, deque] = {}  # per track: times of its recent detections (not coasting rows)
        self.playback.reset()
        self._events: list = []
        self._challenger: tuple[int, float] | None = None
        self._now = 0.0
        self._first_s: float | None = None  # time of the first update (start-up)

    @property
    def locked(self) -> bool:
        return self._locked_track is not None

    def trigger(self, time_s: float, *, spoken_from_s: float | None = None, direction_deg: float | None = None) -> None:
        """An external cue at ``time_s``: lock on the next person to start speaking (a gaze, a button). For a wake
        word heard from ``spoken_from_s`` to ``time_s``: lock on the person who started speaking when it began.
        ``direction_deg``: where the cue saw the person (azimuth in the array's frame, e.g. a camera's face
        direction): only a track within ``cue_width_deg`` of it can take the lock."""
        start = float(time_s) if spoken_from_s is None else float(spoken_from_s)
        if not (math.isfinite(start) and math.isfinite(time_s)) or start > time_s:
            raise ValueError(f"trigger: spoken_from_s must be a finite time at or before time_s ({time_s!r}), "
                             f"got {spoken_from_s!r}")
        direction = None if direction_deg is None else finite_or_nan(direction_deg)
        if direction is not None and not math.isfinite(direction):
            raise ValueError(f"trigger: direction_deg must be a finite azimuth in degrees or None, got "
                             f"{direction_deg!r}")
        self._cue_dir = direction
        window = self.trigger_window_s if spoken_from_s is None else self.wake_word_lag_s
        self._trigger_s, self._trigger_deadline = start, float(time_s) + window
        self._locked_track, self._lock_taken = None, None
        self._settle = spoken_from_s is None  # a cue before speech, not a wake word
        # tracks heard shortly before the cue are talking already (a TV), not answering it; onsets are stamped
        # when detected, so a track whose latest run began after ``start`` counts by the run before it
        quiet_from = start - self.trigger_quiet_s
        self._heard = {t for t, share in self._reported.items() if share > _HEARD_SHARE}
        self._busy = {t for t, last in self._last_spoke.items()
                      if (self._prev_end.get(t, -1e9) if self._onset.get(t, -1e9) >= start else last) >= quiet_from}
        # ... or located there: the VAD's onsets lag by up to a second, so a voice that resumed just before the cue
        # (a TV after a short gap) looks new to it, while the localizer has been detecting it
        self._busy |= {t for t, times in self._detected.items()
                       if sum(quiet_from <= x < start for x in times) >= _SOUNDING_HITS}
        # ... and so is a new track where they are: the tracker may re-id a source that was talking
        self._busy_dirs = [self._track_dir[t] for t in self._busy if t in self._track_dir]
        if spoken_from_s is not None:
            # a wake word: whoever started speaking during it said it, even if the VAD has paused on them
            # by now (else a voice that only starts after the call, such as a TV's, takes the lock)
            said = [t for t in self._answering(dict.fromkeys(self._last_spoke), start)
                    if self._last_spoke[t] >= start and t not in self.playback_tracks]
            if said:
                # the loudest of them: a wall reflection of the speaker's voice starts with it, on a track of its own
                loudest = max(said, key=lambda t: (self._peak_db(t, start, time_s), -self._onset[t]))
                self._lock_on(loudest, float(time_s))
                self._trigger_s = None

    def observe(self, speaking_tracks: dict[int, str | None], time_s: float | None = None) -> None:
        """The diarizer's ``{track_id: speaker or None}`` of the tracks with speech now (``time_s``: now, which
        dates the onsets the trigger lock needs; by default the time of the last :meth:`update`)."""
        now = self._now if time_s is None else float(time_s)
        before, self._speaking = self._speaking, dict(speaking_tracks)
        self._track_label.update({t: lab for t, lab in self._speaking.items() if lab is not None})
        for t in self._speaking:
            if t not in before:  # a new run of speech
                if t in self._last_spoke:
                    self._prev_end[t] = self._last_spoke[t]
                self._onset[t] = now
        self._last_spoke.update(dict.fromkeys(self._speaking, now))

    def pop_events(self) -> list:
        ev, self._events = self._events, []
        return ev

    def playback_zones(self, now_s: float | None = None) -> list[float]:
        """Azimuths (deg) of the playback zones now; ``now_s`` is for the minimum history (default: the time of the
        last update)."""
        return self.playback.zones(self._now if now_s is None else now_s)

    def is_playback(self, azimuth_deg: float, now_s: float) -> bool:
        """Whether ``azimuth_deg`` is in a playback zone at ``now_s``."""
        return self.playback.contains(azimuth_deg, self.playback_zones(now_s))

    # -- choosing ----------------------------------------------------------------------------------------------
    def update(self, rows, time_s: float) -> int | None:
        self._now = time_s
        if self._first_s is None:
            self._first_s = float(time_s)
        by_id = {r.track_id: r for r in rows}
        if rows:
            self.playback.record(rows, time_s)
        zones = self.playback_zones(time_s)
        for r in rows:  # each track's direction, smoothed over about a second (peaks wobble on small arrays)
            u = np.exp(1j * np.radians(r.azimuth_deg))
            self._track_dir[r.track_id] = self._track_dir.get(r.track_id, u) * (1 - _DIR_ALPHA) + u * _DIR_ALPHA
        heading = {tid: float(np.degrees(np.angle(self._track_dir[tid]))) for tid in by_id}
        self._label_at.update({t: by_id[t].azimuth_deg for t, lab in self._speaking.items()
                               if lab is not None and t in by_id})
        # forget dead tracks: those neither reported nor heard for _TRACK_MEMORY_S (a track the tracker revives
        # keeps its label, direction and speaking history; levels stay for nearest_memory_s)
        self._track_seen.update(dict.fromkeys(set(by_id) | set(self._speaking), time_s))
        for r in rows:
            if getattr(r, "detected", True):
                self._detected.setdefault(r.track_id, deque()).append(time_s)
        for tid, times in list(self._detected.items()):
            while times and times[0] < time_s - self.trigger_quiet_s - _DETECTION_MEMORY_S:
                times.popleft()
            if not times:
                del self._detected[tid]
        if self._reported_s is not None:
            a = math.exp(-(time_s - self._reported_s) / _HEARD_TAU_S)
            for tid in set(self._reported) | set(by_id):
                self._reported[tid] = a * self._reported.get(tid, 0.0) + (1.0 - a) * (tid in by_id)
        self._reported_s = time_s
        for tid in [t for t, seen in self._track_seen.items() if time_s - seen > _TRACK_MEMORY_S]:
            del self._track_seen[tid]
        for d in (self._track_dir, self._track_label, self._label_at, self._last_spoke, self._onset, self._prev_end,
                  self._reported):
            for tid in [t for t in d if t not in self._track_seen]:
                del d[tid]
        # in a zone: by the smoothed direction, or by the direction now (a track born beside a TV can be pulled
        # onto it faster than its smoothed direction follows)
        self.playback_tracks = {tid for tid in by_id if self.playback.contains(heading[tid], zones)
                                or self.playback.contains(by_id[tid].azimuth_deg, zones)}
        if self._target_track in self.playback_tracks:
            self._set(None, time_s)  # the target turned out to be a TV: drop it now, not after keep_s
        cands = {tid: by_id[tid] for tid in self._speaking if tid in by_id and tid not in self.playback_tracks}
        closeness = self._closeness(cands, time_s)
        self._update_lock(cands, by_id, time_s)
        away = False  # the locked track speaks away from the locked person (the cue's direction, or where first heard)
        if self.locked:
            cands = {t: r for t, r in cands.items() if t == self._locked_track}
            if cands and self._away_from_lock(by_id[self._locked_track], time_s):
                # the tracker handed the track to someone beside them: not the target while it speaks from there
                # (the lock stays: the person may come back on it)
                cands, away = {}, True
                if self._target_track is not None:
                    self._set(None, time_s)
        elif self.exclusive and (self.enrolled or self.sector is not None or self.require_trigger):
            cands = {t: r for t, r in cands.items() if self._qualifies(t, r)}
            gone = self._target_track in by_id and self._target_track not in cands
            if gone and self._target_track in self._speaking:
                # the target's track speaks and does not qualify (someone else's voice, outside the sector, away from
                # its most central talker): not a pause
                self._set(None, time_s)
        elif self.exclusive and self.nearest and self._nearest is not None:
            tid, az = self._nearest
            cands = {t: r for t, r in cands.items() if t == tid or azimuth_difference_deg(heading[t], az) <= 20.0}
        since = time_s - self._first_s
        if not self.locked and self.startup_s > 0 and since < max(self.startup_s, self.playback.min_s):
            # not by level alone in the first seconds (a voice heard from start-up may be a TV not judged yet), nor,
            # until the playback rules are judged in full, a voice reported nearly all the time (a TV)
            cands = {t: r for t, r in cands.items() if self._qualifies(t, r)
                     or (since >= self.startup_s and self._reported.get(t, 0.0) <= _HEARD_SHARE)}
        choice = None
        if cands:
            score = dict.fromkeys(cands, 0.0)
            for t in cands:
                if self._is_enrolled(t, cands[t]):
                    score[t] += 3.0
                if self._in_sector(cands[t]):
                    score[t] += 2.0
            if self.nearest:
                for k, t in enumerate(sorted(cands, key=lambda t: -closeness[t])[:2]):
                    score[t] += (1.0, 0.5)[k]
            choice = max(score, key=score.get)
            if self._target_track in cands and score[self._target_track] >= score[choice]:
                choice = self._target_track  # the current target keeps it on a tie
        elif self.locked and not away:
            choice = self._locked_track  # the lock holds through the locked person's pauses
        if choice is None:
            if self._target_track is not None and time_s - self._last_target_s > self.keep_s:
                self._set(None, time_s)
            return self._target_track
        self._last_target_s = time_s
        if choice != self._target_track:
            if self._target_track in cands and not self.locked:
                # hysteresis: a challenger must win for hold_s while the current target still talks
                if self._challenger is None or self._challenger[0] != choice:
                    self._challenger = (choice, time_s)
                    return self._target_track
                if time_s - self._challenger[1] < self.hold_s:
                    return self._target_track
            self._set(choice, time_s)
        elif self._speaking.get(choice) not in (None, self.target):
            self._set(choice, time_s)  # the target's segment got its label
        self._challenger = None
        return self._target_track

    def _update_lock(self, cands: dict, by_id: dict, time_s: float) -> None:
        """Keep, drop, take or settle the lock (see the class notes) from the candidates now (``cands``: rows by
        track, outside playback zones; ``by_id``: every row now)."""
        # the lock: the locked track stays the only candidate until it has been silent for the timeout
        if self.locked:
            if self._locked_track in cands:
                self._locked_last_s = time_s
            elif time_s - self._locked_last_s > self.lock_timeout_s:
                if self.require_trigger and self._target_track == self._locked_track:
                    self._set(None, time_s)  # nobody is the target outside a lock: not for keep_s more either
                self._locked_track = None
            if self._locked_track in self.playback_tracks:
                self._locked_track = None  # locked on what turned out to be a TV
        if self._trigger_s is not None and not self.locked:
            # whoever starts speaking after the cue: not a track that was already talking (a TV)
            fresh = self._answering(cands, self._trigger_s)
            if self._cue_dir is None:
                # a voice that was talking before the cue and starts again after it cannot answer; its wall
                # reflection gets a new track that looks like an answer
                held = [cands[t].power_db for t in cands
                        if t not in fresh and self._onset.get(t, -1e9) >= self._trigger_s]
                fresh = [t for t in fresh if not any(_ECHO_DB[0] < db - cands[t].power_db < _ECHO_DB[1] for db in held)]
            if fresh and time_s <= self._trigger_deadline:
                self._lock_on(min(fresh, key=lambda t: (self._onset[t], -cands[t].power_db)), time_s)
                self._lock_taken = (time_s, self._trigger_s) if self._settle else None
                self._trigger_s = None
            elif time_s > self._trigger_deadline:
                self._trigger_s = None
        elif self.locked and self._lock_taken is not None and time_s <= self._lock_taken[0] + self.trigger_settle_s:
            # settling: a louder voice that answers the same cue takes the lock (the first was a reflection)
            locked_db = by_id[self._locked_track].power_db if self._locked_track in by_id else -math.inf
            louder = [t for t in self._answering(cands, self._lock_taken[1]) if cands[t].power_db > locked_db
                      and t not in self._heard]
            if self._cue_dir is not None:
                # the cue said where the person is: only a voice nearer to it (a talker beside the addressee, who
                # answers a moment later, is louder as often as not)
                off = self._off_cue(self._locked_track, by_id)
                louder = [t for t in louder if self._off_cue(t, by_id) < off]
            if louder:
                self._lock_on(max(louder, key=lambda t: cands[t].power_db), time_s)

    def _answering(self, cands: dict, cue_s: float) -> list[int]:
        """The candidates that answer a cue at ``cue_s``: their speech began after it, neither they nor a track
        within ``_BUSY_DEG`` of where they are was talking in the ``trigger_quiet_s`` before it, and they are
        within ``cue_width_deg`` of the cue's direction, if it gave one (``cands``: rows by track, or ``None`` for
        a track not reported now: its smoothed direction counts then)."""
        def near_busy(t: int) -> bool:
            u = self._track_dir.get(t)
            return u is not None and any(abs(np.angle(u * np.conj(b), deg=True)) <= _BUSY_DEG for b in self._busy_dirs)

        rows = {t: r for t, r in cands.items() if r is not None}
        return [t for t in cands if self._onset.get(t, -1e9) >= cue_s and t not in self._busy and not near_busy(t)
                and (self._cue_dir is None or self._off_cue(t, rows) <= self.cue_width_deg)]

    def _peak_db(self, track: int, since: float, until: float) -> float:
        """The loudest detected update of ``track`` while it spoke from ``since`` to ``until`` (dB; -inf if none)."""
        return max((p for t, p, *_ in self._levels.get(track, ()) if since <= t <= until), default=-math.inf)

    def _closeness(self, cands: dict, time_s: float) -> dict[int, float]:
        """Record the level and coherent-to-diffuse ratio of the tracks speaking now (outside playback zones),
        forget those older than ``nearest_memory_s``, find the nearest talker (``self._nearest = (track, azimuth)``
        or ``None``) and the sector's most central talker (``self._central``), and return each candidate's
        closeness: the upper quartile of its speech's power plus ``nearest_cdr_weight`` times the median of its
        ratio, or the same of its row now while it has little speech."""
        w = self.nearest_cdr_weight
        for tid, r in cands.items():
            if getattr(r, "detected", True):
                self._levels.setdefault(tid, deque()).append((time_s, r.power_db, r.azimuth_deg,
                                                              getattr(r, "cdr_db", math.nan)))
        close = {}
        for tid in list(self._levels):
            q = self._levels[tid]
            while q and q[0][0] < time_s - self.nearest_memory_s:
                q.popleft()
            if not q or tid in self.playback_tracks:
                del self._levels[tid]
            elif len(q) >= _NEAREST_MIN_UPDATES:
                level = float(np.percentile([p for _, p, *_ in q], 75))
                cdr = [c for *_, c in q if not math.isnan(c)]
                close[tid] = level + (w * float(np.median(cdr)) if cdr else 0.0)
        if close:
            tid = max(close, key=close.get)
            self._nearest = (tid, self._levels[tid][-1][2])
        else:
            self._nearest = None
        if self.sector is not None:
            self._find_central(cands, time_s)
        return {t: close[t] if t in close else r.power_db + w * _or_zero(getattr(r, "cdr_db", math.nan))
                for t, r in cands.items()}

    def _find_central(self, cands: dict, time_s: float) -> None:
        """Record the speech heard in the sector (over ``nearest_memory_s``) and find where its most central talker
        speaks: of the directions (1-deg bins) where at least ``_NEAREST_MIN_UPDATES`` updates of speech lie within
        ``_SECTOR_PEAK_DEG`` and no neighbour has more, the one nearest the centre. By direction, not by track: the
        tracker may carry two talkers 20 deg apart on one track."""
        centre, half = self.sector[0], len(self._sector_counts) // 2
        for r in cands.values():
            if getattr(r, "detected", True) and self._in_sector(r):
                off = float(np.angle(np.exp(1j * np.radians(r.azimuth_deg - centre)), deg=True))
                b = min(max(round(off) + half, 0), 2 * half)
                self._sector_speech.append((time_s, b))
                self._sector_counts[b] += 1
        while self._sector_speech and self._sector_speech[0][0] < time_s - self.nearest_memory_s:
            self._sector_counts[self._sector_speech.popleft()[1]] -= 1
        self._central = None
        if len(self._sector_speech) < _NEAREST_MIN_UPDATES:
            return
        near = np.convolve(self._sector_counts, np.ones(2 * _SECTOR_PEAK_DEG + 1), mode="same")
        padded = np.concatenate(([-1.0], near, [-1.0]))
        peaks = np.flatnonzero((near >= _NEAREST_MIN_UPDATES) & (near >= padded[:-2]) & (near >= padded[2:]))
        if len(peaks):
            self._central = centre + float(peaks[np.argmin(np.abs(peaks - half))] - half)

    def _speaks_at(self, track: int, row, time_s: float) -> float:
        """Where ``track`` speaks now: the mean direction of its speech over the last ``_RUN_RECENT_S`` of its
        current run (its direction now when it has none)."""
        return self._mean_direction(track, max(self._onset.get(track, time_s), time_s - _RUN_RECENT_S), row)

    def _directions(self, track: int, since: float, until: float = math.inf) -> list[float]:
        """The directions (azimuths, degrees) of ``track``'s recorded speech from ``since`` to ``until``."""
        az = []
        for t, _, a, _ in reversed(self._levels.get(track, ())):  # time order: only the recent end, not 30 s of it
            if t < since:
                break
            if t <= until:
                az.append(a)
        return az

    def _mean_direction(self, track: int, since: float, row) -> float:
        """The mean direction (azimuth, degrees) of ``track``'s recorded speech from ``since`` on (its ``row``'s
        direction when it has none)."""
        az = self._directions(track, since)
        return mean_azimuth_deg(az) if az else row.azimuth_deg

    def _moved_in_run(self, track: int, row) -> bool:
        """Whether ``track`` (speaking; ``row``: its row now) speaks farther than ``_LABEL_MOVED_DEG`` from where its
        current run of speech began (the mean of its directions over the run's first ``_LOCK_PLACE_S``): the
        tracker may hand a track to someone beside the person within one run, and the diarizer's segment, labelled
        from its start, goes on."""
        onset = self._onset.get(track)
        if onset is None or track not in self._speaking or self._now - onset <= _LOCK_PLACE_S:
            return False
        start = self._directions(track, onset, onset + _LOCK_PLACE_S)
        return bool(start) and azimuth_difference_deg(self._speaks_at(track, row, self._now),
                                                      mean_azimuth_deg(start)) > _LABEL_MOVED_DEG

    def _qualifies(self, track: int, row) -> bool:
        """Whether ``track`` (its ``row`` now) meets a selective policy: an enrolled person, or in the sector and
        speaking within ``_SECTOR_SAME_DEG`` of where the sector's most central talker speaks."""
        return self._is_enrolled(track, row) or (self._in_sector(row) and not self._off_central(track, row))

    def _off_central(self, track: int, row) -> bool:
        """Whether ``track`` (its ``row`` now) speaks farther than ``_SECTOR_SAME_DEG`` from where the sector's most
        central talker speaks."""
        return (self._central is not None
                and azimuth_difference_deg(self._speaks_at(track, row, self._now), self._central) > _SECTOR_SAME_DEG)

    def _is_enrolled(self, track: int, row) -> bool:
        """Whether ``track`` (its ``row`` now) speaks as an enrolled person: by its label now, or while its new
        segment is being labelled by the label it carried last, if it has not moved ``_LABEL_MOVED_DEG`` from
        where it last spoke with it (a track that moved farther was more likely handed to someone else); and not
        once it speaks farther than ``_LABEL_MOVED_DEG`` from where its current run of speech began."""
        label = self._speaking.get(track)
        if label is None and azimuth_difference_deg(row.azimuth_deg,
                                                    self._label_at.get(track, row.azimuth_deg)) < _LABEL_MOVED_DEG:
            label = self._track_label.get(track)
        return label is not None and label in self.enrolled and not self._moved_in_run(track, row)

    def _lock_on(self, track: int, time_s: float) -> None:
        """Lock on ``track``, taken at ``time_s`` by its current run of speech."""
        self._locked_track, self._locked_last_s = track, time_s
        self._lock_place = None  # learnt from its first run under the lock (_away_from_lock)

    def _away_from_lock(self, row, time_s: float) -> bool:
        """Whether the locked track (speaking now; ``row``: its row now) speaks farther than ``cue_hold_deg`` from
        the locked person: from the cue's direction, if it gave one; else from where the track spoke at the start of
        the lock's first run of speech (its mean direction over the first ``_LOCK_PLACE_S`` of that run)."""
        track = self._locked_track
        if self._cue_dir is not None:
            return self._off_cue(track, {track: row}) > self.cue_hold_deg
        onset = self._onset.get(track, time_s)
        if self._lock_place is None or (onset == self._lock_run and time_s - onset <= _LOCK_PLACE_S):
            # the start of the lock's first run: learn where the person is
            self._lock_run, self._lock_place = onset, self._mean_direction(track, onset, row)
            return False
        return azimuth_difference_deg(self._speaks_at(track, row, time_s), self._lock_place) > self.cue_hold_deg

    def _off_cue(self, track: int | None, by_id: dict) -> float:
        """Degrees between a track (its direction now, else its smoothed one) and the pending or locked cue's
        direction; infinite when the track's direction is unknown."""
        if track in by_id:
            az = by_id[track].azimuth_deg
        elif track in self._track_dir:
            az = float(np.degrees(np.angle(self._track_dir[track])))
        else:
            return math.inf
        return float(azimuth_difference_deg(az, self._cue_dir))

    def _in_sector(self, row) -> bool:
        return self.sector is not None and azimuth_difference_deg(row.azimuth_deg, self.sector[0]) <= self.sector[1]

    def _set(self, track: int | None, time_s: float) -> None:
        from .diarize import Event

        speaker = None if track is None else self._speaking.get(track)
        if track is not None and speaker is None and track == self._target_track:
            speaker = self.target
        self._events.append(Event(time_s, "target_changed", speaker, track,
                                  {"previous": self.target, "previous_track": self._target_track}))
        self.target, self._target_track = speaker, track

