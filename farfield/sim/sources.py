"""Built-in source signals that need no download."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

# Formant centre frequencies (Hz) of a few vowels (adult averages), used to colour the glottal source.
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410),
           (440, 1020, 2240), (660, 1720, 2410))


def _resonator(freq_hz: float, bandwidth_hz: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.exp(-np.pi * bandwidth_hz / sample_rate)
    theta = 2 * np.pi * freq_hz / sample_rate
    return np.array([1.0 - r]), np.array([1.0, -2 * r * np.cos(theta), r * r])


def synthetic_speech(duration_s: float, sample_rate: int, *, f0_hz: float = 120.0,
                     rng: np.random.Generator | None = None, syllable_rate_hz: float = 4.0,
                     pause_prob: float = 0.15) -> np.ndarray:
    """Speech-like test signal ``(samples,)``: a jittered glottal pulse train through vowel formants, with
    fricative noise bursts, syllabic amplitude modulation and short pauses; peak-normalised to 0.5.

    It has the spectral slope, harmonic structure and on/off pattern of speech (what localization and
    VAD react to), not words. For real voices use recordings or the simulator's espeak-ng voices.
    """
    rng = rng or np.random.default_rng()
    n = int(duration_s * sample_rate)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        syl = int(sample_rate * rng.uniform(0.6, 1.4) / syllable_rate_hz)
        seg_end = min(n, pos + syl)
        m = seg_end - pos
        if rng.random() < pause_prob:
            pos = seg_end
            continue
        t = np.arange(m) / sample_rate
        f0 = f0_hz * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6.28)))
        f0 *= 1 + 0.01 * rng.standard_normal(m)
        phase = np.cumsum(f0 / sample_rate)
        pulses = np.diff(np.floor(phase), prepend=0.0)
        src = lfilter([1.0], [1.0, -0.95], pulses)  # glottal spectral tilt
        # mixed excitation: breath noise, pitch-synchronously modulated, fills the spectrum between harmonics
        breath = rng.standard_normal(m) * (0.5 + 0.5 * np.cos(2 * np.pi * phase)) * 0.35 * np.std(src)
        src = src + breath
        if rng.random() < 0.3:  # fricative
            seg = lfilter(*_resonator(rng.uniform(3500, 6000), 1500, sample_rate), rng.standard_normal(m)) * 0.3
        else:
            seg = np.zeros(m)
            for k, (f, bw) in enumerate(zip(_VOWELS[rng.integers(len(_VOWELS))], (80, 100, 150))):
                seg += lfilter(*_resonator(f * rng.uniform(0.9, 1.1), bw, sample_rate), src) / (k + 1)
        env = np.sin(np.pi * np.arange(m) / m) ** 0.7
        out[pos:seg_end] = seg * env
        pos = seg_end
    peak = np.max(np.abs(out))
    return out * (0.5 / peak) if peak > 0 else out
