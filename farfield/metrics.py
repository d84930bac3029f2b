"""Accuracy measures against known truth (simulated rooms)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .geometry import azimuth_difference_deg


@dataclass(frozen=True)
class DOAScores:
    """Direction-of-arrival scores over the frames where at least one source is active.

    mae_deg: mean absolute azimuth error of found sources; recall: found / active (source, frame) pairs;
    false_per_frame: estimates not matched to an active source, per frame; n_frames: frames scored.
    """

    mae_deg: float
    recall: float
    false_per_frame: float
    n_frames: int
    n_active: int


def match_azimuths(true_az: np.ndarray, est_az: np.ndarray, threshold_deg: float = 10.0) -> list[tuple[int, int, float]]:
    """One-to-one matching of true and estimated azimuths (Hungarian, wrapped distance);
    returns ``(true_index, est_index, error_deg)`` for pairs within ``threshold_deg``."""
    if len(true_az) == 0 or len(est_az) == 0:
        return []
    d = azimuth_difference_deg(np.asarray(true_az)[:, None], np.asarray(est_az)[None, :])
    r, c = linear_sum_assignment(d)
    return [(int(i), int(j), float(d[i, j])) for i, j in zip(r, c) if d[i, j] <= threshold_deg]


def score_doa(times_s: np.ndarray, estimates: list[np.ndarray], true_az: np.ndarray, active: np.ndarray,
              threshold_deg: float = 10.0) -> DOAScores:
    """Score per-frame azimuth estimates.

    Args:
        times_s: ``(T,)`` frame times.
        estimates: ``T`` arrays of estimated azimuths (degrees) for each frame.
        true_az: ``(S, T)`` true azimuth of each source at each frame (degrees).
        active: ``(S, T)`` bool, source active at the frame.
    """
    errs, found, n_active, false, n_frames = [], 0, 0, 0, 0
    for t in range(len(times_s)):
        act = np.flatnonzero(active[:, t])
        est = np.asarray(estimates[t], dtype=float)
        if act.size == 0:
            continue
        n_frames += 1
        n_active += act.size
        m = match_azimuths(true_az[act, t], est, threshold_deg)
        found += len(m)
        errs += [e for _, _, e in m]
        false += est.size - len(m)
    return DOAScores(float(np.mean(errs)) if errs else float("nan"), found / max(n_active, 1),
                     false / max(n_frames, 1), n_frames, n_active)


def tracks_per_frame(rows, times_s: np.ndarray) -> list[np.ndarray]:
    """Group track rows (``TrackRow`` or tuples ``(time_s, id, az, el, power)``) by the frame times given."""
    by_time: dict[float, list[float]] = {}
    for r in rows:
        t = r.time_s if hasattr(r, "time_s") else r[0]
        az = r.azimuth_deg if hasattr(r, "azimuth_deg") else r[2]
        by_time.setdefault(round(float(t), 6), []).append(az)
    return [np.array(by_time.get(round(float(t), 6), [])) for t in times_s]


def activity_at(activity: np.ndarray, times_s: np.ndarray, sample_rate: int, window_s: float = 0.1) -> np.ndarray:
    """Sample-level activity ``(S, samples)`` -> frame-level ``(S, T)``: active if active for at least half
    of the ``window_s`` before each frame time (the localizer's smoothing looks back in time)."""
    S, n = activity.shape
    cs = np.concatenate([np.zeros((S, 1)), np.cumsum(activity, axis=1)], axis=1)
    end = np.clip((np.asarray(times_s) * sample_rate).astype(int), 0, n)
    start = np.clip(end - int(window_s * sample_rate), 0, n)
    frac = (cs[:, end] - cs[:, start]) / np.maximum(end - start, 1)
    return frac >= 0.5
