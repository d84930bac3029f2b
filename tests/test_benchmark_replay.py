"""The target-selection benchmark runs the pipeline once per scene and replays each policy's selector on it
(``benchmarks/diarization.py``, ``SelectorTrace``). That holds only while nothing upstream of the selector depends on
the policy; this checks the replay against separate runs."""

import sys
from pathlib import Path

import numpy as np
import pytest

from farfield import Cue
from farfield.diarize import OnlineDiarizer
from farfield.frontend import process
from farfield.geometry import load_array
from farfield.target import TargetSelector

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from diarization import SelectorTrace  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    from farfield.sim import SourceSpec, render_scene, synthetic_speech

    rng = np.random.default_rng(7)
    arr = load_array("respeaker-6mic-hat")
    tv = synthetic_speech(6.0, 16000, rng=rng, f0_hz=110)
    person = synthetic_speech(6.0, 16000, rng=rng, f0_hz=210)
    person[:32000] = 0.0
    person[64000:72000] = 0.0
    srcs = [SourceSpec(tv, (4.3, 2.5, 1.4), name="tv"), SourceSpec(person, (2.0, 3.8, 1.4), name="person")]
    sc = render_scene(arr, srcs, 16000, room_dim=(6, 5, 3), rt60_s=0.3, array_position=(3, 2.5, 1.0), snr_db=25,
                      duration_s=6.0, rng=rng)
    return arr, sc.mix, float(np.degrees(np.arctan2(3.8 - 2.5, 2.0 - 3.0)))


def diarizer():
    return OnlineDiarizer(16000, embeddings=False, vad="energy")


def test_replayed_selectors_match_separate_runs(scene):
    arr, mix, person_az = scene
    trace = SelectorTrace(TargetSelector(startup_s=0.0))
    shared = process(mix, 16000, arr, diarizer=diarizer(), target=trace)
    # the person's speech is detected from about 3.2 s (a cue before it, a wake word during its first 0.4 s)
    cues = [[2.9], [(3.0, 3.4)], [Cue(2.9, direction_deg=person_az)]]
    cases = [({}, []), ({"sector": (person_az, 20.0)}, [])] + [({"require_trigger": True}, c) for c in cues]
    locked = 0
    for kw, cues in cases:
        kw = {"startup_s": 0.0, **kw}
        live = process(mix, 16000, arr, diarizer=diarizer(), target=TargetSelector(**kw), triggers=cues)
        again = trace.replay(shared, arr, TargetSelector(**kw), cues)
        assert again.target_segments == live.target_segments, (kw, cues)
        assert [e for e in again.events if e.type == "target_changed"] == \
            [e for e in live.events if e.type == "target_changed"]
        locked += bool(cues and live.target_segments)
    assert locked == 3  # each cue took a lock: the comparison is not between empty results


def test_target_breakdown_puts_each_second_of_target_time_in_one_place():
    """``benchmarks/target_replay.py``'s breakdown of a policy's target time, on a hand-made result."""
    from types import SimpleNamespace

    from target_replay import breakdown

    from farfield.diarize import SpeakerSegment
    from farfield.sim.render import Segment
    from farfield.track import TrackRow

    # (time, name, kind, x, y, z, azimuth, elevation, distance), as the simulator lists them
    positions = [(0.0, "talker1", "talker", 0, 0, 0, 0.0, 0.0, 1.0),
                 (0.0, "talker2", "talker", 0, 0, 0, 90.0, 0.0, 2.0),
                 (0.0, "playback_tv1", "playback", 0, 0, 0, 200.0, 0.0, 3.0)]
    scene = SimpleNamespace(array=load_array("respeaker-6mic-hat"), positions=positions,
                            segments=[Segment("talker1", 1.0, 2.0), Segment("talker2", 3.0, 1.0),
                                      Segment("talker1", 6.0, 1.0)])
    rows = [TrackRow(t, tid, az, 0.0, -30.0) for t in np.arange(0.0, 8.0, 0.032)
            for tid, az in ((1, 2.0), (2, 88.0), (3, 201.0), (4, 140.0))]
    target = [SpeakerSegment("addressee", 1.0, 3.5, 1),  # 2 s right, then 0.5 s while talker2 speaks
              SpeakerSegment("x", 4.0, 4.5, 2), SpeakerSegment("x", 5.0, 5.2, 3), SpeakerSegment("x", 5.2, 5.5, 4),
              SpeakerSegment("addressee", 5.8, 6.5, 1)]  # 0.2 s before their words with nobody speaking, 0.5 s right
    got = breakdown(scene, SimpleNamespace(target_segments=target, tracks=rows), "talker1")
    want = {"right: the addressee while they speak": 2.5, "their track, silent, while others speak": 0.5,
            "their track, silent, nobody else speaks": 0.2, "another talker's track": 0.5, "the TV's track": 0.2,
            "a track over 20 deg from every source": 0.3}
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=0.011), k
    assert sum(got.values()) == pytest.approx(sum(g.end_s - g.start_s for g in target))
