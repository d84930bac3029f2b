"""Separation: one beamformed mono stream per tracked talker, streaming, with pre-roll.

:class:`Separator` is fed STFT frames ``(n_mics, freq)`` one at a time together with the tracker's latest rows.
For every track it keeps a stream: a beam toward the track's direction whose weights are recomputed at each
tracker update. Methods:

- ``"das"``: delay-and-sum;
- ``"superdirective"`` (default; best in ``benchmarks/separation.py``): MVDR against spherically diffuse noise;
- ``"mvdr"``: MVDR against an adaptive noise covariance (updated only in time-frequency bins that sit at
  their noise floor, so machines and other steady sources are learned and cancelled while speech is not) plus
  the other active tracks as strong rank-one interferers (soft nulls);
- ``"lcmv"``: unit gain to the track and hard nulls toward the other active tracks, against the same adaptive
  noise covariance (soft nulls in the bins where the directions cannot be told apart, mostly low frequencies).
- ``"mask-mvdr"``: MVDR without a steering vector (Souden) from a target and a noise covariance per track, each
  averaged over time with a time-frequency mask: the spatial posterior that a bin comes from that track
  (a softmax over the tracks' steering fits ``|d^H x|^2 / (|d|^2 |x|^2)`` and a diffuse-noise class). It keeps
  the talker's reverberant image at the reference mic instead of only the direct path. A bin uses superdirective
  weights until its track has gathered ``mask_min_frames`` frames of mask.
- ``"mask-gev"``: the same masked covariances, max-SNR (generalised eigenvector) weights tracked by a few power
  iterations per update. Scaled by default so the talker's rank-one part reaches the reference mic undistorted
  (``gev_normalization="reference"``), or by blind analytic normalisation (``"ban"``), which leaves the
  output spectrally coloured.

Pre-roll: the last ``preroll_s`` of STFT frames are kept; when a track is born its stream starts with those
frames beamformed toward it, so the onset that happened while the tracker was still confirming the track is not
lost. Streams end ``keep_s`` after their track's last row; when the tracker revives that track soon after (it keeps
a silent track's id for a while), the new stream's pre-roll starts where the old stream stopped, so no sample of a
track's stream is given twice. A stream chunk is ``(start_sample, samples)`` in input
sample time, so placing chunks at their start gives output aligned sample-for-sample with the input.
Latency: ``frame_size - hop_size`` samples (STFT analysis + synthesis); nothing else waits for future audio.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .beamform import (apply_weights, blind_analytic_normalization, delay_and_sum_weights, diffuse_coherence,
                       gev_power_iteration, lcmv_weights, mvdr_souden_weights, mvdr_weights, reference_normalization,
                       steering_vectors)
from ._validate import check_settings
from .geometry import ArrayGeometry, load_array
from .stft import StreamingISTFT

METHODS = ("das", "superdirective", "mvdr", "lcmv", "mask-mvdr", "mask-gev")
MASKED = ("mask-mvdr", "mask-gev")  # the methods with masked covariances per track


@dataclass
class _Stream:
    track_id: int
    azimuth_deg: float
    elevation_deg: float
    last_seen_frame: int
    istft: StreamingISTFT
    start_frame: int
    weights: np.ndarray | None = None
    pf_power: np.ndarray | None = None
    pf_history: deque | None = None  # the post-filter's smoothed powers of the last frames (late reverberation)
    steer: np.ndarray | None = None  # (F, M) steering vectors toward the track, referenced to the reference mic
    leak: dict = field(default_factory=dict)  # other track id -> (F,) |w^H d_other|^2, while weights and steers hold
    preroll: list | None = None  # frames from before the track was born, beamformed with its first frame
    emit_from: int | None = None  # the earliest input sample of its chunks (where the track's ended stream stopped)
    base_weights: np.ndarray | None = None  # (F, M) superdirective weights, where the mask is too thin
    phi_s: np.ndarray | None = None  # (F, M, M) mask-weighted target covariance (MASKED methods)
    phi_n: np.ndarray | None = None  # (F, M, M) mask-weighted noise covariance
    mass: np.ndarray | None = None  # (F,) frames of target mask gathered (decaying)
    gev: np.ndarray | None = None  # (F, M) unit eigenvectors ("mask-gev"), the next power iteration's start


class Separator:
    """Streaming per-track beamformer (see the module docstring).

    Args:
        array: geometry (or profile name / TOML path).
        sample_rate: Hz.
        frame_size, hop_size: STFT sizes of the frames that will be fed.
        method: one of :data:`METHODS`.
        reference_mic: streams sound as the talker does at this mic.
        preroll_s: audio kept to start a new stream before its track was confirmed.
        keep_s: a stream continues toward the last direction this long after its track's last row.
        noise_time_s: time constant of the noise covariance average.
        noise_margin_db: a bin counts as noise when within this margin of its tracked floor.
        interferer_gain: ``"mvdr"``: weight of the other tracks' rank-one terms relative to the mean noise power.
        diffuse_loading: the noise covariance is loaded with this fraction of its power times the diffuse
            coherence (robustness to steering errors and to noise not yet observed).
        postfilter: a Wiener-like gain per beam, ``max(1 - (beta * noise + late + leak) / power, floor)``, with the
            beam's noise power ``w^H Phi_n w`` from the adaptive noise covariance, its output power smoothed over
            40 ms, ``late`` its late reverberation (see ``postfilter_rt60_s``) and ``leak`` the other talkers
            through it (see ``postfilter_leakage``). Off by default: it removes residual noise, reverberation and
            crosstalk for listening but its distortions tend to hurt ASR.
        postfilter_floor_db: lowest gain of the post-filter; postfilter_oversubtraction: ``beta``.
        postfilter_rt60_s: reverberation time the post-filter assumes for its late-reverberation estimate
            (Lebart et al. 2001): the beam's smoothed power ``T`` earlier (the whole number of hops nearest 50 ms)
            times ``exp(-2 * delta * T)``, ``delta = 3 ln(10) / rt60``; 0 turns it off. In the rooms of
            ``benchmarks/separation.py`` (6-mic, 2 talkers, SNR 5 dB, 8 rooms each) 0.8 s raised the post-filtered
            streams' SI-SDR improvement from 7.5 to 8.1 dB at RT60 0.6 s, from 7.7 to 7.9 at 0.3 s and from 7.3 to
            8.6 at 1.0 s (8 other rooms at RT60 0.6 s: 7.3 to 7.9).
        postfilter_leakage: ``eta`` of the post-filter's crosstalk estimate, as in ODAS / Valin et al. (2004) but
            weighted by the beam's response toward each other stream's track: ``leak = eta * sum_j |w^H d_j|^2
            P_j`` with ``P_j`` the other stream's smoothed output power; 0 turns it off. With the late-reverberation
            term, 0.5 raised the goal cell above (8 rooms, seeds 0-7) from 8.1 to 8.5 dB and 8 other rooms
            (seeds 8-15) from 7.9 to 8.2; 1.0 gave 8.3 on the first 8. 4 rooms each of 3 talkers (6-mic), of the
            4-mic array and of RT60 0.3 s / SNR 15 dB gained 0.3-0.5 dB.
        max_null_coherence: ``"lcmv"``: no hard null in bins where the other track's steering vector is this
            similar to the target's (|d_k^H d_j| / M); soft nulls are used there instead.
        mask_sharpness, mask_time_s, mask_min_frames: ``"mask-mvdr"`` and ``"mask-gev"``: softmax sharpness of
            the spatial posterior, time constant of the masked covariances, and the mask mass a bin needs before its
            masked weights replace the superdirective ones.
        gev_normalization: ``"mask-gev"``: ``"reference"`` (undistorted rank-one target at the reference mic) or
            ``"ban"`` (blind analytic normalisation).
    """

    MASK_WEIGHT_FRAMES = 4
    """Masked methods: their weights are recomputed at least every this many frames."""

    def __init__(self, array: ArrayGeometry | str, sample_rate: int, *, frame_size: int = 512, hop_size: int = 256,
                 method: str = "superdirective", reference_mic: int = 0, preroll_s: float = 0.5, keep_s: float = 6.0,
                 noise_time_s: float = 1.0, noise_margin_db: float = 6.0, interferer_gain: float = 100.0,
                 diffuse_loading: float = 0.05, max_null_coherence: float = 0.9, postfilter: bool = False,
                 postfilter_floor_db: float = -12.0, postfilter_oversubtraction: float = 2.0,
                 postfilter_rt60_s: float = 0.8, postfilter_leakage: float = 0.5, mask_sharpness: float = 80.0,
                 mask_time_s: float = 2.0, mask_min_frames: float = 10.0, gev_normalization: str = "reference") -> None:
        if method not in METHODS:
            raise ValueError(f"unknown separation method '{method}'; expected one of {METHODS}")
        if gev_normalization not in ("reference", "ban"):
            raise ValueError(f"gev_normalization must be 'reference' or 'ban', got {gev_normalization!r}")
        self.gev_normalization = gev_normalization
        self.array = load_array(array)
        self.sample_rate = int(sample_rate)
        self.frame_size, self.hop_size = int(frame_size), int(hop_size)
        self.method = method
        if not 0 <= reference_mic < self.array.n_mics:
            raise ValueError(f"reference_mic must be in 0..{self.array.n_mics - 1}, got {reference_mic}")
        self.reference_mic = reference_mic
        self.freqs = np.fft.rfftfreq(frame_size, 1.0 / sample_rate)
        self.preroll_frames = int(round(preroll_s * sample_rate / hop_size))
        self.keep_frames = int(round(keep_s * sample_rate / hop_size))
        self.alpha = math.exp(-hop_size / (noise_time_s * sample_rate))
        self.power_alpha = math.exp(-hop_size / (0.04 * sample_rate))
        self.noise_rise = 10 ** (3.0 * hop_size / sample_rate / 10)  # floor may rise 3 dB/s
        self.margin = 10 ** (noise_margin_db / 10)
        self.interferer_gain = float(interferer_gain)
        self.diffuse_loading = float(diffuse_loading)
        self.postfilter = bool(postfilter)
        self.postfilter_floor = 10 ** (postfilter_floor_db / 20)
        self.postfilter_beta = float(postfilter_oversubtraction)
        check_settings("Separator", postfilter_rt60_s=postfilter_rt60_s, postfilter_leakage=postfilter_leakage)
        self.postfilter_leakage = float(postfilter_leakage)
        self.reverb_frames = max(1, int(round(0.05 * sample_rate / hop_size)))
        decay = 3.0 * math.log(10.0) / postfilter_rt60_s if postfilter_rt60_s > 0 else math.inf
        self.reverb_gain = math.exp(-2.0 * decay * self.reverb_frames * hop_size / sample_rate)
        self.max_null_coherence = float(max_null_coherence)
        self.mask_sharpness, self.mask_min_frames = float(mask_sharpness), float(mask_min_frames)
        self.mask_alpha = math.exp(-hop_size / (mask_time_s * sample_rate))
        M = self.array.n_mics
        self._gamma = diffuse_coherence(self.array, self.freqs) + 1e-2 * np.eye(M)
        self.reset()

    @property
    def latency_samples(self) -> int:
        return self.frame_size - self.hop_size

    def reset(self) -> None:
        F = self.freqs.size
        self._phi = np.ascontiguousarray(1e-10 * self._gamma)
        self._noise = np.zeros(F)
        self._power = np.zeros(F)
        self._buffer: deque = deque(maxlen=max(1, self.preroll_frames))
        self._streams: dict[int, _Stream] = {}
        self._ended: dict[int, int] = {}  # track id -> where its ended stream stopped (while a pre-roll can reach it)
        self._active: list[int] = []
        self._frame = 0
        self._dirty = True

    # -- weights ---------------------------------------------------------------------------------------------
    def _noise_cov(self) -> np.ndarray:
        M = self.array.n_mics
        tr = np.real(np.trace(self._phi, axis1=1, axis2=2)) / M
        return self._phi + (self.diffuse_loading * tr + 1e-12)[:, None, None] * self._gamma

    def _compute_weights(self, active: list[int]) -> None:
        streams = list(self._streams.values())
        steer = {s.track_id: steering_vectors(self.array, s.azimuth_deg, s.elevation_deg, self.freqs,
                                              reference_mic=self.reference_mic) for s in streams}
        for s in streams:
            s.steer = steer[s.track_id]
            s.leak = {}  # the post-filter's crosstalk responses follow the new steers and weights
        if self.method == "das":
            for s in streams:
                s.weights = delay_and_sum_weights(steer[s.track_id])
            return
        if self.method == "superdirective":
            for s in streams:
                s.weights = mvdr_weights(steer[s.track_id], self._gamma, diag_eps=1e-3)
            return
        if self.method in MASKED:
            for s in streams:
                d = steer[s.track_id]
                s.base_weights = mvdr_weights(d, self._gamma, diag_eps=1e-3)
                if s.weights is None or s.mass is None:
                    self._mask_weights(s)
                else:  # the masked weights follow their own schedule (MASK_WEIGHT_FRAMES); only thin bins move now
                    thin = s.mass < self.mask_min_frames
                    s.weights[thin] = s.base_weights[thin]
            return
        R = self._noise_cov()
        scale = np.real(np.trace(R, axis1=1, axis2=2))[:, None, None] / self.array.n_mics
        for s in streams:
            others = [steer[j] for j in active if j != s.track_id and j in steer]
            Rk = R.copy()
            for d in others:  # soft nulls (the whole "mvdr" method; lcmv's fallback where hard nulls cannot be)
                Rk += self.interferer_gain * scale * np.einsum("fm,fn->fmn", d, d.conj())
            s.weights = mvdr_weights(steer[s.track_id], Rk, diag_eps=1e-3)
            if self.method == "lcmv" and others:
                others = others[: self.array.n_mics - 2]
                C = np.stack([steer[s.track_id], *others], axis=-1)
                g = np.zeros(C.shape[-1])
                g[0] = 1.0
                # where an interferer's steering vector is nearly the target's (low frequencies, close
                # directions) a null would also remove the target: keep the soft-null weights there
                rho = np.abs(np.einsum("fm,fmk->fk", steer[s.track_id].conj(), C[..., 1:])) / self.array.n_mics
                ok = np.max(rho, axis=1) < self.max_null_coherence
                if np.any(ok):
                    s.weights[ok] = lcmv_weights(C[ok], g, R[ok], diag_eps=1e-3)

    def _postfilter(self, s: "_Stream", Y: np.ndarray) -> np.ndarray:
        """Wiener post-filter of one stream's frames ``(freq, k)``."""
        # what is not the talker: oversubtracted noise, plus the other talkers through this beam's response
        # toward them (crosstalk); late reverberation is added per frame below
        unwanted = self.postfilter_beta * np.real(np.einsum("fm,fmn,fn->f", s.weights.conj(), self._phi, s.weights))
        if self.postfilter_leakage > 0:
            for o in self._streams.values():
                if o is not s and o.pf_power is not None and o.steer is not None:
                    resp = s.leak.get(o.track_id)
                    if resp is None:
                        resp = s.leak[o.track_id] = np.abs(np.einsum("fm,fm->f", s.weights.conj(), o.steer)) ** 2
                    unwanted = unwanted + self.postfilter_leakage * resp * o.pf_power
        if s.pf_power is None:
            s.pf_power = np.abs(Y[:, 0]) ** 2
            s.pf_history = deque([s.pf_power] * self.reverb_frames, maxlen=self.reverb_frames)
        out = np.empty_like(Y)
        for t in range(Y.shape[1]):
            late = self.reverb_gain * s.pf_history[0]  # the power reverb_frames ago, decayed
            s.pf_power = self.power_alpha * s.pf_power + (1 - self.power_alpha) * np.abs(Y[:, t]) ** 2
            s.pf_history.append(s.pf_power)
            gain = np.maximum(1.0 - (unwanted + late) / np.maximum(s.pf_power, 1e-30),
                              self.postfilter_floor)
            out[:, t] = gain * Y[:, t]
        return out

    def _mask_weights(self, s: "_Stream") -> None:
        """Masked methods: Souden MVDR or GEV weights in the bins with enough mask, superdirective elsewhere."""
        s.weights = s.base_weights.copy()
        s.leak = {}
        ok = s.mass >= self.mask_min_frames if s.mass is not None else np.zeros(self.freqs.size, bool)
        if not np.any(ok):
            return
        if self.method == "mask-mvdr":
            s.weights[ok] = mvdr_souden_weights(s.phi_s[ok], s.phi_n[ok], reference_mic=self.reference_mic)
            return
        if s.gev is None:
            s.gev = s.base_weights / np.linalg.norm(s.base_weights, axis=1, keepdims=True)  # start at the beam
        s.gev[ok] = gev_power_iteration(s.phi_s[ok], s.phi_n[ok], s.gev[ok], reference_mic=self.reference_mic)
        if self.gev_normalization == "ban":
            s.weights[ok] = blind_analytic_normalization(s.gev[ok], s.phi_n[ok])
        else:
            s.weights[ok] = reference_normalization(s.gev[ok], s.phi_s[ok], reference_mic=self.reference_mic)

    def _update_masked_covariances(self, X: np.ndarray) -> None:
        """Masked methods: spatial posteriors of one frame ``X (M, F)`` and the streams' masked covariances."""
        streams = [s for s in self._streams.values() if s.steer is not None]
        if not streams:
            return
        M, F = X.shape
        xn = X / (np.linalg.norm(X, axis=0, keepdims=True) + 1e-30)
        # steering vectors have unit-modulus entries (norm sqrt(M)): the fit is |d^H x|^2 / (|d|^2 |x|^2) in [0, 1]
        fit = np.stack([np.abs(np.einsum("fm,mf->f", s.steer.conj(), xn)) ** 2 for s in streams]) / M  # (K, F)
        fit = np.concatenate([fit, np.full((1, F), 1.0 / M + 0.1)])  # + a diffuse-noise class
        z = np.exp(self.mask_sharpness * (fit - fit.max(axis=0)))
        post = z / z.sum(axis=0)
        for k, s in enumerate(streams):
            if s.phi_s is None:
                s.phi_s = np.zeros((F, M, M), dtype=np.complex128)
                s.phi_n = np.zeros((F, M, M), dtype=np.complex128)
                s.mass = np.zeros(F)
            kernels.update_masked_covariances(X, np.ascontiguousarray(post[k]), self.mask_alpha, s.phi_s, s.phi_n,
                                              s.mass)

    # -- feeding ---------------------------------------------------------------------------------------------
    def update_tracks(self, rows) -> None:
        """Give the tracker's rows of its latest update (``TrackRow`` objects: id, azimuth, elevation)."""
        active = []
        for r in rows:
            s = self._streams.get(r.track_id)
            if s is None:
                start = self._frame - len(self._buffer)
                s = _Stream(r.track_id, r.azimuth_deg, r.elevation_deg, self._frame,
                            StreamingISTFT(1, self.frame_size, self.hop_size), start)
                self._streams[r.track_id] = s
                s.preroll = list(self._buffer)
                s.emit_from = self._ended.pop(r.track_id, None)
            s.azimuth_deg, s.elevation_deg, s.last_seen_frame = r.azimuth_deg, r.elevation_deg, self._frame
            active.append(r.track_id)
        self._active = active
        self._dirty = True

    def process_frame(self, X: np.ndarray) -> dict[int, tuple[int, np.ndarray]]:
        """Feed one STFT frame ``(n_mics, freq)``; return ``{track_id: (start_sample, samples)}`` for the audio
        this frame completes (a new stream's first chunk also holds its pre-roll)."""
        X = np.ascontiguousarray(X, dtype=np.complex128)
        if X.shape != (self.array.n_mics, self.freqs.size):
            raise ValueError(f"frame must have shape ({self.array.n_mics}, {self.freqs.size}), got {X.shape}")
        kernels.update_noise_covariance(X, self._phi, self._noise, self._power, self.alpha, self.power_alpha,
                                        self.noise_rise, self.margin)
        lat = self.latency_samples
        if self._ended:
            reach = (self._frame - len(self._buffer)) * self.hop_size - lat  # where a new stream's pre-roll starts
            self._ended = {t: e for t, e in self._ended.items() if e > reach}
        for tid in [t for t, s in self._streams.items() if self._frame - s.last_seen_frame > self.keep_frames]:
            del self._streams[tid]
            self._ended[tid] = self._frame * self.hop_size - lat  # every stream gave audio up to the last frame
        if self._dirty and self._streams:
            self._compute_weights(self._active)
            self._dirty = False
        elif self.method in MASKED and self._frame % self.MASK_WEIGHT_FRAMES == 0:
            for st in self._streams.values():  # the masked covariances move with every frame
                if st.base_weights is not None:
                    self._mask_weights(st)
        if self.method in MASKED:
            self._update_masked_covariances(X)
        out = {}
        for tid, s in self._streams.items():
            if s.preroll is not None:
                frames = np.stack([*s.preroll, X], axis=-1)  # (M, F, k)
                s.preroll = None
            else:
                frames = X[:, :, None]
            Y = apply_weights(s.weights, frames)
            if self.postfilter:
                Y = self._postfilter(s, Y)
            audio = s.istft.process(Y[None])[0]
            start = (self._frame - frames.shape[2] + 1) * self.hop_size - lat
            if s.emit_from is not None and start < s.emit_from:  # a revived track: its ended stream gave this part
                audio, start = audio[s.emit_from - start:], s.emit_from
            out[tid] = (start, audio)
        self._buffer.append(X)
        self._frame += 1
        return out


