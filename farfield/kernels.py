"""Every numba kernel of farfield, and nothing else.

Each kernel has a plain-numpy reference in ``tests/reference.py`` that the tests compare against on random
inputs. Arrays are C-contiguous float64 / complex128 / int64; kernels never allocate their outputs, callers
pass them in. ``prange`` runs over frequency or over grid points.

Sign convention: the cross-spectrum of pair ``(i, j)`` is ``R_ij(f) = E[X_i(f) conj(X_j(f))]``; a source whose
wave reaches mic i ``tau_ij`` seconds after mic j gives ``R_ij ~ exp(-1j * w * tau_ij)``, and its steered
response is ``Re(R_ij * exp(+1j * w * tau_ij))``.
"""

from __future__ import annotations

import os

# GNU OpenMP (numba's default threading layer where libgomp exists) spins its idle workers; between the many
# small kernel calls of a streaming pipeline those spinning threads take the cores from the calling thread
# (measured: 10x slower on 2 cores). Passive waiting costs nothing here. Set before libgomp starts; a value
# the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402


@njit(cache=True, parallel=True)
def smooth_cross_spectra(X, pair_i, pair_j, n_off, alpha, power_alpha, noise_rise, margin, rev_gain,
                         raw, phat, weight, noise, power, history, frame_offset, n_warm, emit,
                         out_raw, out_phat, out_weight, out_noise):  # pragma: no cover
    """Recursive averages of pair cross-spectra, raw and speech-weighted PHAT, with a per-bin noise floor.

    X: (C, F, T) complex STFT frames. pair_i, pair_j: (P,) int64 mic indices; the first ``n_off`` pairs are
    distinct mics (i < j), the rest may be auto-spectra (i == j).
    Per bin f and frame t (p = mean_m |X_m|^2):

    * ``power <- power_alpha * power + (1 - power_alpha) * p`` (lightly smoothed power);
    * ``noise <- power`` if ``power < noise`` else ``noise * noise_rise`` (minimum tracking with slow rise);
    * late-reverberation estimate ``rev = rev_gain * power`` as it was ``D`` frames ago (``history (D, F)`` is a
      ring of past smoothed powers, row ``(frame_offset + t) % D`` holding the oldest; ``D = 0`` disables it);
    * direct-sound weight ``w = clip(1 - margin * max(noise, rev) / p, 0, 1)``: bins where the direct sound
      of a source stands above both the noise floor and the reverberant tail of earlier sound;
    * ``raw[k] <- alpha * raw[k] + (1 - alpha) * X_i conj(X_j)`` for all P pairs;
    * ``phat[k] <- alpha * phat[k] + (1 - alpha) * w * X_i conj(X_j) / |X_i conj(X_j)|`` for the n_off pairs;
    * ``weight <- alpha * weight + (1 - alpha) * w``.

    The first ``n_warm`` frames of the stream (``frame_offset + t < n_warm``: those that hold the STFT's zeros
    before the first sample) leave ``power`` and ``noise`` as they are and get ``w = 0``: a floor started from
    them sat 1.5 dB low for seconds, and steady noise gave detections until it had risen.

    State arrays (raw (P, F), phat (n_off, F), weight, noise, power (F,), history (D, F)) are updated in
    place; ``frame_offset`` is the number of frames processed before this call. After each frame t with
    ``emit[t]`` the states are copied to ``out_raw (E, P, F)``, ``out_phat (E, n_off, F)``, ``out_weight``
    and ``out_noise (E, F)``.
    """
    C, F, T = X.shape
    P = pair_i.shape[0]
    D = history.shape[0]
    beta = 1.0 - alpha
    for f in prange(F):
        k = 0
        xr, xi = np.empty(C), np.empty(C)  # the frame's spectra at this bin
        ur, ui = np.empty(C), np.empty(C)  # ... as unit phasors
        for t in range(T):
            pw = 0.0
            for c in range(C):
                v = X[c, f, t]
                a, b = v.real, v.imag
                xr[c], xi[c] = a, b
                a2 = a * a + b * b
                pw += a2
                if a2 > 1e-30:
                    m = np.sqrt(a2)
                    ur[c], ui[c] = a / m, b / m
                else:
                    ur[c], ui[c] = 0.0, 0.0
            pw /= C
            warm = frame_offset + t < n_warm
            if not warm:
                if power[f] <= 0.0:
                    power[f] = pw
                else:
                    power[f] = power_alpha * power[f] + (1.0 - power_alpha) * pw
                if noise[f] <= 0.0 or power[f] < noise[f]:
                    noise[f] = power[f]
                else:
                    noise[f] *= noise_rise
            floor = noise[f]
            if D > 0:
                slot = (frame_offset + t) % D
                rev = rev_gain * history[slot, f]
                history[slot, f] = power[f]
                if rev > floor:
                    floor = rev
            w = 0.0
            if pw > 1e-30 and not warm:
                w = 1.0 - margin * floor / pw
                if w < 0.0:
                    w = 0.0
                elif w > 1.0:
                    w = 1.0
            weight[f] = alpha * weight[f] + beta * w
            bw = beta * w
            # real arithmetic on the parts (half the work of numba's complex products, which multiply by the
            # zero imaginary part of a real factor too)
            for q in range(P):
                i, j = pair_i[q], pair_j[q]
                z = raw[q, f]
                raw[q, f] = complex(alpha * z.real + beta * (xr[i] * xr[j] + xi[i] * xi[j]),
                                    alpha * z.imag + beta * (xi[i] * xr[j] - xr[i] * xi[j]))
            for q in range(n_off):  # w X_i conj(X_j) / |X_i conj(X_j)| from the per-mic unit phasors
                i, j = pair_i[q], pair_j[q]
                pr, pi = bw * ur[i], bw * ui[i]
                z = phat[q, f]
                phat[q, f] = complex(alpha * z.real + (pr * ur[j] + pi * ui[j]),
                                     alpha * z.imag + (pi * ur[j] - pr * ui[j]))
            if emit[t]:
                for q in range(P):
                    out_raw[k, q, f] = raw[q, f]
                for q in range(n_off):
                    out_phat[k, q, f] = phat[q, f]
                out_weight[k, f] = weight[f]
                out_noise[k, f] = noise[f]
                k += 1


