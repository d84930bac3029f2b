"""Pipecat: FarfieldProcessor turns the array's multichannel InputAudioRawFrame into the target's mono
InputAudioRawFrame (int16), or into one UserAudioRawFrame per talker (output="speakers").

In a real agent, put it right after the input transport:

    pipeline = Pipeline([transport.input(), FarfieldProcessor("respeaker-usb-4mic", 16000), stt, llm, tts,
                         transport.output()])

This script feeds it frames of a simulated room directly (needs `pip install pipecat-ai`).

    python examples/pipecat_processor.py
"""

import numpy as np
from pipecat.frames.frames import InputAudioRawFrame

from farfield.adapters.pipecat import FarfieldProcessor
from farfield.sim.render import render_recipe_scene

scene = render_recipe_scene("meeting_room", seed=2, index=0)
sr, n_mics = scene.sample_rate, scene.array.n_mics
pcm = (np.clip(scene.mix, -1, 1) * 32767).astype(np.int16)
for output in ("target", "speakers"):
    proc = FarfieldProcessor(scene.array, sr, output=output)
    counts: dict = {}
    for s in range(0, pcm.shape[1], 320):  # 20 ms transport frames, interleaved int16
        frame = InputAudioRawFrame(audio=pcm[:, s: s + 320].T.tobytes(), sample_rate=sr, num_channels=n_mics)
        for f in proc.convert(frame):  # in a pipeline: `await proc.process_frame(frame, direction)`
            key = getattr(f, "user_id", "") or "target"
            counts[key] = counts.get(key, 0) + len(f.audio) // 2
    print(f"output={output}: " + ", ".join(f"{k}: {v / sr:.1f} s" for k, v in sorted(counts.items())))
