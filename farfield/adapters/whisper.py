"""Whisper-style ASR input: 16 kHz float32 utterances with boundaries from a VAD.

``WhisperChunker(sample_rate).process(audio)`` takes the target stream (or one speaker's stream) block by block at
the pipeline rate and returns the :class:`Utterance` objects completed by it. Long speech is cut at
``max_utterance_s`` (Whisper's window is 30 s). With ``faster-whisper`` installed, :func:`transcribe` runs a
model on an utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..vad import EnergyVAD
from ._resample import MonoResampler

WHISPER_RATE = 16000


@dataclass(frozen=True)
class Utterance:
    """One utterance: ``audio`` float32 mono at 16 kHz; times in seconds of the input stream."""

    start_s: float
    end_s: float
    audio: np.ndarray
    speaker: int | None = None


class WhisperChunker:
    """Cut a mono stream into VAD utterances at 16 kHz float32.

    Args:
        sample_rate: rate of the audio fed in.
        vad: a VAD with ``process(block) -> [(start, end)]``, ``flush()`` and ``segment_start`` in input
            samples (:class:`~farfield.vad.EnergyVAD` by default).
        pad_s: audio kept before and after each VAD segment.
        max_utterance_s: longer speech is split.
        max_buffer_s: how much input is kept for cutting utterances (bounds memory).
        speaker: a label copied into each utterance.
    """

    def __init__(self, sample_rate: int, *, vad=None, pad_s: float = 0.2, max_utterance_s: float = 30.0,
                 max_buffer_s: float = 40.0, speaker: int | None = None) -> None:
        self.sample_rate = int(sample_rate)
        self.vad = vad if vad is not None else EnergyVAD(sample_rate)
        self.pad = int(pad_s * sample_rate)
        self.max_len = int(max_utterance_s * sample_rate)
        self.cap = int(max(max_buffer_s, max_utterance_s + 2 * pad_s + 2) * sample_rate)
        self.speaker = speaker
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # stream sample of _buf[0]
        self._n = 0
        self._cut = 0  # speech before this sample was already emitted (split of long utterances)

    def _take(self, a: int, b: int) -> Utterance:
        a, b = max(a, self._buf_start), min(b, self._buf_start + self._buf.size)
        seg = self._buf[a - self._buf_start: b - self._buf_start]
        audio = MonoResampler(self.sample_rate, WHISPER_RATE).process(seg, last=True)
        return Utterance(a / self.sample_rate, b / self.sample_rate, audio.astype(np.float32), self.speaker)

    def process(self, audio: np.ndarray) -> list[Utterance]:
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, x])
        self._n += x.size
        out = [self._take(max(s - self.pad, self._cut), e + self.pad) for s, e in self.vad.process(x)]
        if out:
            self._cut = max(self._cut, int(out[-1].end_s * self.sample_rate))
        # split an utterance that runs too long
        start = self.vad.segment_start
        if start is not None and self._n - max(start, self._cut) >= self.max_len:
            a = max(start, self._cut)
            out.append(self._take(a, a + self.max_len))
            self._cut = a + self.max_len
        drop = self._buf.size - self.cap
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return out

    def flush(self) -> list[Utterance]:
        return [self._take(max(s - self.pad, self._cut), e + self.pad) for s, e in self.vad.flush()]


def transcribe(model, utterance: Utterance, **options) -> str:
    """Transcribe with a ``faster_whisper.WhisperModel`` (``pip install faster-whisper``; bring your own model)."""
    segments, _ = model.transcribe(utterance.audio, **options)
    return " ".join(s.text.strip() for s in segments)
