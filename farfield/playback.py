"""Playback zones: the directions where a TV or radio plays, from the localizer's detections alone.

A TV or radio plays on from one place whether or not people talk, while people take turns. Two rules mark a
direction (5-deg azimuth bins) as a playback zone:

- the update rule: over the last ``window_s``, a source was detected there (within ``width_deg``) in more than
  ``fraction`` of the localizer's updates, *and* it goes on being detected while another direction is heard: its
  detection rate in updates with a detection elsewhere (20 deg or more away, so that a TV with a talker on each
  side 20-30 deg away still passes) is at least ``overlap`` times its rate in updates without, and another
  direction was heard in at least 10 % of the updates (a person talking on alone, whose wall reflection is detected
  now and then, does not pass). The zone sits at the peak of the detection rate; the other tests may pass there or
  one 5-deg bin beside it. A person holding the floor mostly passes the first test but not the second. Before
  ``min_s`` of history, from 5 s on, it is judged with stricter tests (a detection rate above 0.6, an overlap
  ratio of at least 0.3): a TV plays from the start;
- the slot rule: a source was detected there in more than ``slot_fraction`` of the 1-s slots of the window
  (judged once 30 s of slots are in it) and it was missing while another direction was heard in at least
  ``masked`` of the updates: small arrays often lose a TV for the length of each turn of a louder talker, so the
  overlap test fails, but the TV comes back within every second or two, while a person in a conversation is
  silent for whole turns.

Known limit: two people who talk at once much of the time can look like a TV and a person.
``benchmarks/playback_zones.py`` replays simulated rooms through these rules; the figures, and those behind each
rule, are in ``benchmarks/EXPERIMENTS.md``. :class:`~farfield.target.TargetSelector` keeps one
:class:`PlaybackZones` (its ``playback_*`` settings) and never chooses a track in a zone.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ._validate import check_settings
from .geometry import azimuth_difference_deg

_N_BINS = 72  # 5-deg azimuth bins of the playback statistics
_BIN_CENTRES = np.arange(_N_BINS) * 5.0
_OTHER_DEG = 20.0  # a detection this far from a bin is "another direction" (at 30, a TV flanked by two talkers
# 22-26 deg away never became a playback zone)
_OTHERS_MIN = 0.1  # the update rule needs another direction heard in this share of the window's updates
EARLY_PLAYBACK_FROM_S = 5.0  # before min_s, the update rule is judged from this much history on ...
_EARLY_FRACTION = 0.6  # ... with a detection rate above this (fraction after) ...
_EARLY_OVERLAP = 0.3  # ... and an overlap ratio of at least this (overlap after)
_SLOT_S = 1.0  # the time slots of the slot rule
_SLOT_MIN_S = 30.0  # ... judged once this much history is in the window (at 15 s it marked a talker now and then)


class PlaybackZones:
    """The playback zones of one stream of localizer updates (see the module notes).

    Feed :meth:`record` every update's tracker rows (only rows with ``detected`` true, or without that field,
    count); :meth:`zones` gives the zones' azimuths (deg) now. Memory is bounded by the window: one row of 4 x 72
    counts per update in it, and one of 72 per 1-s slot. The settings are :class:`~farfield.target.TargetSelector`'s
    ``playback_*`` options.
    """

    def __init__(self, *, window_s: float = 60.0, fraction: float = 0.45, overlap: float = 0.15,
                 width_deg: float = 10.0, min_s: float = 15.0, slot_fraction: float = 0.8, masked: float = 0.1) -> None:
        check_settings("PlaybackZones", window_s=window_s, overlap=overlap, min_s=min_s)
        check_settings("PlaybackZones", high=1.0, fraction=fraction, slot_fraction=slot_fraction, masked=masked)
        check_settings("PlaybackZones", high=180.0, width_deg=width_deg)
        self.window_s, self.fraction, self.overlap = float(window_s), float(fraction), float(overlap)
        self.width_deg = float(width_deg)
        self.min_s = min(float(min_s), self.window_s)
        self.slot_fraction, self.masked = float(slot_fraction), float(masked)
        self.reset()

    def reset(self) -> None:
        # per localizer update: (time_s, per 5-deg bin: detection within width_deg, detection >= 20 deg away); and
        # their running sums over the window
        self._history: deque = deque()
        self._sums = np.zeros((4, _N_BINS))  # near & other, near & not other, other, not other
        # per _SLOT_S slot of the window: detection within width_deg; the slot being filled
        self._slots: deque = deque()
        self._slot_sums = np.zeros(_N_BINS)
        self._slot: tuple[int, np.ndarray] | None = None  # (slot index, detections so far)
        self._now = 0.0

    def record(self, rows, time_s: float) -> None:
        """Add one localizer update's detections (``rows``: its tracker rows) to the statistics and drop those older
        than the window."""
        self._now = float(time_s)
        azs = np.array([r.azimuth_deg for r in rows if getattr(r, "detected", True)])
        if azs.size:
            d = azimuth_difference_deg(_BIN_CENTRES[:, None], azs[None, :])
            near, other = (d <= self.width_deg).any(1), (d >= _OTHER_DEG).any(1)
        else:
            near = other = np.zeros(_N_BINS, bool)
        entry = np.stack([near & other, near & ~other, other, ~other]).astype(float)
        self._history.append((time_s, entry))
        self._sums += entry
        while self._history[0][0] < time_s - self.window_s:
            self._sums -= self._history.popleft()[1]
        # slots: a finished slot (and any empty ones after it, up to a window's worth) joins the window
        k = int(time_s // _SLOT_S)
        if self._slot is None:
            self._slot = (k, near.copy())
        elif k > self._slot[0]:
            n_max = max(1, int(round(self.window_s / _SLOT_S)))
            done = [self._slot[1]] + [np.zeros(_N_BINS, bool)] * min(k - self._slot[0] - 1, n_max)
            for slot in done:
                self._slots.append(slot)
                self._slot_sums += slot
            while len(self._slots) > n_max:
                self._slot_sums -= self._slots.popleft()
            self._slot = (k, near.copy())
        else:
            self._slot[1][:] |= near

    def zones(self, now_s: float | None = None) -> list[float]:
        """Azimuths (deg) of the playback zones now; ``now_s`` is for the minimum history (default: the time of the
        last :meth:`record`)."""
        now = self._now if now_s is None else float(now_s)
        span = now - self._history[0][0] if self._history else 0.0
        if span < min(EARLY_PLAYBACK_FROM_S, self.min_s):
            return []
        early = span < self.min_s  # stricter tests on a short history
        fraction = max(self.fraction, _EARLY_FRACTION) if early else self.fraction
        overlap = max(self.overlap, _EARLY_OVERLAP) if early else self.overlap
        both, alone, other, not_other = self._sums
        occupancy = (both + alone) / len(self._history)
        ratio = (both / np.maximum(other, 1)) / np.maximum(alone / np.maximum(not_other, 1), 1e-3)
        heard_elsewhere = other / len(self._history) >= _OTHERS_MIN  # else the ratio rests on a few updates
        ok = (occupancy > fraction) & (ratio >= overlap) & heard_elsewhere
        ok |= np.roll(ok, 1) | np.roll(ok, -1)  # the tests may pass one 5-deg bin off the occupancy peak
        zones = ok & (occupancy >= np.roll(occupancy, 1)) & (occupancy >= np.roll(occupancy, -1))
        if len(self._slots) * _SLOT_S >= min(_SLOT_MIN_S, self.window_s):
            slot_occ = self._slot_sums / len(self._slots)
            masked = (other - both) / len(self._history)  # missing while another direction is heard
            zones |= ((slot_occ > self.slot_fraction) & (masked >= self.masked)
                      & (slot_occ >= np.roll(slot_occ, 1)) & (slot_occ >= np.roll(slot_occ, -1)))
        return [float(_BIN_CENTRES[k]) for k in np.flatnonzero(zones)]

    def contains(self, azimuth_deg: float, zones: list[float]) -> bool:
        """Whether ``azimuth_deg`` lies within ``width_deg`` of one of ``zones`` (as :meth:`zones` gave them)."""
        return any(azimuth_difference_deg(azimuth_deg, z) <= self.width_deg for z in zones)
