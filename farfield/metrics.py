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
    Where the misses are: acquisition_s: per source, seconds from its first active frame to the first frame it is
    found in (nan: never found); the missed active (source, frame) pairs split into missed_early (before the
    source was first found), missed_off (later, with an estimate within twice the threshold: found, but off) and
    missed_absent (later, no estimate that near).
    """

    mae_deg: float
    recall: float
    false_per_frame: float
    n_frames: int
    n_active: int
    acquisition_s: tuple[float, ...] = ()
    missed_early: int = 0
    missed_off: int = 0
    missed_absent: int = 0


def match_azimuths(true_az: np.ndarray, est_az: np.ndarray,
                   threshold_deg: float = 10.0) -> list[tuple[int, int, float]]:
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
    S = true_az.shape[0]
    onset = np.full(S, np.nan)  # time of each source's first active frame, and of the first found one
    first_found = np.full(S, np.nan)
    early = off = absent = 0
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
        hit = set(act[i] for i, _, _ in m)
        for s in act:
            if np.isnan(onset[s]):
                onset[s] = times_s[t]
            if s in hit:
                if np.isnan(first_found[s]):
                    first_found[s] = times_s[t]
            elif np.isnan(first_found[s]):
                early += 1
            elif est.size and np.min(azimuth_difference_deg(true_az[s, t], est)) <= 2 * threshold_deg:
                off += 1
            else:
                absent += 1
    acquisition = tuple(float(f - o) for f, o in zip(first_found, onset) if not np.isnan(o))
    return DOAScores(float(np.mean(errs)) if errs else float("nan"), found / max(n_active, 1),
                     false / max(n_frames, 1), n_frames, n_active, acquisition, early, off, absent)


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


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio (dB) of a mono ``estimate`` against ``reference`` (same length;
    both mean-removed first, as in Le Roux et al. 2019)."""
    est = np.asarray(estimate, float) - np.mean(estimate)
    ref = np.asarray(reference, float) - np.mean(reference)
    if est.shape != ref.shape:
        raise ValueError(f"estimate and reference must have the same shape, got {est.shape} and {ref.shape}")
    alpha = np.dot(est, ref) / (np.dot(ref, ref) + 1e-20)
    target = alpha * ref
    return float(10 * np.log10((np.dot(target, target) + 1e-20) / (np.dot(est - target, est - target) + 1e-20)))


def match_streams(streams: list[np.ndarray], references: list[np.ndarray]) -> list[tuple[int, int, float]]:
    """One-to-one matching of estimated streams to reference signals maximising total SI-SDR (Hungarian);
    returns ``(stream_index, reference_index, si_sdr_db)``."""
    if not streams or not references:
        return []
    m = np.array([[si_sdr(s, r) for r in references] for s in streams])
    rows, cols = linear_sum_assignment(-m)
    return [(int(i), int(j), float(m[i, j])) for i, j in zip(rows, cols)]


@dataclass(frozen=True)
class DERScores:
    """Diarization error rate and its parts, as fractions of the scored reference speech time (seconds)."""

    der: float
    missed: float
    false_alarm: float
    confusion: float
    total_s: float
    mapping: dict


def _frames(segments, n: int, step: float, speakers: list[str]) -> np.ndarray:
    a = np.zeros((len(speakers), n), dtype=bool)
    idx = {s: k for k, s in enumerate(speakers)}
    for spk, start, dur in segments:
        a[idx[spk], int(round(start / step)): int(round((start + dur) / step))] = True
    return a


def diarization_error_rate(reference, hypothesis, *, collar_s: float = 0.25, step_s: float = 0.01,
                           skip_overlap: bool = False) -> DERScores:
    """DER in the NIST md-eval way: ``(missed + false alarm + confusion) / reference speech``, with overlapped
    speech scored (each speaker counts), frames of ``step_s``, no scoring within ``collar_s`` of any reference
    boundary, and the optimal one-to-one speaker mapping (Hungarian on co-occurrence). Segments are
    ``(speaker, start_s, duration_s)``; RTTM rows from :func:`farfield.io.read_rttm` fit as they are. Equal to
    ``pyannote.metrics``' ``DiarizationErrorRate(collar=2 * collar_s)`` (its collar is the total width) within
    1e-6 on random segmentations (``tests/test_metrics.py``)."""
    reference, hypothesis = list(reference), list(hypothesis)
    end = max([s + d for _, s, d in reference + hypothesis] + [0.0])
    n = int(np.ceil(end / step_s)) + 1
    rs, hs = sorted({r[0] for r in reference}), sorted({h[0] for h in hypothesis})
    R, H = _frames(reference, n, step_s, rs), _frames(hypothesis, n, step_s, hs)
    scored = np.ones(n, dtype=bool)
    c = int(round(collar_s / step_s))
    for _, s, d in reference:
        for b in (s, s + d):
            k = int(round(b / step_s))
            scored[max(0, k - c): k + c] = False
    if skip_overlap:
        scored &= R.sum(axis=0) <= 1
    R, H = R[:, scored], H[:, scored]
    mapping = {}
    if rs and hs:
        co = R.astype(float) @ H.T.astype(float)
        ri, hi = linear_sum_assignment(-co)
        mapping = {hs[j]: rs[i] for i, j in zip(ri, hi) if co[i, j] > 0}
    nr, nh = R.sum(axis=0), H.sum(axis=0)
    correct = np.zeros(R.shape[1])
    for h, r in mapping.items():
        correct += R[rs.index(r)] & H[hs.index(h)]
    total = float(nr.sum())
    missed = float(np.maximum(nr - nh, 0).sum())
    fa = float(np.maximum(nh - nr, 0).sum())
    conf = float((np.minimum(nr, nh) - correct).sum())
    t = max(total, 1e-9)
    return DERScores((missed + fa + conf) / t, missed / t, fa / t, conf / t, total * step_s, mapping)
