"""Sound-source localization: GCC-PHAT, SRP-PHAT (with coarse-to-fine search) and (normalized) MUSIC.

Shapes: waveforms ``(n_mics, samples)``; STFT frames ``(n_mics, freq, frames)``; direction grids
``(n_points, 3)`` unit vectors. Angles in degrees (see :mod:`farfield.geometry`).

:class:`Localizer` is streaming: feed it blocks of any size (or STFT frames) and it returns one
:class:`LocalizationFrame` every ``update_every`` STFT hops, each with up to ``max_sources`` detections.
Silence and incoherent noise give frames with no detections: a detection needs the frame's level to stand
``min_snr_db`` above a running noise floor and its steered response (``confidence``, the mean PHAT-weighted
correlation over pairs, 1.0 for a perfectly coherent plane wave) to reach ``min_confidence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import kernels
from ._validate import check_not_silent, check_sample_rate, check_signals
from .geometry import (SPEED_OF_SOUND, ArrayGeometry, angular_distance_deg, load_array, spherical_coherence,
                       unit_to_az_el)
from .grids import DirectionGrid, coarse_grid_for, make_grid, nearest_point
from .stft import StreamingSTFT

METHODS = ("srp-phat", "music", "normmusic")


# --------------------------------------------------------------------------- pairwise TDOA
def gcc_phat(x: np.ndarray, y: np.ndarray, sample_rate: int, *, max_tau_s: float | None = None,
             interp: int = 16) -> tuple[float, float]:
    """Time difference of arrival of ``x`` relative to ``y`` by GCC-PHAT.

    Args:
        x, y: mono signals ``(samples,)``.
        sample_rate: Hz.
        max_tau_s: search only lags within +-max_tau_s (e.g. mic distance / c).
        interp: upsampling factor of the correlation; a parabola through the peak refines it further.

    Returns:
        ``(tau_s, peak)``: the delay in seconds (positive when ``x`` lags ``y``) and the PHAT correlation
        peak height (1.0 for identical, purely delayed signals).
    """
    sr = check_sample_rate(sample_rate)
    a = check_signals(np.atleast_2d(x), n_channels=1, name="x")[0]
    b = check_signals(np.atleast_2d(y), n_channels=1, name="y")[0]
    if a.size != b.size:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size} samples")
    n = 1 << int(math.ceil(math.log2(2 * a.size)))
    A, B = np.fft.rfft(a, n), np.fft.rfft(b, n)
    R = A * np.conj(B)
    mag = np.abs(R)
    if not np.any(mag > 0):
        raise ValueError("x and y have no common energy (one of them is silent); cannot estimate a delay")
    R = np.where(mag > 1e-12 * mag.max(), R / np.maximum(mag, 1e-300), 0.0)
    cc = np.fft.irfft(R, n * interp) * interp * n / max(1, np.count_nonzero(mag > 1e-12 * mag.max()))
    max_shift = n * interp // 2
    if max_tau_s is not None:
        max_shift = min(max_shift, int(math.ceil(max_tau_s * sr * interp)) + 1)
    cc = np.concatenate([cc[-max_shift:], cc[: max_shift + 1]])
    k = int(np.argmax(cc))
    shift = float(k)
    if 0 < k < cc.size - 1:
        y0, y1, y2 = cc[k - 1], cc[k], cc[k + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            shift += 0.5 * (y0 - y2) / den
    return (shift - max_shift) / (interp * sr), float(cc[k])


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Detection:
    """One source candidate in one localization frame."""

    azimuth_deg: float
    elevation_deg: float
    power_db: float
    """Delay-and-sum beam power towards the detection, dB re full scale (band-limited)."""
    confidence: float
    """Mean PHAT correlation over pairs at the peak (SRP-PHAT) or normalized MUSIC peak, in [0, 1]."""
    unit: tuple[float, float, float]
    cdr_db: float = math.nan
    """Coherent-to-diffuse power ratio towards the detection, dB in [-30, 30]: a blind estimate of its
    direct-to-reverberant ratio from the pairs' spatial coherence (:meth:`SteeredResponse.cdr_db`). Higher for a
    nearer source, whatever its voice level; reverberation, diffuse noise and other sources count as diffuse."""


@dataclass(frozen=True)
class LocalizationFrame:
    """Output of the localizer for one update."""

    time_s: float
    """Centre of the newest STFT frame that went into this update, seconds from stream start."""
    power_db: float
    """Band-limited input level (mean over mics), dB re full scale."""
    noise_floor_db: float
    detections: tuple[Detection, ...] = field(default_factory=tuple)
    weak_detections: tuple[Detection, ...] = field(default_factory=tuple)
    """Later sources found on too little free weight to count as detections (``Localizer.weak_free_weight``):
    the :class:`~farfield.track.Tracker` lets them keep an active track alive, never start one."""


_PROJECTED_CONFIDENCE = 0.1  # Localizer's confidence thresholds with diffuse_projection (0.2 without)


# --------------------------------------------------------------------------- SRP-PHAT engine
def auto_interp(array: ArrayGeometry, sample_rate: int, speed_of_sound: float = SPEED_OF_SOUND,
                lag_steps: int = 24) -> int:
    """Upsampling of the cross-correlations so that the largest TDOA spans at least ``lag_steps`` steps (at
    least 4). Grid points read the correlations by linear interpolation, which biases a peak towards whole
    steps; small arrays, whose largest TDOA is only a few samples, need the finer steps."""
    max_lag = array.aperture_m / speed_of_sound * sample_rate  # the largest TDOA of any pair, in samples
    return int(max(4, math.ceil(lag_steps / max(max_lag, 1e-9))))


class SteeredResponse:
    """SRP-PHAT on a direction grid from smoothed cross-spectra, ODAS-style.

    The PHAT-weighted cross-spectra are turned into interpolated cross-correlations over the physical lag window
    (an inverse DFT restricted to the band and those lags, :func:`~farfield.kernels.lag_correlations`);
    the response of a grid point is the sum over pairs of the correlation at that point's TDOA (precomputed
    lag tables). With ``refine`` the search is coarse-to-fine: a coarse icosahedral grid is scanned on
    max-filtered correlations (an upper bound of every fine point it covers), then only the fine points of
    the best coarse cells are evaluated.
    """

    def __init__(self, array: ArrayGeometry, sample_rate: int, frame_size: int, grid: DirectionGrid, *,
                 freq_range: tuple[float, float] = (300.0, 6000.0), interp: int | None = None, refine: bool = True,
                 speed_of_sound: float = SPEED_OF_SOUND) -> None:
        self.array, self.grid = array, grid
        if interp is None:
            interp = auto_interp(array, sample_rate, speed_of_sound)
        if interp < 1:
            raise ValueError(f"interp must be >= 1, got {interp}")
        self.sample_rate, self.frame_size, self.interp = sample_rate, frame_size, int(interp)
        freqs = np.fft.rfftfreq(frame_size, 1.0 / sample_rate)
        lo, hi = freq_range
        if not 0 <= lo < hi:
            raise ValueError(f"freq_range must be (low, high) with 0 <= low < high, got {freq_range}")
        if lo >= sample_rate / 2:
            raise ValueError(f"freq_range starts at {lo} Hz, above the Nyquist frequency {sample_rate / 2} Hz")
        band = (freqs >= lo) & (freqs <= min(hi, sample_rate / 2)) & (freqs > 0)
        n_band = int(band.sum())
        if n_band < 4:
            raise ValueError(f"freq_range {freq_range} keeps only {n_band} frequency bins at frame_size "
                             f"{frame_size}; widen it or use a longer frame")
        k = np.flatnonzero(band)
        self.k0, self.k1 = int(k[0]), int(k[-1]) + 1
        """Band bins ``k0:k1``: every spectrum the engine takes is already cut to them, ``(..., k1 - k0)``."""
        self.omega = np.ascontiguousarray(2 * np.pi * freqs[self.k0: self.k1])
        self._domega = 2 * np.pi * sample_rate / frame_size  # bin spacing, rad/s
        self.speed_of_sound = speed_of_sound
        self.tau = np.ascontiguousarray(array.tdoas_s(grid.units, speed_of_sound))  # (G, P)
        self._pair_i, self._pair_j = np.ascontiguousarray(array.pairs[:, 0]), np.ascontiguousarray(array.pairs[:, 1])
        gamma = spherical_coherence(array.positions, self.omega / (2 * np.pi), speed_of_sound)
        self.diffuse = np.ascontiguousarray(gamma[:, self._pair_i, self._pair_j].T)
        """``(P, Fb)``: each pair's coherence in a spherically isotropic (diffuse) field, per band bin."""
        # only lags within the largest physical TDOA matter: keep a window of them
        self.half_window = int(math.ceil(np.abs(self.tau).max() * sample_rate * interp)) + 2
        self.n_lags = 2 * self.half_window + 1
        # inverse DFT restricted to the band and the lag window (symmetric about 0: the kernel takes the
        # cosines and sines of the lags 0..half_window only)
        lags_s = np.arange(self.half_window + 1) / (sample_rate * interp)
        phase = self.omega[:, None] * lags_s[None, :]
        self._cos_half, self._sin_half = np.ascontiguousarray(np.cos(phase)), np.ascontiguousarray(np.sin(phase))
        self.idx0, self.frac = self._lag_tables(self.tau)
        self._near: dict = {}  # best_near's cap of grid points around a point (bounded: cleared when large)
        hi_eff = min(hi, sample_rate / 2)
        self.suppress_half_width = max(1, int(math.ceil(interp * sample_rate / (2.0 * hi_eff))))
        self.refine = refine and grid.n_points > 64
        if self.refine:
            self.coarse = coarse_grid_for(grid)
            owner = nearest_point(self.coarse, grid.units)
            order = np.argsort(owner, kind="stable")
            self.member_idx = np.ascontiguousarray(order.astype(np.int64))
            self.member_ptr = np.searchsorted(owner[order], np.arange(self.coarse.n_points + 1)).astype(np.int64)
            ctau = array.tdoas_s(self.coarse.units, speed_of_sound)
            self.c_idx0, self.c_frac = self._lag_tables(ctau)
            spread = np.abs(self.tau - ctau[owner]) * sample_rate * interp
            self.coarse_half_width = int(math.ceil(spread.max())) + 1
        # far_fit's candidate directions: the coarse grid's points (the grid's own without coarse-to-fine)
        self._far_units, self._far_tau = (self.coarse.units, ctau) if self.refine else (grid.units, self.tau)
        self._far: dict = {}  # far_fit's cache (bounded: cleared when large)

    def _lag_tables(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lag = tau * self.sample_rate * self.interp
        lo = np.floor(lag)
        idx0 = lo.astype(np.int64) + self.half_window  # index into the lag window
        return np.ascontiguousarray(idx0), np.ascontiguousarray(lag - lo)

    def correlations(self, phat: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Cross-correlations ``(P, n_lags)`` over the lag window ``-half_window..half_window`` (in
        ``1 / (interp * sample_rate)`` steps) from weighted PHAT cross-spectra of the band ``phat (P, Fb)``
        (averages of ``w * X_i conj(X_j) / |X_i conj(X_j)|``) and the average weights ``weight (Fb,)``.

        Scaled so that a perfectly coherent plane wave gives 1.0 at its lag.
        """
        total = float(np.sum(weight))
        out = np.empty((phat.shape[0], self.n_lags))
        kernels.lag_correlations(np.ascontiguousarray(phat), self._cos_half, self._sin_half, 1.0 / max(total, 1e-12),
                                 out)
        return out

    def response(self, cc: np.ndarray) -> np.ndarray:
        """Steered response ``(n_points,)`` of every fine grid point from correlations ``cc``."""
        out = np.empty(self.grid.n_points)
        kernels.srp_lookup(cc, self.idx0, self.frac, out)
        return out

    def best_point(self, cc: np.ndarray, floor: float = -math.inf) -> tuple[int, float]:
        """Index of the grid point with the largest response, and that response; ``(-1, v)`` when no point
        reaches ``floor`` (the coarse-to-fine search stops early then, with ``v`` an upper bound)."""
        if not self.refine:
            r = self.response(cc)
            g = int(np.argmax(r))
            return (g if r[g] >= floor else -1), float(r[g])
        # the max-filtered correlations bound every fine point of a coarse cell from above, so the
        # branch-and-bound search returns the same point as a full scan
        g, v = kernels.srp_best_point(cc, self.coarse_half_width, self.c_idx0, self.c_frac, self.idx0, self.frac,
                                      self.member_ptr, self.member_idx, float(floor), np.empty_like(cc),
                                      np.empty(self.coarse.n_points))
        return int(g), float(v)

    def best_near(self, cc: np.ndarray, point: int, radius_deg: float) -> int:
        """The grid point within ``radius_deg`` of ``point`` with the largest response to ``cc``; ``point``
        itself when that maximum lies on the rim of the cap (the slope of another peak, not a peak)."""
        near, out, inner = self._cap_response(cc, point, radius_deg)
        k = int(np.argmax(out))
        return int(near[k]) if inner[k] else point

    def peak_near(self, cc: np.ndarray, point: int, radius_deg: float) -> float:
        """The largest response to ``cc`` within ``radius_deg`` of ``point``."""
        return float(self._cap_response(cc, point, radius_deg)[1].max())

    def _cap_response(self, cc: np.ndarray, point: int, radius_deg: float) -> tuple[np.ndarray, ...]:
        """The grid points within ``radius_deg`` of ``point``, their responses to ``cc``, and which of them lie
        inside the cap's rim."""
        key = (point, radius_deg)
        if key not in self._near:
            if len(self._near) > 4 * self.grid.n_points:
                self._near.clear()
            cos = self.grid.units @ self.grid.units[point]
            near = np.flatnonzero(cos >= math.cos(math.radians(radius_deg)))
            inner = cos[near] >= math.cos(math.radians(max(radius_deg - 2.0 * self.grid.spacing_deg, 0.0)))
            self._near[key] = (near, np.ascontiguousarray(self.idx0[near]), np.ascontiguousarray(self.frac[near]),
                               inner)
        near, idx0, frac, inner = self._near[key]
        out = np.empty(near.size)
        kernels.srp_lookup(cc, idx0, frac, out)
        return near, out, inner

    def suppress(self, cc: np.ndarray, point: int) -> None:
        """Remove a found source from ``cc`` (zero each pair's correlation around its lag), in place."""
        centre = np.rint(self.tau[point] * self.sample_rate * self.interp).astype(np.int64) + self.half_window
        kernels.zero_around_lags(cc, centre, self.suppress_half_width)

    def bin_fit(self, phat: np.ndarray, point: int, magnitude: np.ndarray | None = None) -> np.ndarray:
        """How well each band bin's PHAT cross-spectra ``phat (P, Fb)`` fit the TDOAs of ``point``: the
        magnitude-weighted mean over pairs of ``cos(phase error)``, ``(Fb,)`` in [-1, 1] (1: the bin's sound comes
        from ``point`` alone). ``magnitude``: ``np.abs(phat).sum(axis=0)``, for callers that fit one ``phat`` to
        several points."""
        if magnitude is None:
            magnitude = np.abs(phat).sum(axis=0)
        return self.steered_bins(phat, point) / np.maximum(magnitude, 1e-30)

    def far_fit(self, point: int, min_angle_deg: float) -> np.ndarray:
        """The best :meth:`bin_fit` to ``point`` that a clean bin from a direction at least ``min_angle_deg``
        away could have, per band bin ``(Fb,)``, capped at 0.99 (-1 where no candidate direction is that far). Near
        1 in the low bins of a small array, where every direction fits every other. The candidates are the coarse
        grid's points (the grid's own without coarse-to-fine); cached per point."""
        key = (point, float(min_angle_deg))
        out = self._far.get(key)
        if out is None:
            if len(self._far) > 4 * self.grid.n_points:
                self._far.clear()
            far = self._far_units @ self.grid.units[point] <= math.cos(math.radians(min_angle_deg))
            out = np.full(self.omega.size, -1.0)
            if far.any():
                kernels.best_far_fit(np.ascontiguousarray(self._far_tau[far] - self.tau[point]), self.omega, out)
                np.minimum(out, 0.99, out=out)
            self._far[key] = out
        return out

    def steered_bins(self, C: np.ndarray, point: int) -> np.ndarray:
        """Per-bin steered response of cross-spectra ``C (P, Fb)`` towards ``point``: ``(Fb,)``."""
        out = np.empty(C.shape[1])
        kernels.steered_bins(np.ascontiguousarray(C), self.tau[point], float(self.omega[0]), self._domega, out)
        return out

    def cdr_db(self, R: np.ndarray, diag: np.ndarray, point: int) -> float:
        """Coherent-to-diffuse power ratio towards ``point``, dB clipped to [-30, 30], from band cross-spectra
        ``R (P, Fb)`` and auto-spectra ``diag (M, Fb)``: the direct share ``D`` of the power is the least-squares
        fit of every pair's coherence to ``D`` times a plane wave from ``point`` plus ``1 - D`` times the diffuse
        field (:func:`~farfield.kernels.coherence_fit`; the DOA-dependent coherence model of Schwarz and
        Kellermann, "Coherent-to-diffuse power ratio estimation for dereverberation", IEEE/ACM TASLP 2015),
        and the ratio is ``D / (1 - D)``."""
        out = np.empty(2)
        kernels.coherence_fit(R, diag, self._pair_i, self._pair_j, self.tau[point], float(self.omega[0]),
                              self._domega, self.diffuse, out)
        d = min(max(out[0] / out[1], 1e-3), 1.0 - 1e-3) if out[1] > 0 else 1e-3
        return 10 * math.log10(d / (1.0 - d))

    def beam_power(self, R: np.ndarray, diag: np.ndarray, point: int) -> float:
        """Delay-and-sum output power towards ``point`` from band cross-spectra ``R (P, Fb)`` and
        auto-spectra ``diag (M, Fb)``; mean square per sample."""
        M = diag.shape[0]
        total = (np.sum(diag.real) + 2.0 * float(np.sum(self.steered_bins(R, point)))) / (M * M)
        return max(total, 0.0) * 4.0 / self.frame_size**2


# --------------------------------------------------------------------------- streaming localizer
class Localizer:
    """Streaming multi-source localizer.

    The defaults were chosen on the accuracy, diarization and target-selection benchmarks; the runs behind each
    (and the options measured and not made the default) are in ``benchmarks/EXPERIMENTS.md``.

    Args:
        array: an :class:`ArrayGeometry`, a built-in profile name or a TOML path.
        sample_rate: Hz of the audio that will be fed.
        method: ``"srp-phat"`` (default), ``"music"`` or ``"normmusic"``.
        grid: ``"auto"`` (circle for planar arrays: azimuth only, elevation reported as 0; for linear arrays the
            half circle in front of them, ``array.front_deg`` +- 90 degrees, since a direction and its mirror
            image across the array's axis give the same delays; sphere otherwise),
            ``"circle"``, ``"half-circle"`` (facing ``array.front_deg``), ``"sphere"``, ``"half-sphere"`` or a
            :class:`DirectionGrid`.
        grid_resolution: circle: number of azimuths (360); sphere: icosahedral level (4 = 2562 points).
        frame_size, hop_size: STFT sizes in samples. 1024 finds more second talkers on some rooms but not on
            held-out ones, costs target selection and takes 1.6x the time. In a
            :class:`~farfield.frontend.Frontend`, ``localizer_options={"frame_size": 1024}`` gives the localizer an
            STFT of its own (same hop).
        freq_range: band used for localization, Hz.
        smoothing_s: time constant of the cross-spectrum average, seconds.
        noise_margin_db: a time-frequency bin takes part in SRP-PHAT with weight ``1 - margin * noise / power``
            (0 when it is not this far above the bin's tracked noise floor); stationary noise is ignored.
        noise_rise_db_s: how fast the per-bin noise floor may rise, dB per second. The floor starts from the first
            STFT frame without the zeros before the stream's first sample (steady noise from the first sample
            gives no tracks); where talkers speak from the first sample, it starts at their level.
        reverb_delay_s, reverb_db: a bin also needs to stand ``noise_margin_db`` above the late reverberation
            of earlier sound, estimated as the bin's power ``reverb_delay_s`` ago lowered by ``reverb_db``
            (favours the direct sound of onsets over reflections; ``reverb_delay_s=0`` turns it off). With the
            defaults a bin must stand 2 dB above its power 50 ms before: rising or newly started sound.
        update_every: STFT hops per localization update.
        max_sources: most detections per update.
        min_separation_deg: detections closer than this to a stronger one are dropped.
        min_confidence: smallest steered response (mean PHAT correlation) that counts as a source; ``None``: 0.2,
            or 0.1 with ``diffuse_projection`` (which takes most of a talker's response in the low bins). On
            simulated PS Eye rooms 0.07 tracks more talkers, 0.1 gives half the false tracks and chooses the
            target far better (``benchmarks/EXPERIMENTS.md``).
        secondary_confidence: SRP-PHAT: smallest response of a second or later source, measured on the bins
            that the sources found before do not dominate; ``None``: as ``min_confidence``'s default.
        diffuse_projection: SRP-PHAT: remove from each frequency bin's smoothed PHAT cross-spectra (a vector over
            the mic pairs) its component along the coherence of a spherically diffuse field (``sinc(2 f d / c)``
            per pair). A small linear array hears reverberation and diffuse noise as one source at broadside, where
            every pair's delay is 0: in rooms with RT60 0.3-1.0 s and 10-20 dB SNR it pulled the PS Eye's
            detections towards broadside by a median 16-23 deg, and one talker was tracked 21-36 % of the time
            instead of 40-77 % (``benchmarks/EXPERIMENTS.md``). ``None`` (default): on for linear arrays only; a
            planar array hears that field at the zenith, off its azimuth circle, and loses accuracy with it.
        dominance_fit: SRP-PHAT: after each source is found, a bin is down-weighted by ``1 - fit / dominance_fit``
            (removed when its phases fit that source by ``dominance_fit`` or more; see
            :meth:`SteeredResponse.bin_fit`), so that a quieter talker is searched for in the bins it dominates.
            Higher values keep partly fitting bins: more second talkers, more false tracks.
        refine_sources: SRP-PHAT: with two or more sources, search again near each one (within
            ``min_separation_deg``) with only the bins whose phases fit it better than every other found source,
            twice (the second pass with the moved directions): on small arrays the broad peaks of simultaneous
            talkers pull each other off. About 30 % more time per update with two talkers.
        min_free_weight: SRP-PHAT: stop when less than this fraction of the speech weight is left. This is what
            most often hides a second talker (on small arrays a low-frequency bin fits every direction, so the
            first source's mask takes it); lower values find more second talkers and more false ones, from
            reverberant noise.
        weak_free_weight: SRP-PHAT: with less free weight than ``min_free_weight`` but at least this much, the
            masked search still runs, and what it finds is a *weak* detection (``LocalizationFrame.
            weak_detections``) unless the full-band response confirms it: too little evidence to start a track
            (reflections of a louder talker look the same), but the tracker lets it keep an active track alive,
            and the comparison refinement (``refine_sources``) uses it, so a louder talker's direction is no
            longer pulled towards a quieter one it did not report. Equal to ``min_free_weight`` or more: no weak
            detections (nor ``loose_mask_deg``'s search).
        loose_mask_deg: SRP-PHAT, 0 (default): off. Otherwise, when the masked search finds no further source, it is
            tried once more on a looser mask, and what that finds is weak, by the rule of ``weak_free_weight`` (a
            detection where the full-band response confirms it). There a found source takes a bin only by how much
            better the bin fits it than a clean bin from ``loose_mask_deg`` or more away could
            (:meth:`SteeredResponse.far_fit`): a bin taken by fit ``f`` where such a source could reach ``b`` is
            down-weighted by ``1 - (f - b) / ((1 - b) * dominance_fit)``. 60 raises track recall with about as many
            false tracks, but costs target selection.
        secondary_ratio: when the masked search finds nothing (sources that overlap in every bin, such as two
            machines), a second or later source is looked for in the full-band response with the found ones
            removed, and must reach this fraction of the first one's response (MUSIC: of its score).
        min_snr_db: the frame level must exceed the running noise floor by this much.
        refine: coarse-to-fine search (SRP-PHAT only).
        interp: upsampling of the cross-correlations; ``None``: :func:`auto_interp`.

    ``latency_samples``: a detection can only use audio up to the end of the newest frame; its time stamp is
    that frame's centre, ``frame_size / 2`` samples before the newest input.
    """

    def __init__(self, array: ArrayGeometry | str, sample_rate: int, *, method: str = "srp-phat",
                 grid: str | DirectionGrid = "auto", grid_resolution: int | None = None,
                 frame_size: int = 512, hop_size: int = 256, freq_range: tuple[float, float] = (300.0, 6000.0),
                 smoothing_s: float = 0.12, noise_margin_db: float = 8.0, noise_rise_db_s: float = 2.0,
                 reverb_delay_s: float = 0.05, reverb_db: float = 6.0,
                 update_every: int = 2, max_sources: int = 3,
                 min_separation_deg: float = 20.0, min_confidence: float | None = None,
                 secondary_confidence: float | None = None, diffuse_projection: bool | None = None,
                 dominance_fit: float = 0.3, min_free_weight: float = 0.1, weak_free_weight: float = 0.02,
                 loose_mask_deg: float = 0.0, secondary_ratio: float = 0.8,
                 min_snr_db: float = 3.0, refine_sources: bool = True,
                 refine: bool = True, interp: int | None = None, speed_of_sound: float = SPEED_OF_SOUND) -> None:
        self.array = load_array(array)
        self.sample_rate = check_sample_rate(sample_rate)
        if method not in METHODS:
            raise ValueError(f"unknown method '{method}'; expected one of {METHODS}")
        if max_sources < 1:
            raise ValueError(f"max_sources must be >= 1, got {max_sources}")
        if update_every < 1:
            raise ValueError(f"update_every must be >= 1, got {update_every}")
        if smoothing_s <= 0:
            raise ValueError(f"smoothing_s must be > 0 seconds, got {smoothing_s}")
        self.method = method
        if isinstance(grid, DirectionGrid):
            self.grid = grid
        elif grid == "auto":
            # a planar array measures elevation poorly, and reverberation pulls a sphere search towards the
            # zenith (where every TDOA is 0): planar arrays search azimuth only by default, linear ones the half
            # circle in front of them (a direction and its mirror image give the same delays)
            kind = "half-circle" if self.array.is_linear else "circle" if self.array.is_planar else "sphere"
            self.grid = make_grid(kind, grid_resolution, self.array.front_deg if kind == "half-circle" else 0.0)
        elif grid == "half-circle":
            self.grid = make_grid(grid, grid_resolution, self.array.front_deg)
        else:
            self.grid = make_grid(grid, grid_resolution)
        self.stft = StreamingSTFT(self.array.n_mics, frame_size, hop_size)
        # frames that hold the STFT's zeros before the first sample (its history starts as latency_samples zeros)
        self._n_warm = -(-self.stft.latency_samples // hop_size)
        self.frame_size, self.hop_size = frame_size, hop_size
        self.update_every = int(update_every)
        self.max_sources = int(max_sources)
        self.min_separation_deg = float(min_separation_deg)
        self.diffuse_projection = (method == "srp-phat" and self.array.is_linear) if diffuse_projection is None \
            else bool(diffuse_projection)
        if self.diffuse_projection and method != "srp-phat":
            raise ValueError(f"diffuse_projection works on SRP-PHAT's cross-spectra; method is '{method}'")
        default_confidence = _PROJECTED_CONFIDENCE if self.diffuse_projection else 0.2
        self.min_confidence = default_confidence if min_confidence is None else float(min_confidence)
        self.secondary_ratio = float(secondary_ratio)
        self.secondary_confidence = default_confidence if secondary_confidence is None else float(secondary_confidence)
        if not 0 < dominance_fit <= 1:
            raise ValueError(f"dominance_fit must be in (0, 1], got {dominance_fit}")
        self.dominance_fit = float(dominance_fit)
        self.refine_sources = bool(refine_sources)
        self.min_free_weight = float(min_free_weight)
        if not weak_free_weight > 0:
            raise ValueError(f"weak_free_weight must be > 0 (a fraction of the speech weight), got {weak_free_weight}")
        self.weak_free_weight = float(weak_free_weight)
        if not 0 <= loose_mask_deg <= 180:
            raise ValueError(f"loose_mask_deg must be in [0, 180] degrees (0: off), got {loose_mask_deg}")
        self.loose_mask_deg = float(loose_mask_deg)
        self.min_snr_db = float(min_snr_db)
        self.alpha = math.exp(-hop_size / (smoothing_s * self.sample_rate))
        self.power_alpha = math.exp(-hop_size / (0.04 * self.sample_rate))
        self.noise_rise = 10 ** (noise_rise_db_s * hop_size / self.sample_rate / 10)
        self.noise_margin = 10 ** (noise_margin_db / 10)
        self.reverb_frames = int(round(reverb_delay_s * self.sample_rate / hop_size))
        self.reverb_gain = 10 ** (-reverb_db / 10)
        self.engine = SteeredResponse(self.array, self.sample_rate, frame_size, self.grid, freq_range=freq_range,
                                      interp=interp, refine=refine and method == "srp-phat",
                                      speed_of_sound=speed_of_sound)
        M = self.array.n_mics
        pairs = self.array.pairs
        if self.diffuse_projection:  # the diffuse coherence (P, Fb) over its squared norm per band bin
            self._diffuse_unit = self.engine.diffuse / np.maximum(np.sum(self.engine.diffuse**2, axis=0), 1e-12)
        self._pi = np.ascontiguousarray(np.concatenate([pairs[:, 0], np.arange(M)]))
        self._pj = np.ascontiguousarray(np.concatenate([pairs[:, 1], np.arange(M)]))
        self._n_pairs = pairs.shape[0]
        if method != "srp-phat":
            self._mic_delays = np.ascontiguousarray(self.array.mic_delays_s(self.grid.units, speed_of_sound))
        self.reset()

    @property
    def frame_period_s(self) -> float:
        """Seconds between localization updates."""
        return self.update_every * self.hop_size / self.sample_rate

    @property
    def latency_samples(self) -> int:
        return self.frame_size // 2

    @property
    def frames_processed(self) -> int:
        """STFT frames fed so far (an update is emitted after frame ``i`` when ``(i + 1) % update_every == 0``)."""
        return self._frame_index

    def reset(self) -> None:
        self.stft.reset()
        F = self.engine.k1 - self.engine.k0
        self._raw = np.zeros((self._pi.size, F), dtype=np.complex128)
        self._phat = np.zeros((self._n_pairs, F), dtype=np.complex128)
        self._weight = np.zeros(F)
        self._noise = np.zeros(F)
        self._power = np.zeros(F)
        self._history = np.zeros((self.reverb_frames, F))
        self._frame_index = 0

    # -- feeding ------------------------------------------------------------------------------
    def process(self, block: np.ndarray) -> list[LocalizationFrame]:
        """Feed a block ``(n_mics, samples)``; return the updates completed by it."""
        x = check_signals(block, n_channels=self.array.n_mics, name="block", allow_empty=True)
        out: list[LocalizationFrame] = []
        step = self.hop_size * 256  # bound memory on long offline inputs
        for s in range(0, max(x.shape[1], 1), step):
            out += self.process_stft(self.stft._analyse(x[:, s: s + step]))
        return out

    def process_stft(self, frames: np.ndarray) -> list[LocalizationFrame]:
        """Feed STFT frames ``(n_mics, freq, k)`` made with this localizer's frame and hop sizes."""
        X = np.asarray(frames)
        if X.ndim != 3 or X.shape[0] != self.array.n_mics or X.shape[1] != self.stft.n_freqs:
            raise ValueError(f"frames must have shape ({self.array.n_mics}, {self.stft.n_freqs}, n_frames), "
                             f"got {X.shape}")
        k = X.shape[2]
        if k == 0:
            return []
        X = np.ascontiguousarray(X[:, self.engine.k0: self.engine.k1], dtype=np.complex128)
        idx = self._frame_index + np.arange(k)
        emit = ((idx + 1) % self.update_every) == 0
        E, F = int(emit.sum()), X.shape[1]
        raw = np.empty((E, self._pi.size, F), dtype=np.complex128)
        phat = np.empty((E, self._n_pairs, F), dtype=np.complex128)
        weight, noise = np.empty((E, F)), np.empty((E, F))
        kernels.smooth_cross_spectra(X, self._pi, self._pj, self._n_pairs, self.alpha, self.power_alpha,
                                     self.noise_rise, self.noise_margin, self.reverb_gain, self._raw, self._phat,
                                     self._weight, self._noise, self._power, self._history, self._frame_index,
                                     self._n_warm, emit, raw, phat, weight, noise)
        self._frame_index += k
        return [self._update(raw[e], phat[e], weight[e], noise[e], t) for e, t in enumerate(idx[emit])]

    # -- one update ---------------------------------------------------------------------------
    def _update(self, R_all: np.ndarray, phat: np.ndarray, weight: np.ndarray, noise: np.ndarray,
                frame_idx: int) -> LocalizationFrame:
        time_s = ((frame_idx + 1) * self.hop_size - self.frame_size / 2) / self.sample_rate
        P = self._n_pairs
        R, diag = R_all[:P], R_all[P:]
        scale = 4.0 / self.frame_size**2
        per_mic = np.sum(diag.real, axis=1)
        ms = float(per_mic.sum() / per_mic.size) * scale  # np.mean, without its overhead
        level_db = 10 * math.log10(ms + 1e-20)
        floor_db = 10 * math.log10(float(np.sum(noise)) * scale + 1e-20)
        if ms < 1e-12 or level_db - floor_db < self.min_snr_db:
            return LocalizationFrame(time_s, level_db, floor_db, ())
        if self.method == "srp-phat":
            if self.diffuse_projection:
                phat = np.ascontiguousarray(phat - self.engine.diffuse * np.sum(self._diffuse_unit * phat, axis=0))
            dets, weak = self._detect_srp(phat, weight, R, diag)
        else:
            dets, weak = self._detect_music(R_all), []
        return LocalizationFrame(time_s, level_db, floor_db, tuple(dets), tuple(weak))

    def _make_detection(self, point: int, confidence: float, R: np.ndarray, diag: np.ndarray) -> Detection:
        u = self.grid.units[point]
        az, el = unit_to_az_el(u)
        p = self.engine.beam_power(R, diag, point)
        return Detection(float(az), float(el), 10 * math.log10(p + 1e-20), float(confidence),
                         (float(u[0]), float(u[1]), float(u[2])), self.engine.cdr_db(R, diag, point))

    def _far_enough(self, point: int, chosen: list[int]) -> bool:
        if not chosen:
            return True
        d = angular_distance_deg(self.grid.units[chosen], self.grid.units[point])
        return bool(np.all(d >= self.min_separation_deg))

    def _detect_srp(self, phat: np.ndarray, weight: np.ndarray, R: np.ndarray,
                    diag: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """Sources one by one, strongest first: ``(detections, weak detections)``.

        After each source, the bins whose phases fit it are masked out and the search is repeated on the rest:
        with speech each talker dominates its own time-frequency bins, so a quieter talker shows up there even
        when the louder one hides it in the full-band response. When that finds nothing (sources that overlap in
        every bin), the full-band correlations with the found sources' lags zeroed are searched instead. A source
        found on a free weight between ``weak_free_weight`` and ``min_free_weight``, or only on the loose mask
        (``loose_mask_deg``), is weak unless the full-band response confirms it.
        """
        eng = self.engine
        cc = eng.correlations(phat, weight)
        magnitude = np.abs(phat).sum(axis=0)
        mask = np.ones(phat.shape[1])
        loose = np.ones(phat.shape[1]) if self.loose_mask_deg > 0 and self.weak_free_weight < self.min_free_weight \
            else None  # its finds are weak detections: none when those are off
        total = float(np.sum(weight))
        P = self._n_pairs
        chosen: list[int] = []  # grid points: the detections first, then the weak ones
        confs: list[float] = []
        n_strong = 0
        for _ in range(self.max_sources + 2):
            if len(chosen) == self.max_sources:
                break
            g, weak = -1, False
            free = float(np.sum(weight * mask)) / max(total, 1e-30)
            if chosen and free >= min(self.weak_free_weight, self.min_free_weight):
                g, conf = self._masked_search(phat, weight, mask)
                weak = g >= 0 and free < self.min_free_weight
            if chosen and g < 0 and loose is not None \
                    and float(np.sum(weight * loose)) >= self.weak_free_weight * max(total, 1e-30):
                g, conf = self._masked_search(phat, weight, loose)
                weak = g >= 0
            need = max(self.min_confidence, self.secondary_ratio * confs[0] if confs else 0.0)
            if weak and eng.peak_near(cc, g, self.min_separation_deg) >= need * P:
                weak = False  # the full-band response holds a source as strong as a detection needs there
            if g < 0:  # sources that overlap in every bin: the full-band response with the found ones removed
                g, val = eng.best_point(cc, need * P)
                conf = val / P
                if g < 0 or conf < need:
                    break
            if self._far_enough(g, chosen):  # else a side lobe of a found source: remove it and go on
                if weak:
                    chosen.append(g)
                    confs.append(conf)
                else:  # detections stay ahead of weak ones
                    chosen.insert(n_strong, g)
                    confs.insert(n_strong, conf)
                    n_strong += 1
            fit = eng.bin_fit(phat, g, magnitude)
            mask *= np.clip(1.0 - fit / self.dominance_fit, 0.0, 1.0)
            if loose is not None:
                far = eng.far_fit(g, self.loose_mask_deg)
                loose *= np.clip(1.0 - (fit - far) / ((1.0 - far) * self.dominance_fit), 0.0, 1.0)
            eng.suppress(cc, g)
        if self.refine_sources and len(chosen) > 1:
            self._refine(phat, weight, chosen, total, magnitude)
        dets = [self._make_detection(g, c, R, diag) for g, c in zip(chosen, confs)]
        return dets[:n_strong], dets[n_strong:]

    def _masked_search(self, phat: np.ndarray, weight: np.ndarray, mask: np.ndarray) -> tuple[int, float]:
        """The best grid point on the bins left by ``mask (Fb,)`` and its confidence; ``(-1, 0)`` when none
        reaches ``secondary_confidence``."""
        P = self._n_pairs
        g, val = self.engine.best_point(self.engine.correlations(phat * mask, weight * mask),
                                        self.secondary_confidence * P)
        return (g, val / P) if g >= 0 and val / P >= self.secondary_confidence else (-1, 0.0)

    def _refine(self, phat: np.ndarray, weight: np.ndarray, chosen: list[int], total: float, magnitude: np.ndarray,
                passes: int = 2) -> None:
        """Move each found source (``chosen`` grid points, in place) to the best point within
        ``min_separation_deg`` of it, searched with only the bins that fit it better than every other source.
        ``magnitude``: ``np.abs(phat).sum(axis=0)``."""
        eng = self.engine
        for _ in range(passes):
            fits = np.array([eng.bin_fit(phat, g, magnitude) for g in chosen])  # (K, Fb)
            moved = False
            for i, g in enumerate(chosen):
                others = chosen[:i] + chosen[i + 1:]
                m = (fits[i] > np.delete(fits, i, axis=0).max(axis=0)).astype(np.float64)
                if float(np.sum(weight * m)) < self.min_free_weight * total:
                    continue
                gi = eng.best_near(eng.correlations(phat * m, weight * m), g, self.min_separation_deg)
                if gi != g and self._far_enough(gi, others):
                    chosen[i] = gi
                    moved = True
            if not moved:
                return

    def _detect_music(self, R_all: np.ndarray) -> list[Detection]:
        M = self.array.n_mics
        P = self._n_pairs
        Rf = np.zeros((R_all.shape[1], M, M), dtype=np.complex128)
        i, j = self.array.pairs[:, 0], self.array.pairs[:, 1]
        Rf[:, i, j] = R_all[:P].T
        Rf[:, j, i] = np.conj(R_all[:P].T)
        Rf[:, np.arange(M), np.arange(M)] = R_all[P:].T.real
        vals, vecs = np.linalg.eigh(Rf)  # ascending
        # number of sources: eigenvalues (band average, relative to the largest) above 10 %
        rel = np.mean(vals / np.maximum(vals[:, -1:], 1e-30), axis=0)
        n_src = int(np.clip(np.sum(rel > 0.1), 1, min(self.max_sources, M - 2) if M > 2 else 1))
        En = np.ascontiguousarray(vecs[:, :, : M - n_src])
        spec = np.empty((self.grid.n_points, En.shape[0]))
        kernels.music_pseudospectrum(En, self._mic_delays, self.engine.omega, spec)
        np.minimum(spec, 100.0, out=spec)  # nulls deeper than 20 dB count the same: bounded, comparable peaks
        peak = spec.max(axis=0)
        if self.method == "normmusic":  # every frequency weighs the same
            score = (spec / peak).mean(axis=1)
        else:  # plain MUSIC: sum over frequency, scaled so that 1.0 means every frequency peaks here
            score = spec.sum(axis=1) / peak.sum()
        order = np.argsort(score)[::-1]
        chosen: list[int] = []
        dets = []
        diag = R_all[P:]
        for g in order:
            if len(dets) == self.max_sources or score[g] < self.min_confidence:
                break
            if dets and score[g] < self.secondary_ratio * dets[0].confidence:
                break
            if not self._is_local_max(score, g) or not self._far_enough(int(g), chosen):
                continue
            chosen.append(int(g))
            dets.append(self._make_detection(int(g), float(score[g]), R_all[:P], diag))
        return dets

    def _is_local_max(self, score: np.ndarray, g: int) -> bool:
        d = angular_distance_deg(self.grid.units, self.grid.units[g])
        near = d < 2.5 * self.grid.spacing_deg
        return bool(score[g] >= score[near].max())


# --------------------------------------------------------------------------- offline
@dataclass(frozen=True)
class LocalizationResult:
    """Offline result: every localizer update and the tracker's output rows."""

    frames: list[LocalizationFrame]
    tracks: list  # list[TrackRow]; typed loosely to avoid an import cycle with track.py
    sample_rate: int
    array: ArrayGeometry
    settings: dict

    def detections_table(self) -> np.ndarray:
        """All detections as rows ``(time_s, azimuth_deg, elevation_deg, power_db, confidence)``."""
        rows = [(f.time_s, d.azimuth_deg, d.elevation_deg, d.power_db, d.confidence)
                for f in self.frames for d in f.detections]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)


def localize(signals: np.ndarray, sample_rate: int, array: ArrayGeometry | str, *, track: bool = True,
             tracker_options: dict | None = None, **localizer_options) -> LocalizationResult:
    """Localize (and track) the sources in a whole recording ``(n_mics, samples)``.

    Runs the same streaming :class:`Localizer` and :class:`~farfield.track.Tracker` that live use runs, so
    offline and block-by-block results are identical. Keyword options go to :class:`Localizer`;
    ``tracker_options`` to :class:`~farfield.track.Tracker`.
    """
    from .track import Tracker

    geom = load_array(array)
    sr = check_sample_rate(sample_rate)
    x = check_signals(signals, n_channels=geom.n_mics)
    check_not_silent(x)
    loc = Localizer(geom, sr, **localizer_options)
    frames = loc.process(x)
    rows = []
    if track:
        tracker = Tracker(frame_period_s=loc.frame_period_s, **(tracker_options or {}))
        for fr in frames:
            rows += tracker.update(fr)
    settings = {"method": loc.method, "grid": loc.grid.kind, "grid_points": loc.grid.n_points,
                "frame_size": loc.frame_size, "hop_size": loc.hop_size, "update_every": loc.update_every,
                "frame_period_s": loc.frame_period_s, "tracker_options": dict(tracker_options or {}),
                **localizer_options}
    return LocalizationResult(frames, rows, sr, geom, settings)
