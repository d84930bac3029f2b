"""Multi-target tracking of source directions on the sphere.

Each track is a Kalman filter with a constant-velocity model on the unit vector ``(x, y, z)`` of its
direction (no azimuth wrap-around, works on the whole sphere), re-normalised after every update. The three axes
share one model and isotropic noise, so the 6x6 covariance is always ``kron(A, I3)`` with ``A`` the 2x2
(position, velocity) covariance of one axis: the filter keeps ``A`` (three numbers) and does the same
arithmetic as the full matrices at a fraction of their cost (tested against them). Per
localizer update the detections are assigned to tracks by the Hungarian method on angular distance with a
gate that widens (up to a cap) with the track's uncertainty; a track that gets no detection coasts with its
velocity damped.

Life of a track:

* ``tentative``: born from an unassigned detection; becomes ``active`` (and gets an id) after ``birth_hits``
  hits within ``birth_window_s``; otherwise it is dropped (probation).
* ``active``: reported while it was last hit at most ``hangover_s`` ago (``established_hangover_s`` for a
  track with ``established_hits`` hits, which a louder talker can mask for longer; shorter for a young track
  hit only now and then, see ``full_hangover_rate``).
* ``dormant``: silent longer than that: no longer reported, velocity set to zero, position kept; a silent
  talker stands still, so its position uncertainty grows only slowly, up to ``revive_gate_deg / 2`` (one
  sigma), and hits move it without giving it velocity (a constant-velocity model coasting through a pause of a
  few seconds would let the first detection anywhere in the gate pull the track, and its velocity carry it on
  into another source). ``revive_hits`` detections near it (within ``birth_window_s`` of each other) before
  ``forget_s`` revive it with the same id (talker pauses keep their id), starting still like a new track.
* deleted ``forget_s`` after its last hit: tracks never linger after the sound stops.

Two confirmed tracks that stay within ``merge_deg`` for ``merge_s`` are one talker split in two: the dormant
one (else the younger) is dropped.

Weak detections (``LocalizationFrame.weak_detections``: sources the localizer found on few bins) can only be
taken by an active track within ``weak_gate_deg`` of it, as hits like any other: they keep a quieter talker's
track alive while a louder one masks it, but never start a track, revive a dormant one or pull a track from
farther away (a wider gate let them drag tracks between talkers), and a row with only a weak hit is not
``detected``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy.optimize import linear_sum_assignment

from .geometry import unit_to_az_el


@dataclass(frozen=True)
class TrackRow:
    """One active track at one localizer update (one row of ``tracks.csv``). ``detected``: a detection was
    assigned to the track at this update (``False`` while it coasts through a pause or is only kept by a weak
    detection; not written to the csv)."""

    time_s: float
    track_id: int
    azimuth_deg: float
    elevation_deg: float
    power_db: float
    detected: bool = True
    cdr_db: float = math.nan
    """The track's coherent-to-diffuse ratio, dB (:attr:`~farfield.localize.Detection.cdr_db`, smoothed like
    ``power_db``): higher for a nearer talker."""


TRACKS_CSV_HEADER = "time_s,track_id,azimuth_deg,elevation_deg,power_db,cdr_db"

STILL_TALKERS: Mapping[str, float] = MappingProxyType({"speed_deg_s": 3.0, "measurement_noise_deg": 12.0})
""":class:`Tracker` settings for talkers who stay put (a seated meeting, a desk or kiosk robot): ``Tracker(...,
**STILL_TALKERS)``, ``--still-talkers`` on the command line. The filter trusts single detections less (they scatter by
10 deg and more in reverberant rooms) and expects slower motion, so one talker keeps one steady track: better
localization and mostly better target selection than the defaults, DER a little worse (``benchmarks/EXPERIMENTS.md``;
the ``*_speed_3_measurement_noise_12.txt`` files in ``benchmarks/results``). But a walking talker is followed late: one
walking past the array at 23 deg/s had a median error of 9.4 deg against 3.3 at the defaults, so they are not the
default. Read-only: ``dict(STILL_TALKERS)`` for a copy to change."""


def _dot(a: list[float], b: list[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _near_any(u: list[float], tracks: list, min_cos: float) -> bool:
    """Whether any of ``tracks`` points within ``arccos(min_cos)`` of the unit vector ``u``."""
    for t in tracks:
        if _dot(u, t.u) > min_cos:
            return True
    return False


class _Track:
    VELOCITY_VAR = 0.05  # per-axis velocity variance of a new (or revived) track, (rad/s)^2

    __slots__ = ("u", "v", "a", "b", "c", "state", "track_id", "hits", "born_s", "last_hit_s", "power_db", "cdr_db",
                 "confidence", "close_s", "revive_hits", "revive_s", "rate", "last_detected_s")

    def __init__(self, unit: np.ndarray, time_s: float, power_db: float, cdr_db: float, confidence: float,
                 pos_var: float) -> None:
        self.u = [float(unit[0]), float(unit[1]), float(unit[2])]  # unit direction
        self.v = [0.0, 0.0, 0.0]  # its velocity, per second
        # covariance kron([[a, b], [b, c]], I3): per-axis position variance, position-velocity covariance and
        # velocity variance
        self.a, self.b, self.c = float(pos_var), 0.0, self.VELOCITY_VAR
        self.state = "tentative"
        self.track_id = -1
        self.hits = 1
        self.born_s = time_s
        self.last_hit_s = time_s
        self.last_detected_s = time_s  # the last hit by a (strong) detection
        self.power_db = power_db
        self.cdr_db = cdr_db
        self.confidence = confidence
        self.close_s = 0.0
        self.revive_hits = 0  # hits while dormant, counted from revive_s
        self.revive_s = time_s
        self.rate = 1.0  # running fraction of updates with a hit (time constant hit_rate_s)

    @property
    def P(self) -> np.ndarray:
        """The full 6x6 state covariance ``(6, 6)``."""
        return np.kron(np.array([[self.a, self.b], [self.b, self.c]]), np.eye(3))


class Tracker:
    """Multi-source direction tracker.

    The runs behind the defaults, and the settings measured and not made the default, are in
    ``benchmarks/EXPERIMENTS.md``.

    Args:
        frame_period_s: seconds between updates (the localizer's ``frame_period_s``).
        gate_deg: largest angle between a track's prediction and a detection it may take, plus 2 sigma of
            the track's own uncertainty but at most ``max_gate_growth_deg``.
        birth_hits: hits needed within ``birth_window_s`` to confirm a new track.
        birth_gate_deg: a tentative track only takes detections this close to it (real sources give
            consistent directions; scattered false detections do not).
        birth_window_s: probation window, seconds.
        hangover_s: an active track stays reported this long after its last hit; less for a track that is not
            established and was hit in under ``full_hangover_rate`` of the updates of the last ``hit_rate_s``
            (running average): ``hangover_s * rate / full_hangover_rate``. Reflections and side lobes give such
            sporadic hits; each kept a phantom track reported for the whole hangover.
        established_hangover_s, established_hits: the hangover of a track with at least ``established_hits``
            hits: a talker heard for a while is kept through longer stretches where a louder talker masks it.
        forget_s: a silent track is deleted this long after its last hit; within it, it can be revived.
        revive_gate_deg: gate for reviving a dormant track.
        revive_hits: hits within ``birth_window_s`` that revive a dormant track (a single stray detection near
            it does not).
        speed_deg_s: expected angular speed of talkers (process noise), degrees per second. Low, since most
            talkers stand or sit (a smoother track is less pulled by stretches of reflection-biased detections),
            yet talkers walking at 0.4-1.2 m/s 1-2 m away are still followed. 3, with ``measurement_noise_deg=12``,
            suits talkers who stay put (:data:`STILL_TALKERS`) but lags walkers.
        coast_damping: a track's velocity is multiplied by this at every update without a detection.
        measurement_noise_deg: standard deviation of detections, degrees. Detections in reverberant rooms scatter
            more than the default 4 (a quieter talker's by 10 deg and more); 12 gives steadier tracks and better
            localization recall, but alone it moved target selection both ways, so the default stays 4.
        merge_deg, merge_s: when two confirmed tracks stay within ``merge_deg`` of each other for ``merge_s``
            seconds, one is dropped: a dormant one before an active one, else the younger (one talker split
            in two; crossing talkers pass quicker).
        weak_gate_deg: largest angle between an active track and a weak detection it may take (they are less
            reliable, so they may keep a track alive only where it is; a wider gate let them drag tracks between
            talkers).
        planar: keep tracks on the horizontal plane (for azimuth-only localizers).
    """

    def __init__(self, *, frame_period_s: float, gate_deg: float = 15.0, max_gate_growth_deg: float = 10.0,
                 birth_hits: int = 3,
                 birth_gate_deg: float = 8.0,
                 birth_window_s: float = 0.3, hangover_s: float = 0.5, established_hangover_s: float = 1.5,
                 established_hits: int = 25, forget_s: float = 6.0,
                 revive_gate_deg: float = 20.0, speed_deg_s: float = 10.0, coast_damping: float = 0.7,
                 measurement_noise_deg: float = 4.0,
                 merge_deg: float = 15.0, merge_s: float = 1.0, revive_hits: int = 2, hit_rate_s: float = 0.5,
                 full_hangover_rate: float = 0.3, weak_gate_deg: float = 8.0, planar: bool = False) -> None:
        if frame_period_s <= 0:
            raise ValueError(f"frame_period_s must be > 0, got {frame_period_s}")
        if birth_hits < 1 or revive_hits < 1:
            raise ValueError(f"birth_hits and revive_hits must be >= 1, got {birth_hits} and {revive_hits}")
        if hit_rate_s <= 0 or not 0 <= full_hangover_rate <= 1:
            raise ValueError(f"need hit_rate_s > 0 and 0 <= full_hangover_rate <= 1, got {hit_rate_s} and "
                             f"{full_hangover_rate}")
        if not 0 < weak_gate_deg <= 180:
            raise ValueError(f"weak_gate_deg must be in (0, 180] degrees, got {weak_gate_deg}")
        if not (0 < hangover_s <= forget_s and 0 < established_hangover_s <= forget_s):
            raise ValueError(f"need 0 < hangover_s <= forget_s and 0 < established_hangover_s <= forget_s, got "
                             f"{hangover_s}, {established_hangover_s} and {forget_s}")
        self.dt = float(frame_period_s)
        self.gate = math.radians(gate_deg)
        self.birth_hits = int(birth_hits)
        self.revive_hits = int(revive_hits)
        self.rate_decay = math.exp(-frame_period_s / hit_rate_s)
        self.full_hangover_rate = float(full_hangover_rate)
        self.birth_gate = math.radians(birth_gate_deg)
        self.weak_gate = math.radians(weak_gate_deg)
        self.birth_window_s = float(birth_window_s)
        self.hangover_s = float(hangover_s)
        self.established_hangover_s = float(established_hangover_s)
        self.established_hits = int(established_hits)
        self.forget_s = float(forget_s)
        self.revive_gate = math.radians(revive_gate_deg)
        self._dormant_var = (self.revive_gate / 2) ** 2  # a dormant track's position variance stops growing here
        self.gate_growth = math.radians(max_gate_growth_deg)
        self.coast_damping = float(coast_damping)
        self.q = math.radians(speed_deg_s) ** 2  # velocity random-walk intensity, (rad/s)^2 per s
        self.r = math.radians(measurement_noise_deg) ** 2
        self.planar = planar
        self.merge_cos = math.cos(math.radians(merge_deg))
        self.merge_s = float(merge_s)
        dt, q = self.dt, self.q
        # per-axis process noise of the constant-velocity model (white acceleration of intensity q)
        self._qa, self._qb, self._qc = q * dt**3 / 3, q * dt**2 / 2, q * dt
        self.reset()

    def reset(self) -> None:
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._time_s = None

    @property
    def tracks(self) -> list[dict]:
        """Every track the tracker holds now (tentative, active and dormant), as dictionaries."""
        out = []
        for t in self._tracks:
            az, el = unit_to_az_el(t.u)
            out.append({"track_id": t.track_id, "state": t.state, "azimuth_deg": float(az),
                        "elevation_deg": float(el), "last_hit_s": t.last_hit_s, "power_db": t.power_db})
        return out

    def update(self, frame) -> list[TrackRow]:
        """Advance by one localizer update (a :class:`~farfield.localize.LocalizationFrame`).

        Returns one :class:`TrackRow` per active track.
        """
        if not hasattr(frame, "time_s") or not hasattr(frame, "detections"):
            raise TypeError(f"update() takes a LocalizationFrame (time_s, detections), got {type(frame).__name__}")
        time_s = float(frame.time_s)
        if self._time_s is not None and time_s < self._time_s:
            raise ValueError(f"updates must come in time order: got {time_s:.3f} s after {self._time_s:.3f} s")
        self._time_s = time_s
        for t in self._tracks:
            self._predict(t)
        n_strong = len(frame.detections)
        dets = list(frame.detections) + list(getattr(frame, "weak_detections", ()))
        Z = np.array([d.unit for d in dets], dtype=np.float64).reshape(-1, 3)
        if self.planar and len(Z):
            Z[:, 2] = 0.0
            Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        assigned = self._assign(Z, n_strong)
        taken, hit = set(), set()
        for ti, di in assigned:
            t = self._tracks[ti]
            d = dets[di]
            self._correct(t, Z[di])
            t.hits += 1
            t.last_hit_s = time_s
            if di < n_strong:
                t.last_detected_s = time_s
            t.power_db = 0.7 * t.power_db + 0.3 * d.power_db
            if not math.isnan(d.cdr_db):
                t.cdr_db = d.cdr_db if math.isnan(t.cdr_db) else 0.7 * t.cdr_db + 0.3 * d.cdr_db
            t.confidence = d.confidence
            if t.state == "dormant":
                if time_s - t.revive_s > self.birth_window_s:
                    t.revive_hits, t.revive_s = 0, time_s
                t.revive_hits += 1
                if t.revive_hits >= self.revive_hits:
                    t.state, t.revive_hits = "active", 0
            taken.add(di)
            hit.add(ti)
        for ti, t in enumerate(self._tracks):
            t.rate = self.rate_decay * t.rate + (1.0 - self.rate_decay) * (ti in hit)
            if ti not in hit:
                t.v = [w * self.coast_damping for w in t.v]  # a silent talker slows down, does not drift on
        for di, d in enumerate(dets[:n_strong]):
            if di not in taken:
                self._tracks.append(_Track(Z[di], time_s, d.power_db, d.cdr_db, d.confidence, self.r))
        self._lifecycle(time_s)
        active = sorted((t for t in self._tracks if t.state == "active"), key=lambda t: t.track_id)
        if not active:
            return []
        az, el = unit_to_az_el([t.u for t in active])
        return [TrackRow(time_s, t.track_id, float(a), float(e), float(t.power_db), t.last_detected_s == time_s,
                         float(t.cdr_db)) for t, a, e in zip(active, az, el)]

    # -- Kalman filter (per axis: state (position, velocity), covariance [[a, b], [b, c]]) --------------------
    def _predict(self, t: _Track) -> None:
        """``x <- F x``, ``P <- F P F^T + Q`` with ``F = [[1, dt], [0, 1]]`` per axis."""
        dt = self.dt
        if t.state == "dormant":  # a silent talker stays put: no velocity, position uncertainty bounded
            t.a = min(t.a + dt * dt * t.c + self._qa, self._dormant_var)
            return
        u, v = t.u, t.v
        t.u = [u[0] + dt * v[0], u[1] + dt * v[1], u[2] + dt * v[2]]
        a, b, c = t.a, t.b, t.c
        t.a = a + 2.0 * dt * b + dt * dt * c + self._qa
        t.b = b + dt * c + self._qb
        t.c = c + self._qc
        self._normalise(t)

    def _correct(self, t: _Track, z) -> None:
        """Measurement ``z`` (a unit vector) of the position, noise variance ``r`` per axis: gain
        ``[a, b] / (a + r)``."""
        s = t.a + self.r
        ka, kb = t.a / s, t.b / s  # (b = 0 for a dormant track: a hit moves it, gives it no velocity)
        innovation = [float(zi) - p for zi, p in zip(z, t.u)]
        t.u = [p + ka * e for p, e in zip(t.u, innovation)]
        t.v = [w + kb * e for w, e in zip(t.v, innovation)]
        t.a, t.b, t.c = (1.0 - ka) * t.a, (1.0 - ka) * t.b, t.c - kb * t.b
        self._normalise(t)

    def _normalise(self, t: _Track) -> None:
        """Back onto the unit sphere (the horizontal circle when ``planar``), velocity tangent to it."""
        u, v = t.u, t.v
        if self.planar:
            u[2] = v[2] = 0.0
        n = math.sqrt(_dot(u, u))
        if n > 1e-9:
            u = t.u = [u[0] / n, u[1] / n, u[2] / n]
        radial = _dot(u, v)
        t.v = [v[0] - radial * u[0], v[1] - radial * u[1], v[2] - radial * u[2]]

    def _sigma(self, t: _Track) -> float:
        return math.sqrt(max(t.a, 0.0))

    # -- data association --------------------------------------------------------------------
    def _assign(self, Z: np.ndarray, n_strong: int) -> list[tuple[int, int]]:
        """Pairs ``(track index, detection index)``; detections ``n_strong`` and later are weak (active tracks
        within ``weak_gate`` only, and a strong detection in the gate is preferred)."""
        if not len(Z) or not self._tracks:
            return []
        U = np.array([t.u for t in self._tracks])
        ang = np.arccos(np.clip(U @ Z.T, -1.0, 1.0))  # (tracks, dets) radians
        gate = np.empty(len(self._tracks))
        bias = np.empty(len(self._tracks))
        for i, t in enumerate(self._tracks):
            if t.state == "tentative":
                gate[i], bias[i] = self.birth_gate, math.radians(2.0)
            else:
                # the gate widens with the track's uncertainty, but only so far: a coasting track must not
                # grab another talker's detections
                dormant = t.state == "dormant"
                gate[i] = (self.revive_gate if dormant else self.gate) + min(2.0 * self._sigma(t), self.gate_growth)
                bias[i] = math.radians(5.0) if dormant else 0.0  # prefer live tracks over reviving old ones
        big = 1e6
        cost = np.where(ang > gate[:, None], big, ang + bias[:, None])
        if n_strong < len(Z):
            active = np.array([t.state == "active" for t in self._tracks])
            ok = active[:, None] & (ang[:, n_strong:] <= self.weak_gate)
            cost[:, n_strong:] = np.where(ok, cost[:, n_strong:] + math.radians(1.0), big)
        if cost.shape[0] == 1 or cost.shape[1] == 1:  # one track or one detection: the cheapest pair
            i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
            return [(int(i), int(j))] if cost[i, j] < big else []
        r, c = linear_sum_assignment(cost)
        return [(i, j) for i, j in zip(r, c) if cost[i, j] < big]

    def _lifecycle(self, now: float) -> None:
        keep = []
        for t in self._tracks:
            silent = now - t.last_hit_s
            if t.state == "tentative":
                if t.hits >= self.birth_hits:
                    t.state = "active"
                    t.track_id = self._next_id
                    self._next_id += 1
                elif now - t.born_s > self.birth_window_s:
                    continue  # failed probation
            elif t.state == "active" and silent > self._hangover(t):
                t.state = "dormant"
                t.v = [0.0, 0.0, 0.0]
                t.b, t.c = 0.0, _Track.VELOCITY_VAR  # revived, it starts still, like a new track
                t.a = min(t.a, self._dormant_var)
            if t.state == "dormant" and silent > self.forget_s:
                continue
            keep.append(t)
        self._tracks = self._merge_duplicates(keep)

    def _hangover(self, t: _Track) -> float:
        """How long an active track is reported after its last hit, seconds."""
        if t.hits >= self.established_hits:
            return self.established_hangover_s
        if self.full_hangover_rate > 0 and t.rate < self.full_hangover_rate:
            return self.hangover_s * t.rate / self.full_hangover_rate
        return self.hangover_s

    def _merge_duplicates(self, tracks: list[_Track]) -> list[_Track]:
        """Drop tentative tracks born on top of an active one (side lobes, echoes); and when two confirmed
        tracks have stayed within ``merge_deg`` for ``merge_s`` (one talker split in two), drop one of them:
        a dormant one before an active one, else the younger."""
        confirmed = sorted((t for t in tracks if t.state != "tentative"),
                           key=lambda t: (t.state != "active", t.track_id))  # the ones to keep come first
        if not confirmed:
            return tracks
        drop = set()
        for k, t in enumerate(confirmed):
            if k and _near_any(t.u, confirmed[:k], self.merge_cos):
                t.close_s += self.dt
                if t.close_s >= self.merge_s:
                    drop.add(id(t))
            else:
                t.close_s = max(0.0, t.close_s - self.dt)  # brief separations do not reset the count
        active = [t for t in confirmed if t.state == "active"]
        on_top = math.cos(self.gate / 2)
        out = []
        for t in tracks:
            if id(t) in drop:
                continue
            if t.state == "tentative" and _near_any(t.u, active, on_top):
                continue
            out.append(t)
        return out
