"""Noise models for simulation.

``diffuse_noise`` makes multichannel noise whose inter-microphone coherence follows the spherically
isotropic model ``sinc(2 pi f d / c)`` (Habets & Gannot, "Generating sensor signals in isotropic noise
fields", JASA 2007): independent noise per channel is mixed per frequency by a factor of the target
coherence matrix.
"""

from __future__ import annotations

import numpy as np

from ..geometry import SPEED_OF_SOUND
from ..stft import istft, stft


def spherical_coherence(positions: np.ndarray, freqs_hz: np.ndarray, speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
    """Coherence matrices ``(freq, n_mics, n_mics)`` of a spherically isotropic field."""
    pos = np.asarray(positions, dtype=np.float64)
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    return np.sinc(2.0 * np.asarray(freqs_hz)[:, None, None] * d[None] / speed_of_sound)


def diffuse_noise(positions: np.ndarray, n_samples: int, sample_rate: int, *, source: np.ndarray | None = None,
                  rng: np.random.Generator | None = None, frame_size: int = 1024,
                  speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
    """Spherically diffuse noise at the mics ``(n_mics, n_samples)`` with unit mean power per channel.

    Args:
        positions: mic positions ``(n_mics, 3)`` metres.
        n_samples: length in samples.
        sample_rate: Hz.
        source: optional ``(n_mics, >= n_samples)`` independent noise signals to shape (e.g. babble taken
            from different offsets of a recording); white Gaussian noise by default.
        rng: random generator (for reproducibility).
    """
    pos = np.asarray(positions, dtype=np.float64)
    M = pos.shape[0]
    rng = rng or np.random.default_rng()
    if source is None:
        base = rng.standard_normal((M, n_samples))
    else:
        base = np.asarray(source, dtype=np.float64)[:, :n_samples]
        if base.shape != (M, n_samples):
            raise ValueError(f"source must have shape ({M}, >= {n_samples}), got {np.shape(source)}")
        base = base / (np.std(base, axis=1, keepdims=True) + 1e-12)
    hop = frame_size // 2
    N = stft(base, frame_size, hop)  # (M, F, T)
    freqs = np.fft.rfftfreq(frame_size, 1.0 / sample_rate)
    G = spherical_coherence(pos, freqs, speed_of_sound)
    w, V = np.linalg.eigh(G)  # G = V diag(w) V^T
    C = V * np.sqrt(np.clip(w, 0.0, None))[:, None, :]  # (F, M, M): G = C C^T
    X = np.einsum("fmk,kft->mft", C, N)
    out = istft(X, hop, n_samples)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)
