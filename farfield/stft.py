"""Streaming short-time Fourier transform with perfect reconstruction.

Shapes: waveforms ``(channels, samples)``; spectra ``(channels, freq, frames)`` with
``freq = frame_size // 2 + 1``.

Frame ``t`` covers input samples ``[(t + 1) * hop - frame_size, (t + 1) * hop)`` (the stream starts with
``frame_size - hop`` zeros of history), so a frame is ready as soon as its last hop has arrived and
analysis followed by synthesis delays the signal by exactly ``latency_samples = frame_size - hop``.
Feeding a signal block by block, in blocks of any size, gives the same frames as one call.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_signals


def analysis_window(frame_size: int) -> np.ndarray:
    """Periodic square-root Hann window ``(frame_size,)``."""
    n = np.arange(frame_size)
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * n / frame_size))


def synthesis_window(window: np.ndarray, hop_size: int) -> np.ndarray:
    """Synthesis window that makes weighted overlap-add with ``window`` an exact inverse."""
    n = window.size
    denom = np.zeros(n)
    for k in range(-(n // hop_size) - 1, n // hop_size + 2):
        idx = np.arange(n) + k * hop_size
        ok = (idx >= 0) & (idx < n)
        denom[ok] += window[idx[ok]] ** 2
    if np.any(denom < 1e-8):
        raise ValueError(f"window of {n} samples with hop {hop_size} cannot be inverted; use hop <= frame_size / 2")
    return window / denom


def _check_sizes(frame_size: int, hop_size: int) -> None:
    if frame_size < 16 or frame_size & (frame_size - 1):
        raise ValueError(f"frame_size must be a power of two >= 16, got {frame_size}")
    if not 1 <= hop_size <= frame_size // 2:
        raise ValueError(f"hop_size must be in 1..frame_size/2 = {frame_size // 2}, got {hop_size}")


class StreamingSTFT:
    """Block-by-block STFT analysis.

    Args:
        n_channels: channels of the input.
        frame_size: FFT length in samples (power of two).
        hop_size: frame advance in samples.

    ``process(block (channels, n))`` returns the frames completed by this block, ``(channels, freq, k)``.
    """

    def __init__(self, n_channels: int, frame_size: int = 512, hop_size: int = 256) -> None:
        _check_sizes(frame_size, hop_size)
        self.n_channels = int(n_channels)
        self.frame_size = int(frame_size)
        self.hop_size = int(hop_size)
        self.window = analysis_window(frame_size)
        self.reset()

    @property
    def n_freqs(self) -> int:
        return self.frame_size // 2 + 1

    @property
    def latency_samples(self) -> int:
        """Delay of analysis followed by synthesis, samples."""
        return self.frame_size - self.hop_size

    def reset(self) -> None:
        self._history = np.zeros((self.n_channels, self.frame_size - self.hop_size))
        self._pending = np.zeros((self.n_channels, 0))
        self.frames_done = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        return self._analyse(check_signals(block, n_channels=self.n_channels, name="block", allow_empty=True))

    def _analyse(self, x: np.ndarray) -> np.ndarray:
        """:meth:`process` of a block that has been through ``check_signals`` already (float64, ``n_channels``
        rows; a column slice of a checked array will do): for the pipeline objects that check their input once."""
        data = np.concatenate([self._history, self._pending, x], axis=1)
        n_new = (self._pending.shape[1] + x.shape[1]) // self.hop_size
        used = self._history.shape[1] + n_new * self.hop_size
        if n_new == 0:
            self._pending = data[:, self._history.shape[1]:]
            return np.zeros((self.n_channels, self.n_freqs, 0), dtype=np.complex128)
        # frame t = data[:, t * hop: t * hop + frame_size], as a read-only view of the fresh, C-contiguous ``data``
        # (what sliding_window_view gives, without its per-call checks: they cost more than the FFT of one frame)
        s0, s1 = data.strides
        frames = np.ndarray((self.n_channels, n_new, self.frame_size), data.dtype, data, 0,
                            (s0, self.hop_size * s1, s1))
        frames.flags.writeable = False
        spec = np.fft.rfft(frames * self.window, axis=-1)  # (C, k, F)
        self._history = data[:, used - (self.frame_size - self.hop_size): used].copy()
        self._pending = data[:, used:].copy()
        self.frames_done += n_new
        return np.ascontiguousarray(spec.transpose(0, 2, 1))


class StreamingISTFT:
    """Block-by-block inverse of :class:`StreamingSTFT` (weighted overlap-add).

    ``process(frames (channels, freq, k))`` returns ``(channels, k * hop)`` samples, delayed by
    ``latency_samples = frame_size - hop`` relative to the analysed input.
    """

    def __init__(self, n_channels: int, frame_size: int = 512, hop_size: int = 256) -> None:
        _check_sizes(frame_size, hop_size)
        self.n_channels = int(n_channels)
        self.frame_size = int(frame_size)
        self.hop_size = int(hop_size)
        self.window = synthesis_window(analysis_window(frame_size), hop_size)
        self.reset()

    @property
    def latency_samples(self) -> int:
        return self.frame_size - self.hop_size

    def reset(self) -> None:
        self._acc = np.zeros((self.n_channels, self.frame_size))

    def process(self, frames: np.ndarray) -> np.ndarray:
        X = np.asarray(frames)
        F = self.frame_size // 2 + 1
        if X.ndim != 3 or X.shape[0] != self.n_channels or X.shape[1] != F:
            raise ValueError(f"frames must have shape ({self.n_channels}, {F}, n_frames), got {X.shape}")
        k = X.shape[2]
        hop = self.hop_size
        if k == 0:
            return np.zeros((self.n_channels, 0))
        time = np.fft.irfft(X, n=self.frame_size, axis=1) * self.window[None, :, None]  # (C, N, k)
        out_len = (k - 1) * hop + self.frame_size
        buf = np.zeros((self.n_channels, out_len))
        buf[:, : self.frame_size] += self._acc
        for t in range(k):
            buf[:, t * hop: t * hop + self.frame_size] += time[:, :, t]
        out = buf[:, : k * hop]
        self._acc = buf[:, k * hop: k * hop + self.frame_size].copy()
        if self._acc.shape[1] < self.frame_size:
            self._acc = np.pad(self._acc, ((0, 0), (0, self.frame_size - self._acc.shape[1])))
        return out


def stft(signals: np.ndarray, frame_size: int = 512, hop_size: int = 256) -> np.ndarray:
    """Offline STFT ``(channels, samples) -> (channels, freq, frames)``; identical to streaming.

    The end is zero-padded so that every input sample is covered by a full set of frames
    (``frames = ceil((samples + frame_size - hop) / hop)``), which lets :func:`istft` reconstruct all of it.
    """
    x = check_signals(signals)
    extra = -(x.shape[1] + frame_size - hop_size) % hop_size + frame_size - hop_size
    return StreamingSTFT(x.shape[0], frame_size, hop_size).process(np.pad(x, ((0, 0), (0, extra))))


def istft(spectra: np.ndarray, hop_size: int = 256, length: int | None = None) -> np.ndarray:
    """Offline inverse of :func:`stft`: ``(channels, freq, frames) -> (channels, length)``, time-aligned
    with the original input (the streaming latency is removed)."""
    X = np.asarray(spectra)
    if X.ndim != 3:
        raise ValueError(f"spectra must have shape (channels, freq, frames), got {X.shape}")
    frame_size = 2 * (X.shape[1] - 1)
    inv = StreamingISTFT(X.shape[0], frame_size, hop_size)
    y = inv.process(X)[:, inv.latency_samples:]
    return y if length is None else y[:, :length]
