"""Which tracked talker is the target (the one the device should listen to).

:class:`LoudestTalker` is the basic policy: the active track with the highest steered power, with hysteresis so
the target does not flicker (another track must be ``switch_margin_db`` louder for ``hold_s``), kept through
short pauses for ``keep_s``. Richer policies (enrolled voice, direction sector, wake-word lock, playback
rejection) belong to the diarization stage and plug in through the same ``update(rows, time_s)`` call.
"""

from __future__ import annotations


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
