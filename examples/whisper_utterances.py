"""Whisper-style ASR input: replay a simulated meeting as if live, follow the target talker, and cut its stream
into 16 kHz float32 utterances. With faster-whisper installed, pass --model PATH_OR_NAME to transcribe them.

    python examples/whisper_utterances.py [--model small.en]
"""

import argparse
import tempfile
from pathlib import Path

import soundfile as sf

from farfield.adapters import WhisperChunker
from farfield.adapters.whisper import transcribe
from farfield.capture import FileReplaySource
from farfield.frontend import Frontend
from farfield.sim.render import render_recipe_scene

ap = argparse.ArgumentParser()
ap.add_argument("--model", default=None, help="a faster-whisper model (needs `pip install faster-whisper`)")
args = ap.parse_args()

scene = render_recipe_scene("meeting_room", seed=0, index=0)  # built-in espeak-ng voices, no download
with tempfile.TemporaryDirectory() as d:
    path = Path(d) / "mix.wav"
    sf.write(str(path), scene.mix.T, scene.sample_rate)
    source = FileReplaySource(path, scene.array, channels_are_mics=True)  # realtime=True paces it like a device
    frontend = Frontend(scene.array, scene.sample_rate)
    chunker = WhisperChunker(scene.sample_rate)
    model = None
    if args.model:
        from faster_whisper import WhisperModel

        model = WhisperModel(args.model)
    utterances = []
    for block in frontend.stream(source):
        for u in chunker.process(block.target[1]):
            text = transcribe(model, u) if model else ""
            print(f"utterance {u.start_s:6.2f}-{u.end_s:6.2f} s, {u.audio.size} samples at 16 kHz {text}")
            utterances.append(u)
    for u in chunker.flush():
        print(f"utterance {u.start_s:6.2f}-{u.end_s:6.2f} s, {u.audio.size} samples at 16 kHz")
        utterances.append(u)
print(f"{len(utterances)} utterances from the target stream of a {scene.params['duration_s']:.0f} s meeting")
