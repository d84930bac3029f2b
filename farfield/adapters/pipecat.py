"""Pipecat integration (``pip install pipecat-ai``): a frame processor that turns the array's multichannel
``InputAudioRawFrame`` into the target's mono ``InputAudioRawFrame`` (int16 PCM), or into one
``UserAudioRawFrame`` per tracked talker with ``user_id = "talker-<track id>"``.

Put it right after the input transport (configured with the array's channel count and rate). Other frames pass
through unchanged. Pre-roll audio of a newly found talker is sent with its first frame.
"""

from __future__ import annotations

import numpy as np

try:
    from pipecat.frames.frames import Frame, InputAudioRawFrame, UserAudioRawFrame
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
except ImportError as e:  # pragma: no cover - optional extra
    raise ImportError("farfield.adapters.pipecat needs Pipecat: pip install pipecat-ai") from e

from ..frontend import Frontend
from ..geometry import ArrayGeometry, load_array


def _pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 32767 / 32768) * 32768).astype(np.int16).tobytes()


class FarfieldProcessor(FrameProcessor):
    """Array audio in, target (``output="target"``) or per-speaker (``output="speakers"``) audio out."""

    def __init__(self, array: ArrayGeometry | str, sample_rate: int, *, output: str = "target",
                 **frontend_options) -> None:
        super().__init__()
        if output not in ("target", "speakers"):
            raise ValueError(f"output must be 'target' or 'speakers', got {output!r}")
        self.array = load_array(array)
        self.sample_rate = int(sample_rate)
        self.output = output
        self.frontend = Frontend(self.array, self.sample_rate, **frontend_options)

    def convert(self, frame: InputAudioRawFrame) -> list[Frame]:
        """The frames to push for one multichannel input frame (the synchronous core of :meth:`process_frame`)."""
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"input audio is {frame.sample_rate} Hz but the processor was set up for "
                             f"{self.sample_rate} Hz")
        x = np.frombuffer(frame.audio, dtype=np.int16).reshape(-1, frame.num_channels).T.astype(np.float32) / 32768
        if frame.num_channels == self.array.n_mics:
            mics = x
        elif frame.num_channels > max(self.array.channels):
            mics = x[list(self.array.channels)]
        else:
            raise ValueError(f"input audio has {frame.num_channels} channel(s); profile '{self.array.name}' needs "
                             f"{self.array.n_mics} mics (device channels {list(self.array.channels)})")
        block = self.frontend.process(mics)
        if self.output == "target":
            audio = block.target[1] if block.target is not None else np.zeros(0)
            return [InputAudioRawFrame(audio=_pcm16(audio), sample_rate=self.sample_rate, num_channels=1)]
        out = []
        for tid, chunks in block.streams.items():
            audio = np.concatenate([c[1] for c in chunks])
            out.append(UserAudioRawFrame(audio=_pcm16(audio), sample_rate=self.sample_rate, num_channels=1,
                                         user_id=f"talker-{tid}"))
        return out

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and not isinstance(frame, UserAudioRawFrame) \
                and frame.num_channels > 1:
            for f in self.convert(frame):
                await self.push_frame(f, direction)
        else:
            await self.push_frame(frame, direction)
