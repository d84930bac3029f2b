"""Moshi-style full-duplex input: 24 kHz mono float32 frames of exactly 1920 samples (80 ms), continuous.

``MoshiFrames(sample_rate).process(audio)`` resamples the target stream and returns every complete frame; nothing
is dropped or repeated (the remainder waits for the next block). The device's own speaking state is given with
:meth:`set_device_speaking`; while it speaks, speech from the user (a VAD on the input) raises a ``barge_in``
event, which a full-duplex agent uses to stop talking.
"""

from __future__ import annotations

import numpy as np

from ..vad import EnergyVAD
from ._resample import MonoResampler

MOSHI_RATE = 24000
MOSHI_FRAME = 1920


class MoshiFrames:
    """Continuous 80 ms frames at 24 kHz from a mono stream at ``sample_rate``."""

    def __init__(self, sample_rate: int, *, vad=None) -> None:
        self.sample_rate = int(sample_rate)
        self._rs = MonoResampler(sample_rate, MOSHI_RATE)
        self._pending = np.zeros(0, np.float32)
        self.vad = vad if vad is not None else EnergyVAD(sample_rate, hangover_s=0.2, min_speech_s=0.1)
        self.device_speaking = False
        self.events: list[dict] = []
        self._n_in = 0
        self.frames_out = 0

    def set_device_speaking(self, speaking: bool) -> None:
        """Tell the adapter whether the device is talking now (for barge-in)."""
        self.device_speaking = bool(speaking)

    def process(self, audio: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        was = self.vad.speaking
        self.vad.process(x)
        self._n_in += x.size
        if self.vad.speaking and not was and self.device_speaking:
            self.events.append({"type": "barge_in", "time_s": self._n_in / self.sample_rate})
        self._pending = np.concatenate([self._pending, self._rs.process(x)])
        n = self._pending.size // MOSHI_FRAME
        frames = [self._pending[k * MOSHI_FRAME:(k + 1) * MOSHI_FRAME].copy() for k in range(n)]
        self._pending = self._pending[n * MOSHI_FRAME:]
        self.frames_out += n
        return frames

    def pop_events(self) -> list[dict]:
        ev, self.events = self.events, []
        return ev
