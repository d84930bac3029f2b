"""Simulator: recipes, rendering physics and labels, dataset writing, resume, datasets, evaluation."""

import json
import pathlib
import shutil

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import csd, welch

from farfield.geometry import SPEED_OF_SOUND, azimuth_difference_deg, load_array
from farfield.io import read_rttm
from farfield.sim.dataset import read_manifest, simulate
from farfield.sim.noise import diffuse_noise, spherical_coherence
from farfield.sim.recipe import RecipeError, list_recipes, load_recipe, parse_recipe
from farfield.sim.render import render_recipe_scene
from farfield.sim.voices import EspeakBank, FolderBank
from farfield.sim.room import compute_rirs, measure_rt60


def small_recipe(**over) -> dict:
    """A quick scene: 4 s, small room, 4-mic array, two talkers and a hum."""
    r = {"name": "test_small", "duration_s": 4.0,
         "room": {"size_m": [6.0, 5.0, 3.0], "rt60_s": 0.4, "max_order": 20},
         "array": {"profile": "respeaker-4mic-hat", "height_m": 1.0, "wall_margin_m": 1.5},
         "talkers": {"count": 2, "distance_m": [1.0, 1.8], "min_separation_deg": 40.0},
         "conversation": {"first_turn_s": 0.2, "turn_s": [1.0, 1.5], "gap_s": [-0.2, 0.3], "long_pause_prob": 0.0},
         "noise": [{"type": "machine_hum", "distance_m": [1.5, 2.5]}, {"type": "diffuse"}],
         "mix": {"snr_db": [5.0, 15.0], "gain_mismatch_db": 0.0}}
    for key, value in over.items():
        if isinstance(value, dict):
            r.setdefault(key, {}).update(value)
        else:
            r[key] = value
    return r


def test_builtin_recipes_load():
    names = list_recipes()
    for want in ("factory_hall", "warehouse", "home_living_room", "meeting_room", "robot_cafe"):
        assert want in names
        assert load_recipe(want).name == want


@pytest.mark.parametrize("rt60, size", [(0.3, [5.0, 4.0, 2.8]), (0.7, [8.0, 6.0, 3.0]), (1.5, [40.0, 20.0, 8.0])])
def test_measured_rt60_within_20_percent(rt60, size):
    rec = parse_recipe(small_recipe(room={"size_m": size, "rt60_s": rt60, "max_order": 30}, noise=[],
                                    duration_s=2.0, array={"wall_margin_m": 1.5}))
    scene = render_recipe_scene(rec, 1, 0)
    p = scene.params
    for measured in p["measured"]["rt60_per_talker_s"]:
        assert abs(measured / rt60 - 1) < 0.2, (measured, rt60)
    # and independently, from freshly computed RIRs at the labelled positions to the reference mic
    t = p["talkers"][0]
    h = compute_rirs(p["room"]["size_m"], p["room"]["wall_energy_absorption"], p["room"]["image_source_order"],
                     np.array(t["trajectory_m"][:1]), np.array(p["array"]["mics_in_room_m"][:1]), 16000)[0]
    assert abs(measure_rt60(h[0], 16000) / rt60 - 1) < 0.2


def test_impossible_rt60_warns():
    with pytest.warns(UserWarning, match="fully absorbing"):
        render_recipe_scene(parse_recipe(small_recipe(room={"rt60_s": 0.02}, noise=[], duration_s=2.0)), 0, 0)
    with pytest.warns(UserWarning, match="order is capped"):
        render_recipe_scene(parse_recipe(small_recipe(room={"rt60_s": 3.0, "max_order": 10}, noise=[],
                                                      duration_s=2.0)), 0, 0)


def test_snr_measured_from_files_matches_label(tmp_path):
    rec = parse_recipe(small_recipe())
    simulate(rec, 2, tmp_path)
    for e in read_manifest(tmp_path):
        d = tmp_path / e["path"]
        meta = json.loads((d / "scene.json").read_text())
        talk = sum(sf.read(str(d / "sources" / f"{t['name']}.wav"), always_2d=True)[0] for t in meta["talkers"])
        noise = sf.read(str(d / "sources" / "noise.wav"), always_2d=True)[0]
        mask = np.zeros(talk.shape[0], bool)
        for spk, s, dur in read_rttm(d / "reference.rttm"):
            if spk.startswith("talker"):
                mask[int(s * 16000): int((s + dur) * 16000)] = True
        snr = 10 * np.log10(np.mean(talk[mask] ** 2) / np.mean(noise[mask] ** 2))
        assert abs(snr - meta["mix"]["snr_db"]) < 1.0
        # the mix is exactly the sum of what sources/ holds (no clipping in this recipe)
        mix = sf.read(str(d / "mix.wav"), always_2d=True)[0]
        np.testing.assert_allclose(mix, talk + noise, atol=1e-5)


