"""Moshi-style full-duplex input: the target talker's stream as continuous 24 kHz frames of exactly 1920 samples
(80 ms), with the device's own speaking state fed back so that a user talking over it raises a barge-in event.

    python examples/moshi_frames.py
"""

import numpy as np

from farfield.adapters import MOSHI_FRAME, MoshiFrames
from farfield.frontend import Frontend
from farfield.sim.render import render_recipe_scene

scene = render_recipe_scene("home_living_room", seed=1, index=0)
sr = scene.sample_rate
frontend = Frontend(scene.array, sr)
moshi = MoshiFrames(sr)
frames = barge_ins = 0
block = sr // 50  # 20 ms, as a sound card would deliver
for start in range(0, scene.mix.shape[1], block):
    t = start / sr
    moshi.set_device_speaking(4.0 <= t < 9.0)  # pretend the agent talks from 4 s to 9 s
    out = frontend.process(scene.mix[:, start: start + block].astype(np.float64))
    for frame in moshi.process(out.target[1]):
        assert frame.shape == (MOSHI_FRAME,)
        frames += 1  # here: model.step(frame)
    for ev in moshi.pop_events():
        barge_ins += 1
        print(f"{ev['time_s']:6.2f} s  {ev['type']}: the user spoke while the device was speaking")
print(f"{frames} frames of {MOSHI_FRAME} samples at 24 kHz ({frames * 0.08:.2f} s) for "
      f"{scene.mix.shape[1] / sr:.2f} s of input; {barge_ins} barge-in event(s)")