@njit(cache=True, inline="always")
def _response_at(cc, idx0, frac, g):  # pragma: no cover - compiled
    """Sum over pairs of the linearly interpolated correlation at grid point g (see srp_lookup)."""
    P, L = cc.shape
    s = 0.0
    for p in range(P):
        i0 = idx0[g, p]
        i1 = i0 + 1
        if i1 == L:
            i1 = 0
        w = frac[g, p]
        s += (1.0 - w) * cc[p, i0] + w * cc[p, i1]
    return s


@njit(cache=True, parallel=True)
def srp_lookup(cc, idx0, frac, out):  # pragma: no cover - compiled
    """Steered response from interpolated cross-correlations.

    cc: (P, L) real correlation of each pair over a window of L lags. idx0: (G, P) int64 index into that
    window of each grid point's TDOA (floor; the index after L - 1 wraps to 0); frac: (G, P) float fractional
    part. out: (G,) real, the sum over pairs of the linearly interpolated correlation.
    """
    for g in prange(idx0.shape[0]):
        out[g] = _response_at(cc, idx0, frac, g)


@njit(cache=True)
def srp_best_point(cc, half_width, c_idx0, c_frac, idx0, frac, member_ptr, member_idx, floor, env,
                   bound):  # pragma: no cover - compiled
    """Exact maximum of the steered response over a fine grid, searched coarse cell by coarse cell.

    cc, idx0, frac: as in :func:`srp_lookup` for the fine grid; c_idx0, c_frac: the same for the coarse grid.
    Coarse cell c holds the fine points ``member_idx[member_ptr[c]:member_ptr[c + 1]]``, all within
    ``half_width`` lag steps (per pair) of the cell's own lags, so the response of the max-filtered correlations
    (:func:`running_max`, into ``env (P, L)``) at the coarse point bounds every fine point of the cell from
    above (``bound (n_cells,)``, filled). Cells are opened by decreasing bound (equal bounds, such as the mirror
    images of a planar array, by cell index) until the next bound cannot beat the best point found (the first
    point found wins a tie) or is under ``floor``. Returns (best point, its response), or ``(-1, largest bound)``
    when no point reaches ``floor`` (without opening any cell when no bound does).
    """
    running_max(cc, half_width, env)
    top = -np.inf
    for c in range(bound.shape[0]):
        bound[c] = _response_at(env, c_idx0, c_frac, c)
        if bound[c] > top:
            top = bound[c]
    if top < floor:
        return -1, top
    order = np.argsort(-bound, kind="mergesort")  # stable: equal bounds (mirror images) by cell index
    best_g = -1
    best_v = -np.inf
    for k in range(order.shape[0]):
        c = order[k]
        if bound[c] <= best_v or bound[c] < floor:  # no point of this cell (or of the rest) can win
            break
        for m in range(member_ptr[c], member_ptr[c + 1]):
            g = member_idx[m]
            s = _response_at(cc, idx0, frac, g)
            if s > best_v:
                best_v = s
                best_g = g
    if best_v < floor:
        return -1, top
    return best_g, best_v


