"""The streaming API: feed audio block by block (as a sound card callback would) and print the active tracks.

    python examples/stream_blocks.py
"""

import numpy as np

import farfield as ff
from farfield.sim import SourceSpec, render_scene, synthetic_speech

rng = np.random.default_rng(1)
array = ff.load_array("matrix-creator")
talker = SourceSpec(synthetic_speech(5.0, 16000, rng=rng), (1.0, 1.0, 1.5))
scene = render_scene(array, [talker], 16000, rt60_s=0.3, snr_db=20, array_position=(3.0, 2.5, 1.0), rng=rng)
print(f"true azimuth {scene.azimuth_deg[0]:.1f} deg")

localizer = ff.Localizer(array, 16000)
tracker = ff.Tracker(frame_period_s=localizer.frame_period_s)
block = 160  # 10 ms blocks; any size works and gives the same result as one offline call
updates = 0
for start in range(0, scene.mix.shape[1], block):
    for frame in localizer.process(scene.mix[:, start: start + block]):
        rows = tracker.update(frame)
        updates += 1
        if rows and updates % 16 == 0:  # print about twice a second
            print(f"{frame.time_s:6.2f} s  " + "  ".join(
                f"id {r.track_id}: {r.azimuth_deg:6.1f} deg, {r.power_db:6.1f} dB" for r in rows))
