"""Plain-numpy reference implementations of every kernel in farfield.kernels (slow, obviously correct)."""

import numpy as np


def smooth_cross_spectra_ref(X, pair_i, pair_j, n_off, alpha, power_alpha, noise_rise, margin, rev_gain,
                             raw, phat, weight, noise, power, history, frame_offset, n_warm, emit):
    C, F, T = X.shape
    outs = ([], [], [], [])
    for t in range(T):
        pw = np.mean(np.abs(X[:, :, t]) ** 2, axis=0)
        warm = frame_offset + t < n_warm
        if not warm:
            power[:] = np.where(power <= 0, pw, power_alpha * power + (1 - power_alpha) * pw)
            noise[:] = np.where((noise <= 0) | (power < noise), power, noise * noise_rise)
        floor = noise.copy()
        if history.shape[0]:
            slot = (frame_offset + t) % history.shape[0]
            floor = np.maximum(floor, rev_gain * history[slot])
            history[slot] = power
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where((pw > 1e-30) & (not warm), np.clip(1 - margin * floor / pw, 0, 1), 0.0)
        weight[:] = alpha * weight + (1 - alpha) * w
        cs = X[pair_i, :, t] * np.conj(X[pair_j, :, t])
        raw[:] = alpha * raw + (1 - alpha) * cs
        a = np.abs(X[:, :, t])
        u = np.where(a**2 > 1e-30, X[:, :, t] / np.maximum(a, 1e-300), 0)
        unit = u[pair_i[:n_off]] * np.conj(u[pair_j[:n_off]])
        phat[:] = alpha * phat + (1 - alpha) * w * unit
        if emit[t]:
            for o, v in zip(outs, (raw, phat, weight, noise)):
                o.append(v.copy())
    return tuple(np.array(o) for o in outs)


def srp_lookup_ref(cc, idx0, frac):
    L = cc.shape[1]
    p = np.arange(cc.shape[0])[None, :]
    return np.sum((1 - frac) * cc[p, idx0] + frac * cc[p, (idx0 + 1) % L], axis=1)


def lag_correlations_ref(C, basis, scale):
    return scale * (C @ basis).real


def steered_bins_ref(C, tau, omega):
    return np.real(np.sum(C * np.exp(1j * omega[None, :] * tau[:, None]), axis=0))


def coherence_fit_ref(C, diag, pair_i, pair_j, tau, omega, gamma):
    pw = diag[pair_i].real * diag[pair_j].real
    ok = pw > 1e-300
    gx = np.where(ok, C / np.sqrt(np.where(ok, pw, 1.0)), 0)
    gs = np.exp(-1j * omega[None, :] * tau[:, None])
    a = gs - gamma
    return np.array([np.sum(np.real(np.conj(a) * (gx - gamma))[ok]), np.sum((np.abs(a) ** 2)[ok])])


def best_far_fit_ref(dtau, omega):
    return np.cos(omega[None, None, :] * dtau[:, :, None]).mean(axis=1).max(axis=0)


def zero_around_lags_ref(cc, centre, half_width):
    out = cc.copy()
    L = cc.shape[1]
    for p in range(cc.shape[0]):
        out[p, (centre[p] + np.arange(-half_width, half_width + 1)) % L] = 0
    return out


def running_max_ref(cc, half_width):
    L = cc.shape[1]
    return np.stack([cc[:, max(k - half_width, 0): k + half_width + 1].max(axis=1) for k in range(L)], axis=1)


def music_pseudospectrum_ref(En, delays, omega):
    A = np.exp(-1j * omega[None, :, None] * delays[:, None, :])  # (G, F, M)
    proj = np.einsum("fmk,gfm->gfk", np.conj(En), A)
    return delays.shape[1] / np.maximum(np.sum(np.abs(proj) ** 2, axis=2), 1e-12)


def update_noise_covariance_ref(X, phi, noise, power, alpha, power_alpha, noise_rise, margin):
    p = np.mean(np.abs(X) ** 2, axis=0)
    power[:] = power_alpha * power + (1 - power_alpha) * p
    noise[:] = np.where((power < noise) | (noise == 0), power, noise * noise_rise)
    w = np.clip(1 - margin * noise / np.maximum(power, 1e-30), 0, 1)
    a = (1 - alpha) * (1 - w)
    phi += a[:, None, None] * (np.einsum("mf,nf->fmn", X, X.conj()) - phi)