@njit(cache=True)
def lag_correlations(C, cos_half, sin_half, scale, out):  # pragma: no cover - compiled
    """Cross-correlations at lags symmetric about zero from band cross-spectra (an inverse DFT restricted to the
    band and those lags).

    C: (P, F) complex. cos_half, sin_half: (F, H + 1) ``cos`` and ``sin`` of ``omega_f * lag_k`` for the lags
    ``lag_k = k * step``, k = 0..H. out: (P, 2H + 1) real, the lags ``-H..H`` steps:
    ``out[p, H + k] = scale * sum_f Re(C[p, f] exp(1j omega_f lag_k))`` and the same at ``-lag_k``, i.e.
    ``scale * Re(C @ basis)`` with ``basis[f, H + k] = exp(1j omega_f k step)``. Each lag and its mirror share the
    cosine and sine sums (half the work of the full product). Plain loops, not BLAS: a threaded BLAS on such small
    products stalls when the cores are busy (measured 50x slower on 2 busy cores).
    """
    P, F = C.shape
    H = cos_half.shape[1] - 1
    even = np.empty(H + 1)
    odd = np.empty(H + 1)
    for p in range(P):
        for k in range(H + 1):
            even[k] = 0.0
            odd[k] = 0.0
        for f in range(F):
            a = C[p, f].real
            b = C[p, f].imag
            if a == 0.0 and b == 0.0:  # a bin a mask removed: nothing to add
                continue
            for k in range(H + 1):
                even[k] += a * cos_half[f, k]
                odd[k] += b * sin_half[f, k]
        for k in range(H + 1):
            out[p, H + k] = scale * (even[k] - odd[k])
            out[p, H - k] = scale * (even[k] + odd[k])


@njit(cache=True)
def steered_bins(C, tau, omega0, domega, out):  # pragma: no cover - compiled
    """Steered response of each frequency bin towards one direction.

    C: (P, F) complex cross-spectra. tau: (P,) TDOA of each pair for the direction, seconds. Bin f has angular
    frequency ``omega0 + f * domega`` rad/s (a uniform band, as the rfft gives). out: (F,) real,
    ``out[f] = sum_p Re(C[p, f] exp(1j (omega0 + f domega) tau[p]))``. The phasors are advanced by one complex
    multiplication per bin (two sin/cos per pair in all).
    """
    P, F = C.shape
    zr, zi = np.empty(P), np.empty(P)  # each pair's phasor at the current bin
    sr, si = np.empty(P), np.empty(P)  # ... and its step from one bin to the next
    for p in range(P):
        ph = omega0 * tau[p]
        zr[p], zi[p] = np.cos(ph), np.sin(ph)
        sr[p], si[p] = np.cos(domega * tau[p]), np.sin(domega * tau[p])
    for f in range(F):  # bins outer, pairs inner: the pairs' phasor recurrences run side by side
        acc = 0.0
        for p in range(P):
            c = C[p, f]
            a, b = zr[p], zi[p]
            acc += c.real * a - c.imag * b
            zr[p], zi[p] = a * sr[p] - b * si[p], a * si[p] + b * sr[p]
        out[f] = acc