def test_diffuse_noise_coherence_matches_sinc(rng):
    pos = np.array([[0, 0, 0], [0.05, 0, 0], [0.2, 0, 0]], float)
    fs = 16000
    x = diffuse_noise(pos, fs * 30, fs, rng=rng)
    for j, d in ((1, 0.05), (2, 0.2)):
        f, pxy = csd(x[0], x[j], fs, nperseg=512)
        _, pxx = welch(x[0], fs, nperseg=512)
        _, pyy = welch(x[j], fs, nperseg=512)
        coh = np.real(pxy / np.sqrt(pxx * pyy))
        want = spherical_coherence(pos[[0, j]], f)[:, 0, 1]
        band = (f > 100) & (f < 7000)
        assert np.sqrt(np.mean((coh[band] - want[band]) ** 2)) < 0.05


def test_labels_aligned_with_audio():
    """The direct path at the reference mic lags the dry talker by exactly distance/c (pyroomacoustics'
    fractional-delay offset removed), and RTTM onsets match the dry onsets plus the propagation delay."""
    rec = parse_recipe(small_recipe(talkers={"count": 1}, noise=[], room={"rt60_s": 0.3}))
    scene = render_recipe_scene(rec, 3, 0)
    talker = scene.sources[0]
    p = scene.params
    ref_mic = np.array(p["array"]["mics_in_room_m"][0])
    d = np.linalg.norm(talker.trajectory[0] - ref_mic)
    n = talker.dry.size
    xc = np.fft.irfft(np.fft.rfft(talker.direct, 2 * n) * np.conj(np.fft.rfft(talker.dry, 2 * n)), 2 * n)
    lag = int(np.argmax(xc[:2000]))
    assert abs(lag - d / SPEED_OF_SOUND * 16000) <= 1.0
    # RTTM: first labelled onset vs first dry onset shifted by the delay to the array centre
    dist_c = np.linalg.norm(talker.trajectory[0] - np.array(p["array"]["position_m"]))
    first_dry = np.flatnonzero(np.abs(talker.dry) > 1e-4)[0] / 16000
    first_label = scene.segments[0].start_s
    assert abs(first_label - (first_dry + dist_c / SPEED_OF_SOUND)) < 0.012


def test_positions_follow_walking_talker_and_localizer_agrees():
    from farfield.localize import localize
    from farfield.metrics import tracks_per_frame

    rec = parse_recipe(small_recipe(talkers={"count": 1, "walking_prob": 1.0, "walk_speed_mps": 1.0,
                                             "distance_m": [1.5, 2.0]},
                                    conversation={"turn_s": [6.0, 6.0], "gap_s": 0.0}, duration_s=6.0,
                                    array={"profile": "respeaker-6mic-hat"}, noise=[], mix={"snr_db": 30.0}))
    scene = render_recipe_scene(rec, 5, 0)
    rows = [r for r in scene.positions if r[1] == "talker1"]
    t = np.array([r[0] for r in rows])
    az = np.array([r[6] for r in rows])
    assert np.ptp(np.unwrap(np.deg2rad(az))) > np.deg2rad(20)  # it really moved
    res = localize(scene.mix.astype(float), 16000, load_array("respeaker-6mic-hat"))
    times = np.array([f.time_s for f in res.frames])
    est = tracks_per_frame(res.tracks, times)
    active = np.zeros(times.size, bool)
    for g in scene.segments:
        active |= (times >= g.start_s + 0.1) & (times < g.start_s + g.duration_s)
    truth = np.rad2deg(np.interp(times, t, np.unwrap(np.deg2rad(az)))) % 360
    errs = [np.min(np.abs((e - a + 180) % 360 - 180)) for e, a, on in zip(est, truth, active) if on and e.size]
    assert len(errs) > 0.6 * active.sum()
    assert np.median(errs) < 5.0


