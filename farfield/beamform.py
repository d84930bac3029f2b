"""Beamformer weights as plain functions (pb_bss style: frequency first, then mics).

Shapes: steering vectors ``(freq, n_mics)``; covariance matrices ``(freq, n_mics, n_mics)``; weights
``(freq, n_mics)``; a beam output is ``Y(f) = w(f)^H X(f)``. Every beamformer here is normalised to the
*reference mic* (``reference_mic``, default 0): a source from the steering direction comes out as it sounds at
that mic (distortionless), so streams are aligned sample-for-sample with the input's reference channel.

Functions: :func:`steering_vectors`, :func:`delay_and_sum_weights`, :func:`mvdr_weights` (steering vector + noise
covariance; with the diffuse coherence of :func:`diffuse_coherence` it is the superdirective beamformer),
:func:`mvdr_souden_weights` and :func:`gev_weights` (+ :func:`blind_analytic_normalization`) from target and noise
covariances, :func:`lcmv_weights` (unit gain to the target, nulls on other directions), :func:`estimate_covariance`
(mask-weighted) and :func:`apply_weights`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from . import kernels
from .geometry import SPEED_OF_SOUND, ArrayGeometry, az_el_to_unit, spherical_coherence


def steering_vectors(array: ArrayGeometry, azimuth_deg, elevation_deg, freqs_hz: np.ndarray, *,
                     reference_mic: int = 0, speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
    """Far-field relative transfer functions ``(freq, n_mics)`` (or ``(K, freq, n_mics)`` for K directions),
    1 at the reference mic: ``d_m(f) = exp(-2j pi f (tau_m - tau_ref))``."""
    u = az_el_to_unit(np.asarray(azimuth_deg, float), np.asarray(elevation_deg, float))
    tau = array.mic_delays_s(u, speed_of_sound)  # (..., M)
    tau = tau - tau[..., reference_mic: reference_mic + 1]
    f = np.asarray(freqs_hz, float)
    return np.exp(-2j * np.pi * f[:, None] * tau[..., None, :])


def diffuse_coherence(array: ArrayGeometry, freqs_hz: np.ndarray, speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
    """Spherically isotropic noise coherence ``(freq, n_mics, n_mics)`` (for the superdirective beamformer)."""
    return spherical_coherence(array.positions, freqs_hz, speed_of_sound).astype(np.complex128)


def solve_hermitian(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A^-1 B`` per frequency for Hermitian positive-definite ``A (F, M, M)`` and ``B (F, M)`` or ``(F, M, K)``
    (numba Cholesky kernel)."""
    A = np.ascontiguousarray(A, dtype=np.complex128)
    vec = B.ndim == 2
    Bk = np.ascontiguousarray(B[..., None] if vec else B, dtype=np.complex128)
    out = np.empty_like(Bk)
    kernels.hermitian_solve(A, Bk, out)
    return out[..., 0] if vec else out


def _load(cov: np.ndarray, diag_eps: float) -> np.ndarray:
    """``cov + diag_eps * trace(cov) / M * I`` per frequency (relative diagonal loading)."""
    M = cov.shape[-1]
    tr = np.real(np.trace(cov, axis1=-2, axis2=-1))[..., None, None] / M
    return cov + (diag_eps * tr + 1e-12) * np.eye(M)


def delay_and_sum_weights(steering: np.ndarray) -> np.ndarray:
    """``w = d / M`` ``(freq, n_mics)``: aligns and averages the mics."""
    return steering / steering.shape[-1]


def mvdr_weights(steering: np.ndarray, noise_cov: np.ndarray, *, diag_eps: float = 1e-3) -> np.ndarray:
    """MVDR: ``w = R^-1 d / (d^H R^-1 d)`` ``(freq, n_mics)``; ``R`` is loaded by ``diag_eps`` (relative)."""
    Rd = solve_hermitian(_load(noise_cov, diag_eps), steering)
    return Rd / np.einsum("fm,fm->f", steering.conj(), Rd)[:, None]


def lcmv_weights(constraints: np.ndarray, response: np.ndarray, noise_cov: np.ndarray, *,
                 diag_eps: float = 1e-3) -> np.ndarray:
    """LCMV: minimise output noise subject to ``C^H w = g``: ``w = R^-1 C (C^H R^-1 C)^-1 g``.

    constraints: ``(freq, n_mics, K)`` steering vectors (target first, then directions to null);
    response: ``(K,)`` desired gains (e.g. ``[1, 0, 0]``); returns ``(freq, n_mics)``.
    """
    RC = solve_hermitian(_load(noise_cov, diag_eps), constraints)  # (F, M, K)
    G = np.einsum("fmk,fml->fkl", constraints.conj(), RC)
    G = G + 1e-9 * np.real(np.trace(G, axis1=1, axis2=2))[:, None, None] * np.eye(G.shape[-1])
    a = solve_hermitian(G, np.broadcast_to(np.asarray(response, complex), G.shape[:2]))
    return np.einsum("fmk,fk->fm", RC, a)


def mvdr_souden_weights(target_cov: np.ndarray, noise_cov: np.ndarray, *, reference_mic: int = 0,
                        diag_eps: float = 1e-3) -> np.ndarray:
    """MVDR without a steering vector (Souden et al. 2010): ``w = R_n^-1 R_s e_ref / trace(R_n^-1 R_s)``."""
    num = solve_hermitian(_load(noise_cov, diag_eps), target_cov)
    tr = np.real(np.trace(num, axis1=-2, axis2=-1))
    return num[..., :, reference_mic] / (tr[:, None] + 1e-12)