@njit(cache=True)
def coherence_fit(C, diag, pair_i, pair_j, tau, omega0, domega, gamma, out):  # pragma: no cover - compiled
    """Sums of the least-squares fit of each pair's coherence to a direct wave plus a diffuse field.

    Model: the coherence ``G_x = C[p, f] / sqrt(diag[i, f] diag[j, f])`` of pair ``p = (i, j)`` is
    ``D G_s + (1 - D) G_n``, with ``G_s = exp(-1j w tau[p])`` (a plane wave from the direction), ``G_n =
    gamma[p, f]`` (the diffuse field's real coherence) and ``D`` the direct share of the power. Then ``G_x - G_n
    = D (G_s - G_n)``, and the least-squares ``D`` over all pairs and bins is ``out[0] / out[1]`` with
    ``out[0] = sum Re(conj(G_s - G_n) (G_x - G_n))``, ``out[1] = sum |G_s - G_n|^2`` (pair-bins where the two
    models look alike, small spacings at low frequencies, weigh little). C: (P, F) complex cross-spectra; diag:
    (M, F) auto-spectra (real parts used); pair_i, pair_j: (P,) mic indices; tau: (P,) seconds; bin f at
    ``omega0 + f * domega`` rad/s; gamma: (P, F); out: (2,). Bins where a mic has no power are skipped.
    """
    P, F = C.shape
    zr, zi = np.empty(P), np.empty(P)  # exp(1j w tau) at the current bin (G_s is its conjugate)
    sr, si = np.empty(P), np.empty(P)
    for p in range(P):
        ph = omega0 * tau[p]
        zr[p], zi[p] = np.cos(ph), np.sin(ph)
        sr[p], si[p] = np.cos(domega * tau[p]), np.sin(domega * tau[p])
    num, den = 0.0, 0.0
    for f in range(F):
        for p in range(P):
            a, b = zr[p], zi[p]
            pw = diag[pair_i[p], f].real * diag[pair_j[p], f].real
            if pw > 1e-300:
                g = gamma[p, f]
                norm = 1.0 / np.sqrt(pw)
                xr, xi = C[p, f].real * norm, C[p, f].imag * norm
                # conj(G_s - G_n) = (a - g) + 1j b; G_x - G_n = (xr - g) + 1j xi
                num += (a - g) * (xr - g) - b * xi
                den += (a - g) * (a - g) + b * b
            zr[p], zi[p] = a * sr[p] - b * si[p], a * si[p] + b * sr[p]
    out[0] = num
    out[1] = den


@njit(cache=True, parallel=True)
def best_far_fit(dtau, omega, out):  # pragma: no cover - compiled
    """The best fit to one direction that a plane wave from any of ``H`` other directions could give each bin.

    dtau: (H, P) each other direction's TDOAs minus the direction's own, seconds. omega: (F,) rad/s.
    out: (F,) ``max_h mean_p cos(omega[f] * dtau[h, p])`` (the fit of :meth:`SteeredResponse.bin_fit` of a
    clean bin from direction h).
    """
    H, P = dtau.shape
    for f in prange(omega.shape[0]):
        best = -1.0
        for h in range(H):
            acc = 0.0
            for p in range(P):
                acc += np.cos(omega[f] * dtau[h, p])
            if acc / P > best:
                best = acc / P
        out[f] = best


@njit(cache=True)
def running_max(cc, half_width, out):  # pragma: no cover - compiled
    """Maximum of each row of ``cc (P, L)`` over the window ``l - half_width .. l + half_width``, clipped to
    the row (scipy's ``maximum_filter1d(cc, 2 * half_width + 1, axis=1, mode="nearest")``): ``out (P, L)``."""
    P, L = cc.shape
    for p in range(P):
        for k in range(L):
            lo = max(k - half_width, 0)
            hi = min(k + half_width, L - 1)
            m = cc[p, lo]
            for j in range(lo + 1, hi + 1):
                if cc[p, j] > m:
                    m = cc[p, j]
            out[p, k] = m


@njit(cache=True)
def zero_around_lags(cc, centre, half_width):  # pragma: no cover - compiled
    """Set ``cc[p, centre[p] - half_width : centre[p] + half_width + 1]`` (circularly) to zero, in place."""
    P, L = cc.shape
    for p in range(P):
        for d in range(-half_width, half_width + 1):
            k = (centre[p] + d) % L
            cc[p, k] = 0.0