def test_eval_scores_a_linear_array_where_it_hears_the_talkers(tmp_path):
    """A linear array hears a talker behind it or above it at ``in_front`` of their direction: predictions there
    are perfect, and ones at the talkers' own azimuths are not (they are not where the array can say)."""
    from farfield.evaluate import evaluate_dataset, read_positions
    from farfield.io import write_tracks_csv
    from farfield.track import TrackRow

    rec = parse_recipe(small_recipe(duration_s=3.0, array={"profile": "ps-eye", "height_m": 0.6},
                                    talkers={"count": 2, "distance_m": [0.8, 1.2], "min_separation_deg": 40.0}))
    simulate(rec, 1, tmp_path / "ds")
    d = tmp_path / "ds" / "scene_000000"
    arr = load_array("ps-eye")
    talkers = {n: p for n, p in read_positions(d / "positions.csv").items() if p[0] == "talker"}
    heard = {n: np.array([arr.in_front(a, e) for a, e in zip(az, el)]) for n, (_, _, az, el) in talkers.items()}
    assert max(np.max(azimuth_difference_deg(heard[n], talkers[n][2])) for n in talkers) > 5  # the test can fail
    for label, az_of in (("heard", lambda n: heard[n]), ("raw", lambda n: talkers[n][2])):
        rows = [TrackRow(float(t), k, float(a), 0.0, 0.0) for k, n in enumerate(talkers)
                for t, a in zip(talkers[n][1], az_of(n))]
        write_tracks_csv(sorted(rows, key=lambda r: r.time_s), tmp_path / label / "scene_000000" / "tracks.csv")
    res = evaluate_dataset(tmp_path / "ds", tmp_path / "heard")["summary"]
    assert res["azimuth_mae_deg"] < 0.01 and res["azimuth_recall"] == 1.0
    raw = evaluate_dataset(tmp_path / "ds", tmp_path / "raw")["summary"]
    assert raw["azimuth_mae_deg"] > 1.0 or raw["azimuth_recall"] < 1.0


def test_determinism_same_seed_index_same_audio():
    rec = parse_recipe(small_recipe())
    a = render_recipe_scene(rec, 7, 3)
    b = render_recipe_scene(rec, 7, 3)
    np.testing.assert_array_equal(a.mix, b.mix)
    assert a.params["talkers"] == b.params["talkers"]
    c = render_recipe_scene(rec, 7, 4)
    assert c.mix.shape != a.mix.shape or not np.array_equal(c.mix, a.mix)


def test_parallel_and_resumed_runs_equal_a_clean_serial_run(tmp_path, monkeypatch):
    rec = parse_recipe(small_recipe(duration_s=2.5))
    serial = tmp_path / "serial"
    simulate(rec, 4, serial, seed=2)
    par = tmp_path / "parallel"
    simulate(rec, 4, par, seed=2, workers=2)
    # an interrupted run: scene 2 was being written (hidden temp folder) and the manifest line was torn
    resumed = tmp_path / "resumed"
    simulate(rec, 2, resumed, seed=2)
    (resumed / ".scene_000002.killed").mkdir()
    (resumed / ".scene_000002.killed" / "mix.wav").write_bytes(b"half")
    with open(resumed / "manifest.jsonl", "a") as f:
        f.write('{"scene": "scene_000002", "pa')
    calls = []
    import farfield.sim.dataset as ds

    real = ds._render_and_write
    monkeypatch.setattr(ds, "_render_and_write", lambda *a: calls.append(a[2]) or real(*a))
    written = simulate(rec, 4, resumed, seed=2)
    assert sorted(calls) == [2, 3] and len(written) == 2
    assert not list(resumed.glob(".scene_*"))
    for other in (par, resumed):
        assert [e["index"] for e in read_manifest(other)] == [0, 1, 2, 3]
        for i in range(4):
            x = sf.read(str(serial / f"scene_{i:06d}" / "mix.wav"))[0]
            y = sf.read(str(other / f"scene_{i:06d}" / "mix.wav"))[0]
            np.testing.assert_array_equal(x, y)
    assert simulate(rec, 4, serial, seed=2) == []  # nothing left to do


def test_killed_worker_leaves_no_scene_in_manifest(tmp_path, monkeypatch):
    import farfield.sim.dataset as ds

    rec = parse_recipe(small_recipe(duration_s=2.0))

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ds, "write_rttm", boom)  # dies in the middle of writing scene 0
    with pytest.raises(KeyboardInterrupt):
        simulate(rec, 1, tmp_path)
    assert not (tmp_path / "scene_000000").exists()
    assert not list(tmp_path.glob(".scene_*"))
    assert not (tmp_path / "manifest.jsonl").exists()