def gev_weights(target_cov: np.ndarray, noise_cov: np.ndarray, *, reference_mic: int = 0,
                diag_eps: float = 1e-3) -> np.ndarray:
    """Max-SNR (generalised eigenvector) beamformer ``(freq, n_mics)``: principal eigenvector of ``(R_s, R_n)``
    per frequency (exact, scipy), its phase turned so the target keeps the phase it has at the reference mic. Its
    gain is arbitrary: follow with :func:`blind_analytic_normalization`. :func:`gev_power_iteration` is the
    streaming version."""
    Rn = _load(noise_cov, diag_eps)
    out = np.empty(target_cov.shape[:2], dtype=np.complex128)
    for f in range(target_cov.shape[0]):
        _, v = scipy.linalg.eigh(target_cov[f], Rn[f], subset_by_index=[target_cov.shape[1] - 1] * 2)
        out[f] = v[:, 0]
    return _gev_phase(out, target_cov, reference_mic)


def gev_power_iteration(target_cov: np.ndarray, noise_cov: np.ndarray, init: np.ndarray, *, iterations: int = 3,
                        reference_mic: int = 0, diag_eps: float = 1e-3) -> np.ndarray:
    """:func:`gev_weights` by power iteration ``v <- R_n^-1 R_s v`` from ``init (freq, n_mics)`` (the previous
    weights, when the covariances move slowly): a few batched Cholesky solves instead of an eigendecomposition
    per frequency. Unit-norm result, phase as :func:`gev_weights`."""
    v = np.asarray(init, dtype=np.complex128)
    if v.shape != target_cov.shape[:2] or noise_cov.shape != target_cov.shape:
        raise ValueError(f"need target_cov and noise_cov (freq, n_mics, n_mics) and init (freq, n_mics); got "
                         f"{target_cov.shape}, {noise_cov.shape} and {v.shape}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    Rn = _load(noise_cov, diag_eps)
    for _ in range(iterations):
        v = solve_hermitian(Rn, np.einsum("fmn,fn->fm", target_cov, v))
        v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-30)
    return _gev_phase(v, target_cov, reference_mic)


def _gev_phase(v: np.ndarray, target_cov: np.ndarray, reference_mic: int) -> np.ndarray:
    """Turn each frequency's eigenvector so that ``w^H R_s e_ref`` (the target's phase at the reference mic
    after the beam, up to its own phase) is real and positive."""
    c = np.einsum("fm,fm->f", v.conj(), target_cov[:, :, reference_mic])
    return v * (c / (np.abs(c) + 1e-20))[:, None]


def blind_analytic_normalization(weights: np.ndarray, noise_cov: np.ndarray) -> np.ndarray:
    """Scale GEV weights so the noise response is undistorted on average (Warsitz & Haeb-Umbach 2007)."""
    M = weights.shape[-1]
    Rw = np.einsum("fmn,fn->fm", noise_cov, weights)
    num = np.sqrt(np.abs(np.einsum("fm,fm->f", Rw.conj(), Rw)) / M)  # sqrt(w^H R R w / M)
    den = np.abs(np.einsum("fm,fm->f", weights.conj(), Rw))  # w^H R w
    return weights * (num / (den + 1e-20))[:, None]


def reference_normalization(weights: np.ndarray, target_cov: np.ndarray, *, reference_mic: int = 0) -> np.ndarray:
    """Scale GEV weights ``(freq, n_mics)`` so that a rank-one target ``R_s = phi h h^H`` (``h`` its transfer
    function relative to the reference mic) passes undistorted, as the reference mic hears it:
    ``w = v (v^H R_s e_ref) / (v^H R_s v)``. For a rank-one target this is the MVDR of :func:`mvdr_souden_weights`."""
    num = np.einsum("fm,fm->f", weights.conj(), target_cov[:, :, reference_mic])
    den = np.real(np.einsum("fm,fmn,fn->f", weights.conj(), target_cov, weights))
    return weights * (num / (den + 1e-20))[:, None]


def estimate_covariance(stft: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mask-weighted spatial covariance ``(freq, n_mics, n_mics)`` of STFT frames ``(n_mics, freq, frames)``;
    ``mask`` ``(freq, frames)`` in [0, 1] (all ones when ``None``); normalised by the mask sum per frequency."""
    X = np.asarray(stft)
    if X.ndim != 3:
        raise ValueError(f"stft must have shape (n_mics, freq, frames), got {X.shape}")
    m = np.ones(X.shape[1:]) if mask is None else np.asarray(mask, float)
    if m.shape != X.shape[1:]:
        raise ValueError(f"mask must have shape (freq, frames) = {X.shape[1:]}, got {m.shape}")
    cov = np.einsum("ft,mft,nft->fmn", m, X, X.conj())
    return cov / np.maximum(m.sum(axis=1), 1e-12)[:, None, None]


def apply_weights(weights: np.ndarray, stft: np.ndarray) -> np.ndarray:
    """Beam output ``(freq, frames)`` = ``w^H X`` for ``weights (freq, n_mics)`` and ``stft (n_mics, freq, frames)``
    (or one frame ``(n_mics, freq)`` -> ``(freq,)``)."""
    return np.einsum("fm,mf...->f...", weights.conj(), stft)