@njit(cache=True, parallel=True)
def music_pseudospectrum(En, delays, omega, out):  # pragma: no cover - compiled
    """MUSIC pseudo-spectrum per grid point and frequency.

    En: (F, M, K) complex noise-subspace basis per frequency. delays: (G, M) arrival time of each mic per grid
    point, seconds. omega: (F,) rad/s. out: (G, F) real, ``M / ||En^H a||^2`` with
    ``a_m = exp(-1j omega delays[g, m])`` (so a pure steering vector in the signal subspace gives a peak).
    """
    G, M = delays.shape
    F = omega.shape[0]
    K = En.shape[2]
    for g in prange(G):
        a = np.empty(M, dtype=np.complex128)
        for f in range(F):
            for m in range(M):
                ph = -omega[f] * delays[g, m]
                a[m] = np.cos(ph) + 1j * np.sin(ph)
            proj = 0.0
            for k in range(K):
                acc = 0.0 + 0.0j
                for m in range(M):
                    acc += np.conj(En[f, m, k]) * a[m]
                proj += acc.real * acc.real + acc.imag * acc.imag
            out[g, f] = M / max(proj, 1e-12)


@njit(cache=True, parallel=True)
def update_masked_covariances(X, post, alpha, phi_s, phi_n, mass):  # pragma: no cover - compiled
    """One STFT frame's update of a masked target and noise covariance.

    X: (M, F) complex frame; post: (F,) mask in [0, 1]; phi_s, phi_n: (F, M, M) complex; mass: (F,).
    ``phi_s <- alpha * phi_s + (1 - alpha) * post * X X^H``, ``phi_n`` the same with ``1 - post``,
    ``mass <- alpha * mass + post`` (Hermitian, computed on one triangle).
    """
    M, F = X.shape
    for f in prange(F):
        gs = (1.0 - alpha) * post[f]
        gn = (1.0 - alpha) * (1.0 - post[f])
        mass[f] = alpha * mass[f] + post[f]
        for i in range(M):
            for j in range(i, M):
                xx = X[i, f] * np.conj(X[j, f])
                vs = alpha * phi_s[f, i, j] + gs * xx
                vn = alpha * phi_n[f, i, j] + gn * xx
                phi_s[f, i, j] = vs
                phi_s[f, j, i] = np.conj(vs)
                phi_n[f, i, j] = vn
                phi_n[f, j, i] = np.conj(vn)


@njit(cache=True, parallel=True)
def update_noise_covariance(X, phi, noise, power, alpha, power_alpha, noise_rise, margin):  # pragma: no cover
    """One STFT frame's update of a speech-gated recursive noise covariance.

    X: (M, F) complex frame; phi: (F, M, M) complex noise covariance; noise, power: (F,) state.
    Per bin: ``p = mean_m |X_m|^2``; ``power <- power_alpha * power + (1 - power_alpha) * p``; ``noise``
    tracks the minimum of ``power`` with slow rise ``noise_rise``; the noise-only weight
    ``v = 1 - clip(1 - margin * noise / power, 0, 1)`` (1 when the bin is at its noise floor, 0 when it stands
    ``margin`` above it); ``phi <- phi + (1 - alpha) * v * (X X^H - phi)`` (Hermitian, computed on one triangle).
    """
    M, F = X.shape
    for f in prange(F):
        p = 0.0
        for m in range(M):
            p += X[m, f].real ** 2 + X[m, f].imag ** 2
        p /= M
        power[f] = power_alpha * power[f] + (1.0 - power_alpha) * p
        if power[f] < noise[f] or noise[f] == 0.0:
            noise[f] = power[f]
        else:
            noise[f] *= noise_rise
        w = 1.0 - margin * noise[f] / max(power[f], 1e-30)
        w = min(max(w, 0.0), 1.0)
        a = (1.0 - alpha) * (1.0 - w)
        if a == 0.0:
            continue
        for i in range(M):
            for j in range(i, M):
                v = phi[f, i, j] + a * (X[i, f] * np.conj(X[j, f]) - phi[f, i, j])
                phi[f, i, j] = v
                phi[f, j, i] = np.conj(v)