class OnlineWPE:
    """Streaming multichannel dereverberation (weighted prediction error, recursive least squares).

    ``process_frame(X (n_mics, freq)) -> (n_mics, freq)``: removes late reverberation predicted from frames at
    least ``delay`` hops old. No added latency. Experimental and off by default: in ``benchmarks/separation.py``
    it changes the superdirective streams' SI-SDR (direct-path target) by +0.3..+1.0 dB at RT60 1.0 s but by
    -0.3 dB on average over all two-talker rooms, and on a clean single talker in a very reverberant room it
    whitens the speech and SI-SDR drops. ``alpha``: forgetting factor per frame (0.99 ~ 1.6 s at a
    16 ms hop). State per frequency: ``(n_mics * taps)^2`` complex values.
    """

    def __init__(self, n_mics: int, n_freqs: int, *, taps: int = 6, delay: int = 2, alpha: float = 0.99) -> None:
        self.n_mics, self.n_freqs = int(n_mics), int(n_freqs)
        self.taps, self.delay, self.alpha = int(taps), int(delay), float(alpha)
        if self.taps < 1 or self.delay < 1:
            raise ValueError(f"taps and delay must be >= 1, got {taps} and {delay}")
        self.reset()

    def reset(self) -> None:
        K = self.n_mics * self.taps
        self._hist = np.zeros((self.n_freqs, self.taps + self.delay, self.n_mics), dtype=np.complex128)
        self._P = np.ascontiguousarray(np.broadcast_to(np.eye(K, dtype=np.complex128) * 1e4,
                                                       (self.n_freqs, K, K)).copy())
        self._G = np.zeros((self.n_freqs, K, self.n_mics), dtype=np.complex128)
        self._power = np.zeros(self.n_freqs)
        self._t = 0

    def process_frame(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.complex128)
        out = np.empty_like(X)
        kernels.online_wpe_step(X, self._hist, self._P, self._G, self._power, out, self.alpha, self.taps, self.delay,
                                self._t)
        self._t += 1
        return out
