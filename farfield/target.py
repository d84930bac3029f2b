"""Which talker is the target (the one the device should listen to).

Both classes plug into :class:`~farfield.frontend.Frontend` as its target policy (``update(rows, time_s) ->
track_id``):

- :class:`LoudestTalker`: track level, no diarization: the active track with the highest steered power, with
  hysteresis (another track must be ``switch_margin_db`` louder for ``hold_s``), kept through pauses for ``keep_s``;
- :class:`TargetSelector`: speaker level, fed by the online diarizer: enrolled voice, direction sector, nearest
  talker and an external trigger, combinable, with playback (TV / radio) rejection.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .geometry import azimuth_difference_deg


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

    - ``enrolled``: a name (or list of names) of enrolled people: +3 when such a person talks;
    - ``sector``: ``(centre_az_deg, half_width_deg)``: +2 inside the sector (e.g. in front of the robot);
    - ``nearest``: +1 for the loudest talker (steered power; near talkers are louder and less reverberant),
      +0.5 for the second;
    - ``trigger``: after :meth:`trigger` (a wake word, a vision cue, a button) lock on whoever starts speaking
      first within ``trigger_window_s`` (not a track that was talking already, such as a TV): that track (the
      tracker keeps a talker's id through pauses). The lock holds until that track has been silent
      ``lock_timeout_s``.

    Playback rejection (always on): a direction where a track has carried speech for more than
    ``playback_fraction`` of the last ``playback_window_s`` is a playback zone (a TV or radio plays on; people take
    turns and fall silent); tracks there are never chosen. Zones are judged once ``playback_min_s`` of history
    has been seen.

    ``update(rows, time_s)`` (the :class:`~farfield.frontend.Frontend` target-policy call) returns the target
    *track*; its speaker label is :attr:`target`. Call :meth:`observe` after each block with the diarizer's
    :meth:`~farfield.diarize.OnlineDiarizer.speaking_tracks`. Each change of target track or label raises a
    ``target_changed`` event.
    """

    def __init__(self, *, enrolled=None, sector: tuple[float, float] | None = None, nearest: bool = True,
                 trigger_window_s: float = 4.0, lock_timeout_s: float = 3.0, keep_s: float = 2.0,
                 playback_window_s: float = 20.0, playback_fraction: float = 0.7, playback_width_deg: float = 10.0,
                 playback_min_s: float = 10.0, hold_s: float = 0.3) -> None:
        self.enrolled = {enrolled} if isinstance(enrolled, str) else set(enrolled or ())
        self.sector = sector
        self.nearest = bool(nearest)
        self.trigger_window_s, self.lock_timeout_s, self.keep_s = trigger_window_s, lock_timeout_s, keep_s
        self.playback_window_s, self.playback_fraction = playback_window_s, playback_fraction
        self.playback_width_deg = playback_width_deg
        self.playback_min_s = min(float(playback_min_s), float(playback_window_s))
        self.hold_s = hold_s
        self.reset()

    def reset(self) -> None:
        self.target: str | None = None
        self._target_track: int | None = None
        self._last_target_s = -1e9
        self._trigger_s: float | None = None
        self._locked_track: int | None = None
        self._locked_last_s = -1e9
        self._speaking: dict[int, str | None] = {}
        self._onset: dict[int, float] = {}  # when each speaking track was first seen speaking (this run)
        self._history: deque = deque()  # (time_s, azimuth of each speaking track)
        self._events: list = []
        self._challenger: tuple[int, float] | None = None
        self._now = 0.0

    @property
    def locked(self) -> bool:
        return self._locked_track is not None

    def trigger(self, time_s: float) -> None:
        """An external cue (wake word, gaze, button) at ``time_s``: lock on the next person to speak."""
        self._trigger_s = float(time_s)
        self._locked_track = None

    def observe(self, speaking_tracks: dict[int, str | None], time_s: float | None = None) -> None:
        """The diarizer's ``{track_id: speaker or None}`` of the tracks with speech now (``time_s``: now, which
        dates the onsets the trigger lock needs; by default the time of the last :meth:`update`)."""
        now = self._now if time_s is None else float(time_s)
        self._speaking = dict(speaking_tracks)
        self._onset = {t: self._onset.get(t, now) for t in self._speaking}

    def pop_events(self) -> list:
        ev, self._events = self._events, []
        return ev

    # -- playback zones ----------------------------------------------------------------------------------------
    def playback_zones(self, now_s: float) -> list[float]:
        """Azimuths (deg) where a track carried speech for more than ``playback_fraction`` of the recent window."""
        while self._history and self._history[0][0] < now_s - self.playback_window_s:
            self._history.popleft()
        if not self._history or now_s - self._history[0][0] < self.playback_min_s:
            return []
        bins = np.zeros(360 // 5)
        for _, azs in self._history:
            hit = np.zeros(bins.size, bool)
            for a in azs:
                c = int(round(a / 5)) % bins.size
                for d in (-1, 0, 1):
                    hit[(c + d) % bins.size] = True
            bins += hit
        frac = bins / len(self._history)
        return [k * 5.0 for k in np.flatnonzero(frac > self.playback_fraction)]

    def is_playback(self, azimuth_deg: float, now_s: float) -> bool:
        return self._in_zones(azimuth_deg, self.playback_zones(now_s))

    def _in_zones(self, azimuth_deg: float, zones: list[float]) -> bool:
        return any(azimuth_difference_deg(azimuth_deg, z) <= self.playback_width_deg for z in zones)

    # -- choosing ----------------------------------------------------------------------------------------------
    def update(self, rows, time_s: float) -> int | None:
        self._now = time_s
        by_id = {r.track_id: r for r in rows}
        if rows:
            self._history.append((time_s, [r.azimuth_deg for r in rows if r.track_id in self._speaking]))
        zones = self.playback_zones(time_s)
        cands = {tid: by_id[tid] for tid in self._speaking
                 if tid in by_id and not self._in_zones(by_id[tid].azimuth_deg, zones)}
        # the lock: the locked track stays the only candidate until it has been silent for the timeout
        if self.locked:
            if self._locked_track in cands:
                self._locked_last_s = time_s
            elif time_s - self._locked_last_s > self.lock_timeout_s:
                self._locked_track = None
            if self._locked_track in by_id and self._in_zones(by_id[self._locked_track].azimuth_deg, zones):
                self._locked_track = None  # locked on what turned out to be a TV
        if self._trigger_s is not None and not self.locked:
            # whoever starts speaking after the cue: not a track that was already talking (a TV)
            fresh = [t for t in cands if self._onset.get(t, -1e9) >= self._trigger_s]
            if fresh and time_s - self._trigger_s <= self.trigger_window_s:
                self._locked_track = min(fresh, key=lambda t: (self._onset[t], -cands[t].power_db))
                self._locked_last_s = time_s
                self._trigger_s = None
            elif time_s - self._trigger_s > self.trigger_window_s:
                self._trigger_s = None
        if self.locked:
            cands = {t: r for t, r in cands.items() if t == self._locked_track}
        choice = None
        if cands:
            score = dict.fromkeys(cands, 0.0)
            for t in cands:
                if self._speaking[t] in self.enrolled:
                    score[t] += 3.0
                if self.sector is not None:
                    c, w = self.sector
                    if azimuth_difference_deg(cands[t].azimuth_deg, c) <= w:
                        score[t] += 2.0
            if self.nearest:
                for k, t in enumerate(sorted(cands, key=lambda t: -cands[t].power_db)[:2]):
                    score[t] += (1.0, 0.5)[k]
            choice = max(score, key=score.get)
            if self._target_track in cands and score[self._target_track] >= score[choice]:
                choice = self._target_track  # the current target keeps it on a tie
        elif self.locked:
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

    def _set(self, track: int | None, time_s: float) -> None:
        from .diarize import Event

        speaker = None if track is None else self._speaking.get(track)
        if track is not None and speaker is None and track == self._target_track:
            speaker = self.target
        self._events.append(Event(time_s, "target_changed", speaker, track,
                                  {"previous": self.target, "previous_track": self._target_track}))
        self.target, self._target_track = speaker, track