@njit(cache=True, parallel=True)
def hermitian_solve(A, B, out):  # pragma: no cover
    """Solve ``A[f] X[f] = B[f]`` for Hermitian positive-definite ``A (F, M, M)`` by Cholesky, one frequency per
    thread; ``B (F, M, K)`` complex, result in ``out (F, M, K)``. (Small batched solves without BLAS, whose
    spinning threads would fight numba's for the cores.) A non-positive pivot is clamped to 1e-30."""
    F, M, _ = A.shape
    K = B.shape[2]
    for f in prange(F):
        L = np.zeros((M, M), dtype=np.complex128)
        for j in range(M):
            s = A[f, j, j].real
            for k in range(j):
                s -= L[j, k].real ** 2 + L[j, k].imag ** 2
            d = np.sqrt(max(s, 1e-30))
            L[j, j] = d
            for i in range(j + 1, M):
                v = A[f, i, j]
                for k in range(j):
                    v -= L[i, k] * np.conj(L[j, k])
                L[i, j] = v / d
        y = np.zeros(M, dtype=np.complex128)
        for c in range(K):
            for i in range(M):
                v = B[f, i, c]
                for k in range(i):
                    v -= L[i, k] * y[k]
                y[i] = v / L[i, i].real
            for i in range(M - 1, -1, -1):
                v = y[i]
                for k in range(i + 1, M):
                    v -= np.conj(L[k, i]) * out[f, k, c]
                out[f, i, c] = v / L[i, i].real


@njit(cache=True, parallel=True)
def online_wpe_step(X, history, P, G, power, out, alpha, taps, delay, frame_index):  # pragma: no cover
    """One frame of recursive-least-squares online WPE dereverberation (Caroselli et al. 2017, as in nara_wpe's
    ``OnlineWPE``), one frequency per thread.

    X: (M, F) complex frame. history: (F, taps + delay, M) ring of past frames, slot ``frame_index % (taps+delay)``
    holding the oldest; P: (F, M*taps, M*taps) inverse correlation; G: (F, M*taps, M) prediction filter;
    power: (F,) running mean power of the input (``0.95 * power + 0.05 * mean |X|^2``); out: (M, F)
    dereverberated frame. The prediction uses frames ``t-delay-taps+1 .. t-delay``; the weighting power is the
    mean power of the prediction error, floored at ``1e-3 * power`` so that silent frames cannot blow the gain
    up.
    """
    M, F = X.shape
    L = taps + delay
    K = M * taps
    for f in prange(F):
        # stacked delayed frames, newest first: lag delay, delay+1, ... delay+taps-1
        xt = np.zeros(K, dtype=np.complex128)
        for j in range(taps):
            slot = (frame_index - delay - j) % L
            for m in range(M):
                xt[j * M + m] = history[f, slot, m]
        y = np.zeros(M, dtype=np.complex128)
        lam = 0.0
        for m in range(M):
            v = X[m, f]
            for k in range(K):
                v -= np.conj(G[f, k, m]) * xt[k]
            y[m] = v
            lam += v.real ** 2 + v.imag ** 2
        px = 0.0
        for m in range(M):
            px += X[m, f].real ** 2 + X[m, f].imag ** 2
        power[f] = 0.95 * power[f] + 0.05 * px / M
        lam = max(lam / M, 1e-3 * power[f], 1e-10)
        Px = np.zeros(K, dtype=np.complex128)
        for i in range(K):
            s = 0j
            for k in range(K):
                s += P[f, i, k] * xt[k]
            Px[i] = s
        den = alpha * lam
        for k in range(K):
            den += (np.conj(xt[k]) * Px[k]).real
        for i in range(K):
            Px[i] /= den  # gain vector k
        # P <- (P - k x^H P) / alpha ; x^H P = (P x)^H for Hermitian P
        xP = np.zeros(K, dtype=np.complex128)
        for k in range(K):
            s = 0j
            for i in range(K):
                s += np.conj(xt[i]) * P[f, i, k]
            xP[k] = s
        for i in range(K):
            for k in range(K):
                P[f, i, k] = (P[f, i, k] - Px[i] * xP[k]) / alpha
        for k in range(K):
            for m in range(M):
                G[f, k, m] += Px[k] * np.conj(y[m])
        for m in range(M):
            out[m, f] = y[m]
            history[f, frame_index % L, m] = X[m, f]