def update_masked_covariances_ref(X, post, alpha, phi_s, phi_n, mass):
    xx = np.einsum("mf,nf->fmn", X, X.conj())
    g = post[:, None, None]
    return (alpha * phi_s + (1 - alpha) * g * xx, alpha * phi_n + (1 - alpha) * (1 - g) * xx,
            alpha * mass + post)


def online_wpe_ref(frames, taps, delay, alpha):
    """Frame-by-frame RLS WPE on (M, F, T) frames, written with plain numpy linear algebra."""
    M, F, T = frames.shape
    K = M * taps
    out = np.zeros_like(frames)
    for f in range(F):
        P = np.eye(K, dtype=complex) * 1e4
        G = np.zeros((K, M), dtype=complex)
        power = 0.0
        for t in range(T):
            xt = np.concatenate([frames[:, f, t - delay - j] if t - delay - j >= 0 else np.zeros(M, complex)
                                 for j in range(taps)])
            y = frames[:, f, t] - G.conj().T @ xt
            power = 0.95 * power + 0.05 * np.mean(np.abs(frames[:, f, t]) ** 2)
            lam = max(np.mean(np.abs(y) ** 2), 1e-3 * power, 1e-10)
            k = P @ xt / (alpha * lam + np.real(xt.conj() @ P @ xt))
            P = (P - np.outer(k, xt.conj() @ P)) / alpha
            G = G + np.outer(k, y.conj())
            out[:, f, t] = y
    return out



def kalman_predict_ref(x, P, dt, q):
    """Predict step of the 6-state constant-velocity Kalman filter with full matrices: ``x (6,)`` = position then
    velocity, ``P (6, 6)``; white acceleration of intensity ``q``."""
    I3 = np.eye(3)
    F = np.block([[I3, dt * I3], [np.zeros((3, 3)), I3]])
    Q = np.block([[q * dt**3 / 3 * I3, q * dt**2 / 2 * I3], [q * dt**2 / 2 * I3, q * dt * I3]])
    return F @ x, F @ P @ F.T + Q


def kalman_correct_ref(x, P, z, r):
    """Correct step with a measured position ``z (3,)`` of noise variance ``r`` per axis."""
    I3 = np.eye(3)
    H = np.hstack([I3, np.zeros((3, 3))])
    S = H @ P @ H.T + r * I3
    K = P @ H.T @ np.linalg.inv(S)
    return x + K @ (z - H @ x), (np.eye(6) - K @ H) @ P


def gated_assignment_ref(units, states, sigmas, Z, gate, birth_gate, revive_gate, gate_growth, n_strong=None,
                         weak_gate=np.pi):
    """The tracker's data association with plain loops: the Hungarian method (scipy) on angular distance between
    track directions ``units (N, 3)`` and detections ``Z (D, 3)``, each track gated by its state (``tentative``:
    ``birth_gate``; ``active`` / ``dormant``: ``gate`` / ``revive_gate`` plus ``min(2 sigma, gate_growth)``),
    dormant tracks 5 degrees and tentative ones 2 degrees dearer. Detections from ``n_strong`` on are weak: only
    active tracks within ``weak_gate`` (radians) may take them, 1 degree dearer. Returns the assigned
    ``(track, detection)`` pairs."""
    from scipy.optimize import linear_sum_assignment

    big = 1e6
    cost = np.full((len(units), len(Z)), big)
    for i, (u, state, sigma) in enumerate(zip(units, states, sigmas)):
        g = birth_gate if state == "tentative" else (revive_gate if state == "dormant" else gate) + min(
            2 * sigma, gate_growth)
        for j, z in enumerate(Z):
            a = np.arccos(np.clip(np.dot(u, z), -1.0, 1.0))
            weak = n_strong is not None and j >= n_strong
            if a <= g and (not weak or (state == "active" and a <= weak_gate)):
                cost[i, j] = a + {"tentative": np.radians(2.0), "dormant": np.radians(5.0)}.get(state, 0.0)
                cost[i, j] += np.radians(1.0) if weak else 0.0
    r, c = linear_sum_assignment(cost)
    return sorted((int(i), int(j)) for i, j in zip(r, c) if cost[i, j] < big)
