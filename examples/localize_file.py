"""Localize and track the talkers in a multichannel recording (offline).

    python examples/localize_file.py REC.wav ARRAY        # e.g. ARRAY = respeaker-6mic-hat or my_array.toml
    python examples/localize_file.py                      # no arguments: renders a small room first
"""

import sys

import numpy as np

import farfield as ff
from farfield.io import mic_signals, read_audio, summarize_tracks


def simulated_recording():
    from farfield.sim import SourceSpec, render_scene, synthetic_speech

    rng = np.random.default_rng(0)
    array = ff.load_array("respeaker-6mic-hat")
    talkers = [SourceSpec(synthetic_speech(4.0, 16000, f0_hz=f0, rng=rng), pos)
               for f0, pos in ((110.0, (1.5, 3.8, 1.6)), (210.0, (4.5, 1.2, 1.5)))]
    scene = render_scene(array, talkers, 16000, rt60_s=0.4, snr_db=20, array_position=(3.0, 2.5, 1.0), rng=rng)
    print("true azimuths:", np.round(scene.azimuth_deg, 1))
    return scene.mix, 16000, array


if len(sys.argv) == 3:
    array = ff.load_array(sys.argv[2])
    recording, sample_rate = read_audio(sys.argv[1])
    signals = mic_signals(recording, array)
else:
    signals, sample_rate, array = simulated_recording()

result = ff.localize(signals, sample_rate, array)
for track in summarize_tracks(result.tracks):
    print(f"track {track['track_id']}: azimuth {track['azimuth_deg']:.1f} deg "
          f"(+- {track['azimuth_std_deg']:.1f}), {track['start_s']:.2f}-{track['end_s']:.2f} s")
