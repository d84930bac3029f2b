"""Voice activity on a mono stream: Silero VAD (its weights ship inside the ``silero-vad`` package; needs torch)
and an energy detector that needs no torch, both with hangover and minimum-duration smoothing.
:func:`make_vad` picks Silero when it can be loaded and falls back to energy otherwise.

``EnergyVAD.process(block)`` consumes ``(samples,)`` float audio at ``sample_rate`` and returns the speech
segments *completed* by this block, as ``(start_sample, end_sample)`` in stream samples; ``speaking`` tells
whether a segment is open. Block-by-block and offline calls give the same segments.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

FLOOR_RISE_DB_S = 3.0  # how fast a noise floor may rise unless told otherwise, dB per second


class NoiseFloor:
    """A running noise floor (mean-square power): it follows any lower power at once and rises at most
    ``rise_db_s`` dB per second. Exact zeros (digital silence: a gap in a stream, or a block a leakage gate
    silenced) say nothing of the room and leave it as it is. ``power`` is 0.0 until something has been heard."""

    def __init__(self, rise_db_s: float) -> None:
        if not math.isfinite(rise_db_s) or rise_db_s < 0:
            raise ValueError(f"noise floor rise must be finite and >= 0 dB/s, got {rise_db_s}")
        self.rise_db_s = float(rise_db_s)
        self.power = 0.0

    def update(self, power: float, seconds: float) -> float:
        """Take in the power of ``seconds`` of sound; returns the floor."""
        if power > 0.0:
            if self.power == 0.0 or power < self.power:
                self.power = max(float(power), 1e-12)
            else:
                self.power *= 10 ** (self.rise_db_s * seconds / 10)
        return self.power

    def seed(self, power: float) -> None:
        """Lower the floor to ``power`` (or start it there when nothing was heard yet); 0 changes nothing."""
        if not math.isfinite(power) or power < 0:
            raise ValueError(f"noise floor power must be a finite mean square >= 0, got {power}")
        if power > 0.0 and (self.power == 0.0 or power < self.power):
            self.power = float(power)


def frame_powers(x: np.ndarray, frame: int) -> np.ndarray:
    """Mean-square power of each whole ``frame``-sample frame of ``x`` (of all of ``x`` when it is shorter)."""
    n = x.size // frame
    if n == 0:
        return np.array([float(np.mean(x**2))]) if x.size else np.zeros(0)
    return np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)


class EnergyVAD:
    """Frame energy against a tracked noise floor (:class:`NoiseFloor`).

    Args:
        sample_rate: Hz.
        frame_ms: analysis frame.
        threshold_db: a frame is speech-like when this far above the noise floor.
        hangover_s: a segment stays open this long after the last speech-like frame.
        min_speech_s: shorter segments are dropped (clicks, door slams).
        floor_rise_db_s: how fast the noise floor may rise.
        min_level_dbfs: frames below this are never speech (digital silence, dither).
    """

    def __init__(self, sample_rate: int, *, frame_ms: float = 20.0, threshold_db: float = 9.0,
                 hangover_s: float = 0.3, min_speech_s: float = 0.15, floor_rise_db_s: float = FLOOR_RISE_DB_S,
                 min_level_dbfs: float = -70.0) -> None:
        self.sample_rate = int(sample_rate)
        self.frame = int(round(sample_rate * frame_ms / 1000))
        self.threshold = 10 ** (threshold_db / 10)
        self.hang = int(math.ceil(hangover_s * 1000 / frame_ms))
        self.min_frames = int(math.ceil(min_speech_s * 1000 / frame_ms))
        self.floor_rise_db_s = float(floor_rise_db_s)
        self.min_power = 10 ** (min_level_dbfs / 10)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """A segment's end is known ``hangover`` after the speech stops."""
        return self.hang * self.frame

    def reset(self) -> None:
        self._buf = np.zeros(0)
        self.floor = NoiseFloor(self.floor_rise_db_s)
        self._pos = 0  # stream sample of the next frame
        self._start: int | None = None
        self._last_speech = 0
        self._since = 0

    @property
    def speaking(self) -> bool:
        return self._start is not None

    @property
    def samples_fed(self) -> int:
        """Input samples consumed so far (including a partial frame still buffered)."""
        return self._pos + self._buf.size

    @property
    def segment_start(self) -> int | None:
        """Stream sample where the open segment started (``None`` when none is open)."""
        return self._start

    def process(self, block: np.ndarray) -> list[tuple[int, int]]:
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(x)):
            raise ValueError("VAD input contains NaN or inf")
        data = np.concatenate([self._buf, x])
        n = data.size // self.frame
        self._buf = data[n * self.frame:]
        out = []
        for k in range(n):
            speech = self._is_speech(data[k * self.frame:(k + 1) * self.frame])
            t = self._pos
            if speech:
                if self._start is None:
                    self._start, self._since = t, 0
                self._last_speech = t + self.frame
                self._since += 1
            elif self._start is not None and t + self.frame - self._last_speech > self.hang * self.frame:
                if self._since >= self.min_frames:
                    out.append((self._start, self._last_speech))
                self._start = None
            self._pos += self.frame
        return out

    def split(self, at: int) -> list[tuple[int, int]]:
        """Close the open segment at stream sample ``at`` (at most the samples analysed so far) and go on with a new
        one from there: someone else now speaks on this stream without a pause. Returns the closed part as
        :meth:`process` would (none when it is shorter than ``min_speech_s``)."""
        if self._start is None:
            raise ValueError("VAD split: no segment is open")
        at = min(int(at), self._pos)
        if at <= self._start:
            raise ValueError(f"VAD split: sample {at} is not after the open segment's start {self._start}")
        end = min(at, self._last_speech)
        out = [(self._start, end)] if end - self._start >= self.min_frames * self.frame else []
        self._start, self._since = at, max(1, (self._pos - at) // self.frame)
        return out

    def seed_floor(self, power: float) -> None:
        """Start the noise floor at ``power`` (mean square, as of a frame) unless the stream has shown a lower one.
        A stream that starts on speech (a track is born on it) would otherwise take the speech for its floor, and
        a stream that a leakage gate silences between words may never show it the room's noise."""
        self.floor.seed(power)

    def _is_speech(self, frame: np.ndarray) -> bool:
        p = float(np.mean(frame**2))
        floor = self.floor.update(p, frame.size / self.sample_rate)
        return p > self.min_power and p > self.threshold * floor

    def flush(self) -> list[tuple[int, int]]:
        """Close an open segment at the end of the stream."""
        out = []
        if self._start is not None and self._since >= self.min_frames:
            out.append((self._start, self._last_speech))
        self._start = None
        return out


@functools.lru_cache(maxsize=1)
def _pristine_silero():
    """The Silero model as loaded once per process, never run: each :class:`SileroVAD` takes a copy of it (a copy
    takes about a fifth of the time of a load, which a live stream would pay for each new track)."""
    from silero_vad import load_silero_vad

    return load_silero_vad()


class SileroVAD(EnergyVAD):
    """Silero VAD: a neural speech probability per 32 ms chunk (16 kHz; other rates are resampled), then the same
    hangover / minimum-duration smoothing as :class:`EnergyVAD`.

    Args:
        threshold: speech probability above which a chunk is speech.
    """

    def __init__(self, sample_rate: int, *, threshold: float = 0.5, hangover_s: float = 0.3,
                 min_speech_s: float = 0.15) -> None:
        try:
            import torch

            pristine = _pristine_silero()
        except ImportError as e:
            raise ImportError("Silero VAD needs torch and silero-vad: pip install 'farfield[neural]' silero-vad") from e
        self._torch = torch
        self.model = copy.deepcopy(pristine)  # its own recurrent state: one model per stream
        self.prob_threshold = float(threshold)
        chunk_ms = 512 / 16000 * 1000
        super().__init__(sample_rate, frame_ms=chunk_ms, hangover_s=hangover_s, min_speech_s=min_speech_s)
        self.frame = int(round(sample_rate * 512 / 16000))
        from .adapters._resample import MonoResampler

        self._rs = MonoResampler(sample_rate, 16000)
        self._res_buf = np.zeros(0, np.float32)

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "model"):
            self.model.reset_states()
        self._res_buf = np.zeros(0, np.float32)

    def _is_speech(self, frame: np.ndarray) -> bool:
        self._res_buf = np.concatenate([self._res_buf, self._rs.process(frame)])
        if self._res_buf.size < 512:
            return False
        chunk, self._res_buf = self._res_buf[:512], self._res_buf[512:]
        with self._torch.no_grad():
            p = float(self.model(self._torch.from_numpy(np.ascontiguousarray(chunk)), 16000))
        return p > self.prob_threshold


def make_vad(sample_rate: int, kind: str = "auto", **options) -> EnergyVAD:
    """``"silero"``, ``"energy"`` or ``"auto"`` (Silero when torch and silero-vad are installed)."""
    if kind not in ("auto", "silero", "energy"):
        raise ValueError(f"unknown VAD '{kind}'; expected auto, silero or energy")
    if kind in ("auto", "silero"):
        try:
            return SileroVAD(sample_rate, **options)
        except ImportError:
            if kind == "silero":
                raise
    return EnergyVAD(sample_rate, **{k: v for k, v in options.items() if k != "threshold"})