@pytest.mark.parametrize("change, message", [
    ({"room": {"size_m": [6.0, 5.0, 3.0], "rt60_s": 0.4, "colour": "red"}}, "unknown key"),
    ({"room": {"size_m": [6.0, 5.0], "rt60_s": 0.4}}, "three values"),
    ({"room": {"size_m": [6.0, 5.0, 3.0], "rt60_s": [0.9, 0.3]}}, "lo <= hi"),
    ({"array": {"wall_margin_m": 3.0}}, "no floor space"),
    ({"array": {"height_m": 3.5}}, "inside the room"),
    ({"talkers": {"count": 0}}, "at least 1 talker"),
    ({"talkers": {"distance_m": [20.0, 30.0]}}, "cannot fit"),
    ({"noise": [{"type": "machine_hum", "position_m": [7.0, 1.0, 1.0]}]}, "outside the room"),
    ({"noise": [{"type": "jackhammer"}]}, "unknown noise type"),
    ({"noise": [{"type": "machine_hum", "rpm": 100.0}]}, "unknown key"),
    ({"noise": [{"type": "recording", "path": "/nonexistent.wav"}]}, "file not found"),
    ({"bogus": 1}, "unknown key"),
])
def test_bad_recipes_are_refused_clearly(change, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(small_recipe(**change))


def test_missing_recipe_name_and_bad_toml(tmp_path):
    with pytest.raises(RecipeError, match="built-in"):
        load_recipe("no_such_recipe")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(bad)


def test_speech_folder_and_recording_noise(tmp_path, rng):
    spk = tmp_path / "speech"
    for name in ("alice", "bob"):
        (spk / name).mkdir(parents=True)
        from farfield.sim.sources import synthetic_speech

        sf.write(str(spk / name / "u1.wav"), synthetic_speech(3.0, 16000, rng=rng), 16000)
    noise = tmp_path / "n.wav"
    sf.write(str(noise), rng.standard_normal(8000) * 0.1, 8000)
    rec = parse_recipe(small_recipe(noise=[{"type": "recording", "path": str(noise)}, {"type": "tv"}]))
    with pytest.warns(UserWarning, match="too few voices"):  # two people in the bank, both in the room
        scene = render_recipe_scene(rec, 0, 0, speech=str(spk))
    speakers = {t["voice"]["speaker"] for t in scene.params["talkers"]}
    assert speakers == {"alice", "bob"}
    kinds = {s.name: s.kind for s in scene.sources}
    assert kinds["playback_tv1"] == "playback" and kinds["recording1"] == "noise"
    assert any(g.speaker == "playback_tv1" for g in scene.segments)
    with pytest.raises(ValueError, match="distinct speakers"):
        render_recipe_scene(parse_recipe(small_recipe(talkers={"count": 3})), 0, 0, speech=str(spk))


def test_tv_voices_are_not_the_talkers(tmp_path, rng):
    """A TV presenter is never one of the people in the room (with a big enough bank), in both banks."""
    from farfield.sim.sources import synthetic_speech

    spk = tmp_path / "speech"
    for name in ("alice", "bob", "carol", "dave"):
        (spk / name).mkdir(parents=True)
        sf.write(str(spk / name / "u1.wav"), synthetic_speech(3.0, 16000, rng=rng), 16000)
    rec = parse_recipe(small_recipe(noise=[{"type": "tv"}], duration_s=2.0))
    for index in range(6):
        scene = render_recipe_scene(rec, 0, index, speech=str(spk))
        talkers = {s.params["voice"]["speaker"] for s in scene.sources if s.kind == "talker"}
        tv = {v["speaker"] for s in scene.sources if s.kind == "playback" for v in s.params["voices"]}
        assert len(talkers) == 2 and tv and not tv & talkers
    bank = EspeakBank()
    for seed in range(40):
        people = bank.voices(3, 16000, np.random.default_rng(seed))
        tv = bank.voices(2, 16000, np.random.default_rng(seed + 1000), exclude=tuple(people))
        assert not {v.key[0].split("+")[1] for v in tv} & {v.key[0].split("+")[1] for v in people}
    small = FolderBank(spk)
    with pytest.warns(UserWarning, match="too few voices"):
        small.voices(2, 16000, rng, exclude=tuple(small.voices(3, 16000, rng)))


def test_every_builtin_noise_type_renders():
    noise = [{"type": t} for t in ("machine_hum", "rotating_machine", "impulsive", "pneumatic", "conveyor",
                                   "robot_self_noise", "background_talkers", "radio")]
    noise += [{"type": "babble", "voices": 3}, {"type": "diffuse", "colour": "brown"}]
    rec = parse_recipe(small_recipe(noise=noise, talkers={"count": 1}, duration_s=3.0,
                                    mix={"gain_mismatch_db": 1.0, "clip_dbfs": -30.0}))
    scene = render_recipe_scene(rec, 0, 0)
    assert np.all(np.isfinite(scene.mix))
    assert scene.params["measured"]["clipped_fraction"] > 0  # clipping was asked for at -30 dBFS
    assert np.max(np.abs(scene.mix)) <= 10 ** (-30 / 20) + 1e-6
    assert len(set(np.round(scene.params["mix"]["gain_mismatch_db"], 6))) == 4


def test_eval_scores_perfect_predictions(tmp_path):
    from farfield.evaluate import evaluate_dataset, read_positions
    from farfield.io import write_rttm, write_tracks_csv
    from farfield.sim.render import Segment
    from farfield.track import TrackRow

    rec = parse_recipe(small_recipe(duration_s=3.0))
    simulate(rec, 1, tmp_path / "ds")
    d = tmp_path / "ds" / "scene_000000"
    pred = tmp_path / "pred" / "scene_000000"
    (pred / "streams").mkdir(parents=True)
    pos = read_positions(d / "positions.csv")
    rows = [TrackRow(float(t), k, float(a), 0.0, 0.0) for k, (name, (kind, ts, az, _)) in enumerate(pos.items())
            if kind == "talker" for t, a in zip(ts, az)]
    write_tracks_csv(sorted(rows, key=lambda r: r.time_s), pred / "tracks.csv")
    for t in ("talker1", "talker2"):
        direct = sf.read(str(d / "sources" / f"{t}.direct.wav"))[0]
        sf.write(str(pred / "streams" / f"{t}.wav"), direct, 16000, subtype="FLOAT")
    write_rttm([Segment(f"spk_{s}", a, b) for s, a, b in read_rttm(d / "reference.rttm")], pred / "diarization.rttm",
               "x")
    res = evaluate_dataset(tmp_path / "ds", tmp_path / "pred")["summary"]
    assert res["azimuth_mae_deg"] < 0.01 and res["azimuth_recall"] == 1.0
    assert res["si_sdri_db"] > 30
    assert res["der"] == 0.0


def test_torch_datasets(tmp_path):
    torch = pytest.importorskip("torch")
    from farfield.sim.torch_data import SceneDataset, SceneStream

    rec = parse_recipe(small_recipe(duration_s=2.0))
    simulate(rec, 2, tmp_path, seed=4)
    ds = SceneDataset(tmp_path)
    item = ds[1]
    assert len(ds) == 2 and item["mix"].dtype == torch.float32
    assert item["images"].shape[:2] == (2, 4) and item["images"].shape[2] == item["mix"].shape[1]
    assert item["direct"].shape == (2, item["mix"].shape[1])
    stream = list(torch.utils.data.DataLoader(SceneStream(rec, seed=4, n_scenes=3), batch_size=None, num_workers=2))
    assert sorted(x["scene"]["index"] for x in stream) == [0, 1, 2]
    on_disk = [x for x in stream if x["scene"]["index"] == 1][0]
    np.testing.assert_allclose(on_disk["mix"].numpy(), item["mix"].numpy(), atol=1e-7)


def test_ray_backend(tmp_path):
    pytest.importorskip("ray")
    rec = parse_recipe(small_recipe(duration_s=2.0))
    simulate(rec, 2, tmp_path / "ray", seed=1, workers=2, backend="ray")
    simulate(rec, 2, tmp_path / "local", seed=1)
    for i in range(2):
        a = sf.read(str(tmp_path / "ray" / f"scene_{i:06d}" / "mix.wav"))[0]
        b = sf.read(str(tmp_path / "local" / f"scene_{i:06d}" / "mix.wav"))[0]
        np.testing.assert_array_equal(a, b)


def test_cli_simulate_and_eval(tmp_path):
    from typer.testing import CliRunner

    from farfield.cli import app

    path = tmp_path / "r.toml"
    path.write_text((pathlib.Path(load_recipe("meeting_room").source).read_text()
                     .replace('duration_s = [20.0, 30.0]', 'duration_s = 2.0')))
    r = CliRunner().invoke(app, ["simulate", str(path), "--scenes", "1", "--out", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["simulate", "no_such", "--scenes", "1", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no recipe file" in r.output
    shutil.copytree(tmp_path / "ds" / "scene_000000", tmp_path / "pred" / "scene_000000")
    pred = tmp_path / "pred" / "scene_000000"
    (pred / "reference.rttm").rename(pred / "diarization.rttm")
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "ds"), "--pred", str(tmp_path / "pred")])
    assert r.exit_code == 0 and "0.0%" in r.output, r.output
