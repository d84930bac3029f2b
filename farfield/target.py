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
    """Which *speaker* is addressing the device, from combinable policies, with playback rejection.

    Policies (give any combination; scores add up among the speakers talking now):

    - ``enrolled``: a name (or list of names) of enrolled people: +3 when such a person talks;
    - ``sector``: ``(centre_az_deg, half_width_deg)``: +2 inside the sector (e.g. in front of the robot);
    - ``nearest``: +1 for the loudest talker (steered power; near talkers are louder and less reverberant),
      +0.5 for the second;
    - ``trigger``: after :meth:`trigger` (a wake word, a vision cue, a button) lock on whoever speaks first
      within ``trigger_window_s``; the lock holds until that person has been silent ``lock_timeout_s``.

    Playback rejection (always on): a direction that has carried speech for more than ``playback_fraction`` of the
    last ``playback_window_s`` is a playback zone (a TV or radio plays on; people take turns); speakers there
    are never chosen.

    Candidates are tracks, each with the speaker label the diarizer gave it: when one label is on two tracks (a
    person and a TV the embeddings cannot tell apart), the playback track is still rejected by its direction and
    the other one can still be chosen.

    ``update(rows, time_s)`` (the :class:`~farfield.frontend.Frontend` target-policy call) returns the *track*
    of the target speaker; the speaker itself is :attr:`target`. Call :meth:`observe` after each block with the
    diarizer's :meth:`~farfield.diarize.OnlineDiarizer.speaking_tracks`.
    """

    def __init__(self, *, enrolled=None, sector: tuple[float, float] | None = None, nearest: bool = True,
                 trigger_window_s: float = 4.0, lock_timeout_s: float = 3.0, keep_s: float = 2.0,
                 playback_window_s: float = 20.0, playback_fraction: float = 0.7, playback_width_deg: float = 10.0,
                 hold_s: float = 0.3) -> None:
        self.enrolled = {enrolled} if isinstance(enrolled, str) else set(enrolled or ())
        self.sector = sector
        self.nearest = bool(nearest)
        self.trigger_window_s, self.lock_timeout_s, self.keep_s = trigger_window_s, lock_timeout_s, keep_s
        self.playback_window_s, self.playback_fraction = playback_window_s, playback_fraction
        self.playback_width_deg = playback_width_deg
        self.hold_s = hold_s
        self.reset()

    def reset(self) -> None:
        self.target: str | None = None
        self._target_track: int | None = None
        self._last_target_s = -1e9
        self._trigger_s: float | None = None
        self._locked: str | None = None
        self._locked_last_s = -1e9
        self._speaking: dict[int, str] = {}
        self._rows: dict[int, object] = {}
        self._history: deque = deque()  # (time_s, azimuth of each speaking track)
        self._events: list = []
        self._challenger: tuple[str, float] | None = None
        self._period = 0.0

    def trigger(self, time_s: float) -> None:
        """An external cue (wake word, gaze, button) at ``time_s``: lock on the next person to speak."""
        self._trigger_s = float(time_s)
        self._locked = None

    def observe(self, speaking_tracks: dict[int, str]) -> None:
        """The diarizer's ``{track_id: speaker}`` of tracks labelled and talking now."""
        self._speaking = dict(speaking_tracks)

    def pop_events(self) -> list:
        ev, self._events = self._events, []
        return ev

    # -- playback zones ----------------------------------------------------------------------------------------
    def playback_zones(self, now_s: float) -> list[float]:
        """Azimuths (deg) that carried speech for more than ``playback_fraction`` of the recent window."""
        while self._history and self._history[0][0] < now_s - self.playback_window_s:
            self._history.popleft()
        if not self._history or now_s - self._history[0][0] < 0.5 * self.playback_window_s:
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
        return any(azimuth_difference_deg(azimuth_deg, z) <= self.playback_width_deg
                   for z in self.playback_zones(now_s))

    # -- choosing ----------------------------------------------------------------------------------------------
    def update(self, rows, time_s: float) -> int | None:
        self._rows = {r.track_id: r for r in rows}
        self._history.append((time_s, [r.azimuth_deg for r in rows if r.track_id in self._speaking]))
        cands = {tid: self._rows[tid] for tid in self._speaking
                 if tid in self._rows and not self.is_playback(self._rows[tid].azimuth_deg, time_s)}
        speakers = {self._speaking[tid] for tid in cands}
        if self._locked is not None:
            if self._locked in speakers:
                self._locked_last_s = time_s
            elif time_s - self._locked_last_s > self.lock_timeout_s:
                self._locked = None
        if self._trigger_s is not None and self._locked is None and cands:
            if time_s - self._trigger_s <= self.trigger_window_s:
                self._locked = self._speaking[max(cands, key=lambda t: cands[t].power_db)]
                self._locked_last_s = time_s
                self._trigger_s = None
            elif time_s - self._trigger_s > self.trigger_window_s:
                self._trigger_s = None
        if self._locked is not None:
            cands = {t: r for t, r in cands.items() if self._speaking[t] == self._locked}
        choice_track = None
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
            choice_track = max(score, key=score.get)
            mine = [t for t in cands if self._speaking[t] == self.target]
            if mine and max(score[t] for t in mine) >= score[choice_track]:
                choice_track = max(mine, key=score.get)  # the current target keeps it on a tie
        if choice_track is not None:
            choice = self._speaking[choice_track]
        elif self._locked is not None:
            choice = self._locked  # the lock holds through the locked person's pauses
        else:
            if self.target is not None and time_s - self._last_target_s > self.keep_s:
                self._set(None, None, time_s)
            return self._target_track
        self._last_target_s = time_s
        if choice != self.target:
            if self.target is not None and self.target in speakers and self._locked is None:
                # hysteresis: a challenger must win for hold_s
                if self._challenger is None or self._challenger[0] != choice:
                    self._challenger = (choice, time_s)
                    return self._target_track
                if time_s - self._challenger[1] < self.hold_s:
                    return self._target_track
            self._set(choice, choice_track, time_s)
        elif choice_track is not None:
            self._target_track = choice_track
        self._challenger = None
        return self._target_track

    def _set(self, speaker: str | None, track: int | None, time_s: float) -> None:
        from .diarize import Event

        self._events.append(Event(time_s, "target_changed", speaker, track, {"previous": self.target}))
        self.target, self._target_track = speaker, track
