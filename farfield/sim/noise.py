"""Noise models for simulation.

``diffuse_noise`` makes multichannel noise whose inter-microphone coherence follows the spherically
isotropic model ``sinc(2 pi f d / c)`` (Habets & Gannot, "Generating sensor signals in isotropic noise
fields", JASA 2007): independent noise per channel is mixed per frequency by a factor of the target
coherence matrix.
"""

from __future__ import annotations

import numpy as np

from ..geometry import SPEED_OF_SOUND, spherical_coherence
from ..stft import istft, stft


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


# --- point-source noise signals: mono ``(samples,)`` float64, unit RMS, deterministic given ``rng`` ---------------

def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x**2)) + 1e-20)


def coloured_noise(n_samples: int, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) Gaussian noise, unit RMS."""
    slopes = {"white": 0.0, "pink": 0.5, "brown": 1.0}
    if colour not in slopes:
        raise ValueError(f"unknown noise colour '{colour}'; expected one of {sorted(slopes)}")
    spec = np.fft.rfft(rng.standard_normal(n_samples))
    f = np.arange(spec.size, dtype=float)
    f[0] = 1.0
    return _unit_rms(np.fft.irfft(spec / f ** slopes[colour], n_samples))


def _jittered_phase(n_samples: int, sample_rate: int, f0_hz: float, jitter: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Phase (cycles) of a tone whose frequency wanders slowly by about ``jitter`` (relative)."""
    steps = max(2, int(n_samples / sample_rate * 4) + 2)
    wander = np.interp(np.arange(n_samples), np.linspace(0, n_samples, steps), rng.standard_normal(steps))
    return np.cumsum(f0_hz * (1.0 + jitter * wander) / sample_rate) + rng.random()


def mains_hum(n_samples: int, sample_rate: int, rng: np.random.Generator, *, mains_hz: float = 50.0,
              n_harmonics: int = 12, jitter: float = 0.002, buzz: float = 0.2) -> np.ndarray:
    """Machine hum: mains frequency and harmonics (odd ones stronger, as in transformer/motor hum) with slight
    frequency jitter, plus a little broadband buzz."""
    phase = _jittered_phase(n_samples, sample_rate, mains_hz, jitter, rng)
    out = np.zeros(n_samples)
    for k in range(1, n_harmonics + 1):
        if k * mains_hz >= sample_rate / 2:
            break
        amp = (1.0 if k % 2 else 0.4) / k**0.8 * rng.uniform(0.5, 1.0)
        out += amp * np.sin(2 * np.pi * (k * phase + rng.random()))
    return _unit_rms(_unit_rms(out) + buzz * coloured_noise(n_samples, rng, "pink"))


def rotating_machine(n_samples: int, sample_rate: int, rng: np.random.Generator, *, rpm: float = 1500.0,
                     blades: int = 6, broadband: float = 0.6) -> np.ndarray:
    """Fan / pump / turbine: blade-pass tone (rpm/60 x blades) and its harmonics, shaft-rate modulation and
    broadband pink noise."""
    shaft = rpm / 60.0
    phase = _jittered_phase(n_samples, sample_rate, shaft, 0.003, rng)
    tones = sum(np.sin(2 * np.pi * (h * blades * phase + rng.random())) / h for h in range(1, 6)
                if h * blades * shaft < sample_rate / 2)
    tones = _unit_rms(tones + 0.3 * np.sin(2 * np.pi * phase))
    bb = coloured_noise(n_samples, rng, "pink") * (1.0 + 0.3 * np.sin(2 * np.pi * phase))
    return _unit_rms(tones + broadband * _unit_rms(bb))


def _resonant_impact(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length) / sample_rate
    modes = sum(rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(400, 5000) * t + rng.random() * 6.28)
                * np.exp(-t / rng.uniform(0.01, 0.08)) for _ in range(5))
    click = rng.standard_normal(length) * np.exp(-t / 0.002)
    return modes + click


def impulsive(n_samples: int, sample_rate: int, rng: np.random.Generator, *, rate_hz: float = 2.0,
              periodic: bool = False) -> np.ndarray:
    """Hammering / riveting: decaying metallic impacts, Poisson (or periodic with 5% jitter) at ``rate_hz``."""
    out = np.zeros(n_samples)
    length = int(0.3 * sample_rate)
    t = rng.uniform(0, 1.0 / rate_hz)
    while t < n_samples / sample_rate:
        i = int(t * sample_rate)
        hit = _resonant_impact(length, sample_rate, rng) * rng.uniform(0.5, 1.0)
        m = min(length, n_samples - i)
        out[i:i + m] += hit[:m]
        t += (1.0 / rate_hz) * (1 + 0.05 * rng.standard_normal()) if periodic else rng.exponential(1.0 / rate_hz)
    return _unit_rms(out) if np.any(out) else out


def pneumatic(n_samples: int, sample_rate: int, rng: np.random.Generator, *, rate_hz: float = 0.3) -> np.ndarray:
    """Compressed-air bursts: high-passed hiss of 0.2-1.5 s with fast attack and slower release, Poisson timing."""
    hiss = np.diff(coloured_noise(n_samples + 1, rng, "white"))
    env = np.zeros(n_samples)
    t = rng.exponential(1.0 / rate_hz)
    while t < n_samples / sample_rate:
        i, dur = int(t * sample_rate), rng.uniform(0.2, 1.5)
        m = int(dur * sample_rate)
        tt = np.arange(m) / sample_rate
        e = np.minimum(1.0, tt / 0.01) * np.exp(-np.maximum(0.0, tt - 0.7 * dur) / 0.05)
        k = min(m, n_samples - i)
        env[i:i + k] = np.maximum(env[i:i + k], e[:k] * rng.uniform(0.5, 1.0))
        t += dur + rng.exponential(1.0 / rate_hz)
    out = hiss * env
    return _unit_rms(out) if np.any(out) else out


def conveyor(n_samples: int, sample_rate: int, rng: np.random.Generator, *, roller_hz: float = 8.0) -> np.ndarray:
    """Conveyor belt: low rumble plus roller rattles at ``roller_hz`` (jittered) and a motor tone."""
    rumble = coloured_noise(n_samples, rng, "brown")
    clicks = impulsive(n_samples, sample_rate, rng, rate_hz=roller_hz, periodic=True)
    motor = np.sin(2 * np.pi * _jittered_phase(n_samples, sample_rate, rng.uniform(80, 200), 0.003, rng))
    return _unit_rms(rumble + 0.5 * clicks + 0.3 * motor)


def robot_self_noise(n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The robot's own fan and servo noise: pink broadband, a fan blade tone and intermittent motor whine."""
    fan = rotating_machine(n_samples, sample_rate, rng, rpm=rng.uniform(1800, 4000), blades=7, broadband=1.0)
    whine_f = rng.uniform(800, 3000)
    whine = np.sin(2 * np.pi * _jittered_phase(n_samples, sample_rate, whine_f, 0.02, rng))
    gate = np.interp(np.arange(n_samples), np.linspace(0, n_samples, 12), rng.random(12) > 0.5)
    return _unit_rms(fan + 0.3 * whine * gate)


POINT_NOISES = {
    "machine_hum": mains_hum,
    "rotating_machine": rotating_machine,
    "impulsive": impulsive,
    "pneumatic": pneumatic,
    "conveyor": conveyor,
    "robot_self_noise": robot_self_noise,
}
"""Generators of point-source noise signals, by recipe ``type``."""
