"""Voice activity on a mono stream: an energy detector that needs no torch, with hangover and minimum-duration
smoothing. (Silero VAD for the diarization stage will plug into the same interface.)

``EnergyVAD.process(block)`` consumes ``(samples,)`` float audio at ``sample_rate`` and returns the speech
segments *completed* by this block, as ``(start_sample, end_sample)`` in stream samples; ``speaking`` tells
whether a segment is open. Block-by-block and offline calls give the same segments.
"""

from __future__ import annotations

import math

import numpy as np


class EnergyVAD:
    """Frame energy against a tracked noise floor.

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
                 hangover_s: float = 0.3, min_speech_s: float = 0.15, floor_rise_db_s: float = 3.0,
                 min_level_dbfs: float = -70.0) -> None:
        self.sample_rate = int(sample_rate)
        self.frame = int(round(sample_rate * frame_ms / 1000))
        self.threshold = 10 ** (threshold_db / 10)
        self.hang = int(math.ceil(hangover_s * 1000 / frame_ms))
        self.min_frames = int(math.ceil(min_speech_s * 1000 / frame_ms))
        self.rise = 10 ** (floor_rise_db_s * frame_ms / 1000 / 10)
        self.min_power = 10 ** (min_level_dbfs / 10)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """A segment's end is known ``hangover`` after the speech stops."""
        return self.hang * self.frame

    def reset(self) -> None:
        self._buf = np.zeros(0)
        self._floor = 0.0
        self._pos = 0  # stream sample of the next frame
        self._start: int | None = None
        self._last_speech = 0
        self._since = 0

    @property
    def speaking(self) -> bool:
        return self._start is not None

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
            p = float(np.mean(data[k * self.frame:(k + 1) * self.frame] ** 2))
            if self._floor == 0.0 or p < self._floor:
                self._floor = max(p, 1e-12)
            else:
                self._floor *= self.rise
            speech = p > self.min_power and p > self.threshold * self._floor
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

    def flush(self) -> list[tuple[int, int]]:
        """Close an open segment at the end of the stream."""
        out = []
        if self._start is not None and self._since >= self.min_frames:
            out.append((self._start, self._last_speech))
        self._start = None
        return out
