import json

import numpy as np
import soundfile as sf
from conftest import plane_wave
from typer.testing import CliRunner

import farfield as ff
from farfield.cli import app
from farfield.io import read_tracks_csv

runner = CliRunner()


def test_help_for_every_command():
    for cmd in ([], ["arrays"], ["localize"], ["process"], ["devices"], ["listen"], ["demo"], ["recipes"],
                ["simulate"], ["eval"]):
        r = runner.invoke(app, cmd + ["--help"])
        assert r.exit_code == 0 and "Usage" in r.output


def test_arrays_lists_profiles():
    r = runner.invoke(app, ["arrays", "--json"])
    assert r.exit_code == 0
    assert "respeaker-usb-4mic" in r.output and "azure-kinect" in r.output


def test_localize_writes_tracks_csv(tmp_path, rng):
    arr = ff.load_array("respeaker-usb-4mic")  # device has 6 channels, mics on 1..4
    sr = 16000
    mics = plane_wave(arr, 250, 0, 2 * sr, sr, rng) * 0.1
    rec = np.zeros((6, mics.shape[1]))
    rec[1:5] = mics
    rec[0] = 0.3 * rng.standard_normal(mics.shape[1])  # the processed channel must be ignored
    wav = tmp_path / "in.wav"
    sf.write(str(wav), rec.T, sr)
    r = runner.invoke(app, ["localize", str(wav), "--array", "respeaker-usb-4mic", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    rows = read_tracks_csv(tmp_path / "o" / "tracks.csv")
    assert rows and {x.track_id for x in rows} == {1}
    assert all(abs(((x.azimuth_deg - 250) + 180) % 360 - 180) < 5 for x in rows)
    times = sorted({x.time_s for x in rows})
    assert np.median(np.diff(times)) <= 0.1  # at least 10 frames per second
    assert all(x.cdr_db > 20 for x in rows)  # a plane wave in no noise: all of it coherent
    # a tracks.csv from before the cdr_db column still reads, with NaN for it
    old = tmp_path / "old.csv"
    old.write_text("time_s,track_id,azimuth_deg,elevation_deg,power_db\n0.5,1,250.00,0.00,-30.00\n")
    (row,) = read_tracks_csv(old)
    assert row.track_id == 1 and np.isnan(row.cdr_db)


def test_still_talkers_reaches_the_tracker(tmp_path, rng, monkeypatch):
    """--still-talkers gives the tracker farfield.STILL_TALKERS (localize, process, listen), and process's
    summary.json says so."""
    from farfield.track import Tracker

    made = []
    init = Tracker.__init__

    def spy(self, **kw):
        made.append(kw)
        init(self, **kw)

    monkeypatch.setattr(Tracker, "__init__", spy)
    arr = ff.load_array("respeaker-6mic-hat")
    sr = 16000
    wav = tmp_path / "in.wav"
    sf.write(str(wav), (plane_wave(arr, 60, 0, 2 * sr, sr, rng) * 0.1).T, sr)
    file_args = [str(wav), "--array", arr.name, "--channels-are-mics"]
    for cmd, args in (("localize", file_args), ("process", [*file_args, "--no-diarize"]),
                      ("listen", ["--array", arr.name, "--replay", str(wav), "--no-realtime"])):
        for flag in ([], ["--still-talkers"]):
            out = tmp_path / f"{cmd}{len(flag)}"
            r = runner.invoke(app, [cmd, *args, "--out", str(out), *flag])
            assert r.exit_code == 0, r.output
            assert all((made[-1].get(k) == v) == bool(flag) for k, v in ff.STILL_TALKERS.items()), made[-1]
    settings = json.loads((tmp_path / "process1" / "summary.json").read_text())["settings"]
    assert settings["tracker_options"] == ff.STILL_TALKERS


def test_localize_errors_are_clear(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(str(wav), np.zeros((1000, 2)), 16000)
    r = runner.invoke(app, ["localize", str(wav), "--array", "respeaker-6mic-hat", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "only 2 channel" in r.output
    r = runner.invoke(app, ["localize", str(wav), "--array", "nope", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "no array profile named" in r.output
    r = runner.invoke(app, ["localize", str(tmp_path / "missing.wav"), "--array", "ps-eye", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "not found" in r.output


def test_demo_runs_on_builtin_default(tmp_path):
    r = runner.invoke(app, ["demo", "--duration", "3", "--rt60", "0.3", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "talker1" in r.output and "recall" in r.output
    assert (tmp_path / "tracks.csv").exists() and (tmp_path / "mix.wav").exists()


def test_process_writes_streams_diarization_and_takes_cues(tmp_path, rng):
    arr = ff.load_array("respeaker-6mic-hat")
    sr = 16000
    x = plane_wave(arr, 120, 0, 3 * sr, sr, rng) * 0.1
    x[:, : sr // 2] *= 0.01
    wav = tmp_path / "in.wav"
    sf.write(str(wav), x.T, sr)
    out = tmp_path / "out"
    args = ["process", str(wav), "--array", "respeaker-6mic-hat", "--out", str(out), "--channels-are-mics",
            "--no-embeddings", "--vad", "energy"]
    r = runner.invoke(app, args + ["--trigger", "0.5-0.9"])
    assert r.exit_code == 0, r.output
    for name in ("tracks.csv", "target.wav", "diarization.rttm", "target.rttm", "events.jsonl", "summary.json"):
        assert (out / name).exists(), name
    assert list((out / "streams").glob("*.wav"))
    r = runner.invoke(app, args + ["--trigger", "soon"])
    assert r.exit_code == 2 and "SECONDS or START-END" in r.output
    r = runner.invoke(app, args + ["--trigger", "0.9-0.5"])
    assert r.exit_code == 2 and "start <= end" in r.output
    # a cue that says where it saw the person: a lock where the source is, none elsewhere
    for cue, locked in (("0.2@120", True), ("0.2@300", False), ("0.2", True)):
        r = runner.invoke(app, args + ["--trigger", cue])
        assert r.exit_code == 0, r.output
        assert bool((out / "target.rttm").read_text().strip()) == locked, cue
    # no cue, no enrolment, no sector: the nearest talker, but not in the first --startup seconds (a 3 s input)
    for startup, chosen in (("5", False), ("0", True)):
        r = runner.invoke(app, args + ["--startup", startup])
        assert r.exit_code == 0, r.output
        assert bool((out / "target.rttm").read_text().strip()) == chosen, startup
        assert ("pass --startup 0 for a short clip" in r.output) != chosen
        assert json.loads((out / "summary.json").read_text())["settings"]["target_startup_s"] == float(startup)
