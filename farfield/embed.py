"""Speaker embeddings with Resemblyzer's GE2E voice encoder (its weights ship inside the pip package).

:class:`SpeakerEncoder` ``.embed(audio (samples,), sample_rate) -> (256,)`` unit vector; cosine similarity
between two embeddings is their dot product. The mel front end is computed here with numpy (identical to the
librosa call Resemblyzer makes, checked in the tests) so that librosa is never imported on the hot path.
Needs the ``neural`` extra (torch) and ``resemblyzer``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import get_window, resample_poly

EMBED_RATE = 16000
_N_FFT, _HOP, _N_MELS = 400, 160, 40


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, float)
    mel = f / (200.0 / 3)
    log = f >= 1000.0
    return np.where(log, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, float)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(sample_rate: int = EMBED_RATE, n_fft: int = _N_FFT, n_mels: int = _N_MELS) -> np.ndarray:
    """Slaney-style mel filterbank ``(n_mels, n_fft // 2 + 1)`` (librosa's default ``filters.mel``)."""
    fft_f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0.0, np.minimum(lower, upper))
    return w * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


def mel_spectrogram(audio: np.ndarray) -> np.ndarray:
    """Power mel spectrogram ``(frames, 40)`` of 16 kHz audio as Resemblyzer computes it (25 ms / 10 ms)."""
    y = np.pad(np.asarray(audio, np.float64), (_N_FFT // 2, _N_FFT // 2))
    n = 1 + (y.size - _N_FFT) // _HOP
    idx = np.arange(_N_FFT)[None, :] + _HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(y[idx] * get_window("hann", _N_FFT, fftbins=True), axis=1)) ** 2
    return (spec @ _FB.T).astype(np.float32)


_FB = mel_filterbank()


class SpeakerEncoder:
    """GE2E speaker embeddings (Resemblyzer). ``embed(audio, sample_rate)`` -> ``(256,)`` float32 unit vector."""

    def __init__(self, device: str = "cpu") -> None:
        try:
            import importlib

            importlib.import_module("torch")
            from resemblyzer import VoiceEncoder
        except ImportError as e:
            raise ImportError("speaker embeddings need torch and resemblyzer: pip install 'farfield[neural]' "
                              "resemblyzer webrtcvad-wheels") from e
        self.model = VoiceEncoder(device, verbose=False)
        self.device = device

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        x = np.asarray(audio, np.float64).reshape(-1)
        if x.size == 0 or not np.any(x):
            raise ValueError("cannot embed empty or silent audio")
        if not np.all(np.isfinite(x)):
            raise ValueError("audio to embed contains NaN or inf")
        if sample_rate != EMBED_RATE:
            fr = Fraction(EMBED_RATE, int(sample_rate))
            x = resample_poly(x, fr.numerator, fr.denominator)
        x = x * (10 ** (-30 / 20) / max(np.sqrt(np.mean(x**2)), 1e-9))  # Resemblyzer normalises to -30 dBFS
        wav_slices, mel_slices = self.model.compute_partial_slices(x.size, 1.3, 0.75)
        if wav_slices[-1].stop >= x.size:
            x = np.pad(x, (0, wav_slices[-1].stop - x.size))
        mel = mel_spectrogram(x)
        mels = np.array([mel[s] for s in mel_slices])
        with torch.no_grad():
            partial = self.model(torch.from_numpy(mels).to(self.device)).cpu().numpy()
        e = partial.mean(axis=0)
        return (e / np.linalg.norm(e)).astype(np.float32)
