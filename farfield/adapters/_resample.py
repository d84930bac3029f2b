"""A mono streaming resampler shared by the adapters."""

from __future__ import annotations

import numpy as np


class MonoResampler:
    """Streaming mono resampling with soxr (``process(x) -> y``; ``flush()`` returns the tail)."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self._rs = None
        if self.rate_in != self.rate_out:
            import soxr

            self._rs = soxr.ResampleStream(self.rate_in, self.rate_out, 1, dtype="float32", quality="HQ")

    def process(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if self._rs is None:
            return x
        return self._rs.resample_chunk(x, last=last).reshape(-1)

    def flush(self) -> np.ndarray:
        return self.process(np.zeros(0, np.float32), last=True)
