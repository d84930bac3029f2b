"""Downstream adapters: audio from the front end in the shapes other stacks expect.

- :mod:`.whisper`: 16 kHz float32 utterances of the target (or of each speaker) for Whisper-style ASR.
- :mod:`.moshi`: 24 kHz mono frames of exactly 1920 samples (80 ms) for Moshi-style full-duplex models.
- :mod:`.pipecat`: a Pipecat frame processor (needs ``pip install pipecat-ai``).
"""

from .moshi import MOSHI_FRAME, MOSHI_RATE, MoshiFrames
from .whisper import WHISPER_RATE, Utterance, WhisperChunker

__all__ = ["MOSHI_FRAME", "MOSHI_RATE", "MoshiFrames", "WHISPER_RATE", "Utterance", "WhisperChunker"]
