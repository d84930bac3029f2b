"""Small shared scenes for tests."""

import farfield as ff


def two_talker_mix(rng, seconds: float = 3.0):
    """Two synthetic talkers around a ReSpeaker 6-mic array in a small room: ``(array, mix (6, n))``."""
    from farfield.sim import SourceSpec, render_scene, synthetic_speech

    arr = ff.load_array("respeaker-6mic-hat")
    srcs = [SourceSpec(synthetic_speech(seconds, 16000, rng=rng, f0_hz=f0), pos, name=f"t{k}")
            for k, (f0, pos) in enumerate(((110, (4.5, 2.5, 1.4)), (210, (2.0, 3.8, 1.4))))]
    sc = render_scene(arr, srcs, 16000, room_dim=(6, 5, 3), rt60_s=0.3, array_position=(3, 2.5, 1.0), snr_db=20,
                      duration_s=seconds, rng=rng)
    return arr, sc.mix
