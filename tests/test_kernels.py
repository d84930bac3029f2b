"""Numba kernels against their numpy references on random inputs."""

import numpy as np
import pytest
from reference import (best_far_fit_ref, coherence_fit_ref, lag_correlations_ref, music_pseudospectrum_ref,
                       running_max_ref, smooth_cross_spectra_ref, srp_lookup_ref, steered_bins_ref,
                       update_masked_covariances_ref, zero_around_lags_ref)

from farfield import kernels


def crandn(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@pytest.mark.parametrize("C,F,T", [(2, 5, 7), (4, 33, 12), (6, 129, 3)])
def test_smooth_cross_spectra_matches_reference(rng, C, F, T):
    X = crandn(rng, C, F, T)
    X[:, 0, 0] = 0  # a silent bin
    i, j = np.triu_indices(C, 1)
    pi = np.concatenate([i, np.arange(C)]).astype(np.int64)
    pj = np.concatenate([j, np.arange(C)]).astype(np.int64)
    n_off = i.size
    emit = rng.random(T) < 0.5
    emit[-1] = True
    states = [np.zeros((pi.size, F), complex), np.zeros((n_off, F), complex), np.zeros(F), np.zeros(F), np.zeros(F),
              rng.random((3, F))]
    ref_states = [s.copy() for s in states]
    E = int(emit.sum())
    outs = [np.empty((E, pi.size, F), complex), np.empty((E, n_off, F), complex), np.empty((E, F)), np.empty((E, F))]
    # frames 5 and 6 of the stream hold its start padding (n_warm = 7)
    kernels.smooth_cross_spectra(X, pi, pj, n_off, 0.8, 0.6, 1.01, 2.0, 0.3, *states, 5, 7, emit, *outs)
    ref = smooth_cross_spectra_ref(X, pi, pj, n_off, 0.8, 0.6, 1.01, 2.0, 0.3, *ref_states, 5, 7, emit)
    for a, b in zip(outs, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(states, ref_states):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_srp_lookup_matches_reference(rng):
    P, L, G = 7, 64, 50
    cc = rng.standard_normal((P, L))
    idx0 = rng.integers(0, L, (G, P)).astype(np.int64)
    frac = rng.random((G, P))
    out = np.empty(G)
    kernels.srp_lookup(cc, idx0, frac, out)
    np.testing.assert_allclose(out, srp_lookup_ref(cc, idx0, frac), rtol=1e-12)


@pytest.mark.parametrize("H", [0, 1, 20])
def test_lag_correlations_matches_reference(rng, H):
    P, F = 15, 183
    C = crandn(rng, P, F)
    C[:, rng.random(F) < 0.5] = 0.0  # masked-out bins (the kernel skips them)
    C[3, :7] = 1j * rng.standard_normal(7)  # a bin with a zero real part only is not skipped
    omega = rng.uniform(0, 2 * np.pi * 8000, F)
    lags = np.arange(-H, H + 1) * rng.uniform(1e-5, 1e-4)  # symmetric about 0, as the localizer's
    basis = np.exp(1j * omega[:, None] * lags[None, :])  # (F, 2H + 1)
    out = np.empty((P, 2 * H + 1))
    kernels.lag_correlations(C, basis[:, H:].real.copy(), basis[:, H:].imag.copy(), 0.25, out)
    np.testing.assert_allclose(out, lag_correlations_ref(C, basis, 0.25), rtol=1e-10, atol=1e-10)


def test_update_masked_covariances_matches_reference(rng):
    M, F = 6, 40
    X = crandn(rng, M, F)
    post = rng.uniform(0, 1, F)
    A, B = crandn(rng, F, M, M), crandn(rng, F, M, M)
    phi_s, phi_n = A @ A.conj().transpose(0, 2, 1), B @ B.conj().transpose(0, 2, 1)
    mass = rng.uniform(0, 5, F)
    ref = update_masked_covariances_ref(X, post, 0.95, phi_s, phi_n, mass)
    kernels.update_masked_covariances(X, post, 0.95, phi_s, phi_n, mass)
    for got, want in zip((phi_s, phi_n, mass), ref):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_steered_bins_matches_reference(rng):
    P, F = 28, 183
    C = crandn(rng, P, F)
    tau = rng.uniform(-3e-4, 3e-4, P)
    omega = 2 * np.pi * (300 + 31.25 * np.arange(F))
    out = np.empty(F)
    kernels.steered_bins(C, tau, omega[0], omega[1] - omega[0], out)
    np.testing.assert_allclose(out, steered_bins_ref(C, tau, omega), rtol=1e-9, atol=1e-9)


def test_coherence_fit_matches_reference(rng):
    M, F = 8, 183
    pairs = np.array([(i, j) for i in range(M) for j in range(i + 1, M)], dtype=np.int64)
    P = len(pairs)
    C = crandn(rng, P, F)
    diag = rng.uniform(0.1, 2.0, (M, F)).astype(np.complex128)
    diag[3, 10] = 0.0  # a mic with no power in one bin: its pairs' bin is skipped
    tau = rng.uniform(-3e-4, 3e-4, P)
    omega = 2 * np.pi * (300 + 31.25 * np.arange(F))
    gamma = rng.uniform(-0.2, 1.0, (P, F))
    out = np.empty(2)
    kernels.coherence_fit(C, diag, pairs[:, 0].copy(), pairs[:, 1].copy(), tau, omega[0], omega[1] - omega[0],
                          gamma, out)
    np.testing.assert_allclose(out, coherence_fit_ref(C, diag, pairs[:, 0], pairs[:, 1], tau, omega, gamma),
                               rtol=1e-9, atol=1e-9)


def test_best_far_fit_matches_reference(rng):
    dtau = rng.uniform(-3e-4, 3e-4, (40, 15))
    omega = 2 * np.pi * (300 + 31.25 * np.arange(183))
    out = np.empty(omega.size)
    kernels.best_far_fit(dtau, omega, out)
    np.testing.assert_allclose(out, best_far_fit_ref(dtau, omega), rtol=1e-12, atol=1e-12)


def test_zero_around_lags_matches_reference(rng):
    cc = rng.standard_normal((5, 32))
    centre = np.array([0, 31, 5, 16, 2], dtype=np.int64)
    ref = zero_around_lags_ref(cc, centre, 3)
    kernels.zero_around_lags(cc, centre, 3)
    np.testing.assert_array_equal(cc, ref)


@pytest.mark.parametrize("half_width", [0, 1, 4, 40])
def test_running_max_matches_reference(rng, half_width):
    cc = rng.standard_normal((6, 33))
    out = np.empty_like(cc)
    kernels.running_max(cc, half_width, out)
    np.testing.assert_array_equal(out, running_max_ref(cc, half_width))


def test_music_pseudospectrum_matches_reference(rng):
    F, M, K, G = 9, 5, 3, 20
    En = np.linalg.qr(crandn(rng, F, M, M))[0][:, :, :K].copy()
    delays = rng.uniform(-2e-4, 2e-4, (G, M))
    omega = np.linspace(100, 2 * np.pi * 6000, F)
    out = np.empty((G, F))
    kernels.music_pseudospectrum(En, delays, omega, out)
    np.testing.assert_allclose(out, music_pseudospectrum_ref(En, delays, omega), rtol=1e-9)


def test_branch_and_bound_equals_full_scan_on_random_correlations(rng):
    import farfield as ff
    from farfield.localize import SteeredResponse

    arr = ff.load_array("matrix-creator")
    eng = SteeredResponse(arr, 16000, 512, ff.sphere_grid(4, half=True))
    for _ in range(20):
        cc = np.ascontiguousarray(rng.standard_normal((arr.pairs.shape[0], eng.n_lags)))
        g, v = eng.best_point(cc)
        ref = srp_lookup_ref(cc, eng.idx0, eng.frac)
        assert g == int(np.argmax(ref)) and v == pytest.approx(ref.max())
        # a floor just under the maximum finds it; one just over it finds nothing (the search stops early)
        assert eng.best_point(cc, floor=float(ref.max()) - 1e-9)[0] == g
        assert eng.best_point(cc, floor=float(ref.max()) + 1e-9)[0] == -1
