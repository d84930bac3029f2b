"""The ``farfield`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="farfield: localize, track, separate and diarize talkers with a microphone array, live or from "
                       "files; simulate labelled rooms to measure it.",
                  no_args_is_help=True, add_completion=False)
console = Console()
ARRAY_HELP = "Built-in profile name (see `farfield arrays`) or a .toml path."


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(2)


def _parse_cue(text: str):
    """``--trigger`` value: ``SECONDS`` (a cue) or ``START-END`` (a wake word), either with ``@AZIMUTH_DEG`` or
    ``@AZIMUTH_DEG/ELEVATION_DEG`` (where the cue saw the person) -> a :class:`~farfield.frontend.Cue`."""
    from .frontend import Cue

    times, _, direction = text.partition("@")
    try:
        parts = [float(v) for v in times.split("-")]
        seen = [float(v) for v in direction.split("/")] if direction else [None]  # "2.5@": no direction given
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or len(seen) > 2:
        raise ValueError(f"--trigger expects SECONDS or START-END (seconds), optionally with @AZIMUTH_DEG or "
                         f"@AZIMUTH_DEG/ELEVATION_DEG, got {text!r}")
    az, el = seen + [None] * (2 - len(seen))
    return Cue(parts[-1], parts[0] if len(parts) == 2 else None, az, el)


@app.command("arrays")
def arrays_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the built-in array profiles and their derived facts."""
    from .geometry import list_arrays, load_array

    facts = [load_array(n).describe() | {"verified": load_array(n).verified} for n in list_arrays()]
    if as_json:
        print(json.dumps(facts, indent=2))
        return
    t = Table(title="built-in array profiles (arrays/*.toml)")
    for col in ("name", "mics", "aperture mm", "aliasing Hz", "rate", "device ch", "mic channels", "verified"):
        t.add_column(col)
    for f in facts:
        t.add_row(f["name"], str(f["n_mics"]), str(f["aperture_mm"]), str(f["spatial_aliasing_hz"]),
                  str(f["sample_rate"] or "-"), str(f["device_channels"] or "-"),
                  ",".join(map(str, f["channels"])), "yes" if f["verified"] else "[yellow]no[/yellow]")
    console.print(t)


STILL_TALKERS_HELP = ("Tracker settings for talkers who stay put (seated meetings, a desk robot): steadier tracks, "
                      "but walking talkers are followed late (farfield.STILL_TALKERS).")
STARTUP_HELP = ("Seconds from the start in which nobody becomes the target by level alone (only by --enroll, "
                "--sector or a cue): a voice heard from the start may be a TV that the playback rules cannot judge "
                "yet; until they have 15 s of history, not a voice heard nearly all the time either. 0 turns both "
                "off (short clips).")


def _tracker_options(still_talkers: bool) -> dict:
    from .track import STILL_TALKERS

    return dict(STILL_TALKERS) if still_talkers else {}


def _localizer_options(method: str, grid: str, max_sources: int, freq_min: float, freq_max: float) -> dict:
    return {"method": method, "grid": grid, "max_sources": max_sources, "freq_range": (freq_min, freq_max)}


def _print_track_summary(rows, title: str = "tracks") -> None:
    from .io import summarize_tracks

    t = Table(title=title)
    for col in ("track", "start s", "end s", "azimuth deg", "spread deg", "elevation deg"):
        t.add_column(col)
    for s in summarize_tracks(rows):
        t.add_row(str(s["track_id"]), f"{s['start_s']:.2f}", f"{s['end_s']:.2f}", f"{s['azimuth_deg']:.1f}",
                  f"{s['azimuth_std_deg']:.1f}", f"{s['elevation_deg']:.1f}")
    console.print(t)


@app.command("localize")
def localize_cmd(
    input: Path = typer.Argument(..., help="Multichannel wav/flac (device channels), or a folder of mono files."),
    array: str = typer.Option(..., "--array", "-a", help=ARRAY_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; tracks.csv is written there."),
    method: str = typer.Option("srp-phat", help="srp-phat, music or normmusic."),
    grid: str = typer.Option("auto", help="auto (circle for planar arrays, the front half circle for linear ones, "
                                          "sphere otherwise), circle, half-circle, sphere or half-sphere."),
    max_sources: int = typer.Option(3, help="Most simultaneous sources per frame."),
    freq_min: float = typer.Option(300.0, help="Lowest frequency used, Hz."),
    freq_max: float = typer.Option(6000.0, help="Highest frequency used, Hz."),
    channels_are_mics: bool = typer.Option(False, help="The file holds only the mics, in profile order."),
    still_talkers: bool = typer.Option(False, help=STILL_TALKERS_HELP),
) -> None:
    """Localize and track sources in a recording; write OUT/tracks.csv
    (time_s,track_id,azimuth_deg,elevation_deg,power_db,cdr_db; one row per active track per frame; cdr_db: the
    coherent-to-diffuse ratio, higher for a nearer source)."""
    from .geometry import ProfileError, load_array
    from .io import mic_signals, read_audio, write_tracks_csv
    from .localize import localize

    try:
        geom = load_array(array)
        rec, sr = read_audio(input)
        x = mic_signals(rec, geom, channels_are_mics=channels_are_mics)
        res = localize(x, sr, geom, tracker_options=_tracker_options(still_talkers),
                       **_localizer_options(method, grid, max_sources, freq_min, freq_max))
    except (ProfileError, ValueError, FileNotFoundError, TypeError) as e:
        _fail(str(e))
    path = write_tracks_csv(res.tracks, out / "tracks.csv")
    _print_track_summary(res.tracks, f"tracks in {input.name} ({geom.name}, {sr} Hz)")
    console.print(f"wrote {path} ({len(res.tracks)} rows, {1 / res.settings['frame_period_s']:.1f} frames/s)")


def _write_diarization(out: Path, segments: list, events: list, target_segments: list, file_id: str) -> None:
    """diarization.rttm, target.rttm and events.jsonl of a run."""
    from .io import write_rttm
    from .sim.render import Segment

    for segs, name in ((segments, "diarization.rttm"), (target_segments, "target.rttm")):
        write_rttm([Segment(g.speaker, g.start_s, g.end_s - g.start_s) for g in segs], out / name, file_id)
    with open(out / "events.jsonl", "w") as f:
        for e in events:
            f.write(json.dumps(e.as_dict()) + "\n")


@app.command("process")
def process_cmd(
    input: Path = typer.Argument(..., help="Multichannel wav/flac (device channels), or a folder of mono files."),
    array: str = typer.Option(..., "--array", "-a", help=ARRAY_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    separation: str = typer.Option("superdirective", help="Beamformer per track: superdirective, mvdr, lcmv, "
                                                           "mask-mvdr, mask-gev or das."),
    channels_are_mics: bool = typer.Option(False, help="The file holds only the mics, in profile order."),
    block_size: int = typer.Option(1024, min=1, help="Samples per block fed to the streaming front end."),
    dereverb: bool = typer.Option(False, help="Online WPE dereverberation before the beamformers (experimental)."),
    postfilter: bool = typer.Option(False, help="Wiener post-filter on each stream against noise, late "
                                    "reverberation and crosstalk (for listening; tends to hurt ASR)."),
    diarize: bool = typer.Option(True, help="Diarize the streams and choose the target speaker (writes "
                                 "diarization.rttm, target.rttm, events.jsonl)."),
    embeddings: bool = typer.Option(True, help="Use voice embeddings (torch + resemblyzer); --no-embeddings "
                                    "labels one speaker per track."),
    vad: str = typer.Option("auto", help="VAD per stream: auto (Silero when torch is installed), silero, energy."),
    enroll: list[str] = typer.Option([], help="NAME=FILE: label this person NAME (repeatable)."),
    sector: Optional[str] = typer.Option(None, help="Target policy: CENTRE_DEG,HALF_WIDTH_DEG direction sector "
                                         "(only its most central talker: a person at its edge is not the target "
                                         "while the person in front has spoken in the last 30 s)."),
    trigger: list[str] = typer.Option([], help="SECONDS: an external cue (gaze, button) at this time of the input; "
                                      "the target locks on whoever starts speaking next, while they speak within 10 "
                                      "deg of where they spoke first. START-END (seconds): a wake word heard then; the "
                                      "target locks on whoever said it (heard starting by 0.2 s after its end), in the "
                                      "same way. Either with @AZIMUTH_DEG "
                                      "(where the cue saw the person, e.g. 12.5@90): only a talker within 20 deg of "
                                      "it; @AZIMUTH_DEG/ELEVATION_DEG (e.g. 12.5@90/30) also says how high they are "
                                      "(a linear array hears a raised person nearer its front). Repeatable. With cues, "
                                      "nobody is the target outside a lock."),
    startup: float = typer.Option(5.0, min=0.0, help=STARTUP_HELP),
    still_talkers: bool = typer.Option(False, help=STILL_TALKERS_HELP),
) -> None:
    """Localize, track, separate and diarize: OUT/tracks.csv, OUT/streams/<track_id>.wav (mono, same rate and
    length as the input, aligned with it), OUT/target.wav (the target speaker's stream), OUT/diarization.rttm,
    OUT/target.rttm, OUT/events.jsonl and OUT/summary.json (settings, latency, real-time factor)."""
    import soundfile as sf

    from .frontend import process
    from .geometry import ProfileError, load_array
    from .io import mic_signals, read_audio, write_tracks_csv

    try:
        geom = load_array(array)
        rec, sr = read_audio(input)
        x = mic_signals(rec, geom, channels_are_mics=channels_are_mics)
        extra = {}
        if diarize:
            from .diarize import OnlineDiarizer
            from .target import TargetSelector

            dia = OnlineDiarizer(sr, embeddings=embeddings, vad=vad)
            names = []
            for item in enroll:
                name, _, path = item.partition("=")
                if not path:
                    raise ValueError(f"--enroll expects NAME=FILE, got {item!r}")
                audio, esr = sf.read(path, dtype="float64", always_2d=True)
                dia.enroll(name, audio[:, 0], esr)
                names.append(name)
            sec = None
            if sector:
                try:
                    sec = tuple(float(v) for v in sector.split(","))
                    assert len(sec) == 2
                except (ValueError, AssertionError):
                    raise ValueError(f"--sector expects CENTRE_DEG,HALF_WIDTH_DEG, got {sector!r}") from None
            extra = {"diarizer": dia, "target": TargetSelector(enrolled=names, sector=sec,
                                                               require_trigger=bool(trigger), startup_s=startup)}
        if trigger and not diarize:
            raise ValueError("--trigger needs diarization (the target policy that takes cues runs on its labels); "
                             "drop --no-diarize")
        res = process(x, sr, geom, separation=separation, block_size=block_size, dereverb=dereverb,
                      separator_options={"postfilter": postfilter}, triggers=[_parse_cue(c) for c in trigger],
                      tracker_options=_tracker_options(still_talkers), **extra)
    except (ProfileError, ValueError, FileNotFoundError, TypeError, ImportError, RuntimeError) as e:
        _fail(str(e))
    (out / "streams").mkdir(parents=True, exist_ok=True)
    write_tracks_csv(res.tracks, out / "tracks.csv")
    for tid, y in res.streams.items():
        sf.write(str(out / "streams" / f"{tid}.wav"), y.astype(np.float32), sr, subtype="FLOAT")
    sf.write(str(out / "target.wav"), res.target.astype(np.float32), sr, subtype="FLOAT")
    if diarize:
        _write_diarization(out, res.segments, res.events, res.target_segments, Path(input).stem)
    summary = {"input": str(input), "array": geom.name, "sample_rate": sr, "samples": int(x.shape[1]),
               "streams": sorted(int(t) for t in res.streams), "latency_samples": res.latency_samples,
               "latency_ms": 1000.0 * res.latency_samples / sr, "real_time_factor": res.real_time_factor,
               "settings": res.settings}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    _print_track_summary(res.tracks, f"tracks in {input.name} ({geom.name}, {sr} Hz)")
    console.print(f"wrote {out / 'tracks.csv'}, {len(res.streams)} stream(s) in {out / 'streams'}, "
                  f"{out / 'summary.json'} (latency {summary['latency_ms']:.0f} ms, real-time factor "
                  f"{res.real_time_factor:.2f})")
    if diarize and not res.target_segments and not (enroll or sector or trigger) and x.shape[1] / sr <= startup:
        console.print(f"no target: nobody is chosen by level alone in the first {startup:g} s (--startup; the input "
                      f"is {x.shape[1] / sr:.1f} s long); pass --startup 0 for a short clip")


@app.command("devices")
def devices_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List audio input devices, their channel counts and the array profiles that match them."""
    from .capture import list_input_devices

    try:
        devs = list_input_devices()
    except RuntimeError as e:
        console.print(f"[yellow]no audio input devices: {e}[/yellow]")
        console.print("Nothing to list here (no audio hardware, e.g. CI). Replay a recording instead: "
                      "farfield listen --array NAME --replay FILE")
        raise typer.Exit(0)
    if as_json:
        print(json.dumps(devs, indent=2))
        return
    if not devs:
        console.print("[yellow]no audio input devices found[/yellow]")
        return
    t = Table(title="audio input devices")
    for col in ("index", "name", "channels", "default Hz", "matching profiles"):
        t.add_column(col)
    for d in devs:
        t.add_row(str(d["index"]), d["name"], str(d["channels"]), f"{d['default_samplerate']:.0f}",
                  ", ".join(d["profiles"]) or "-")
    console.print(t)


@app.command("listen")
def listen_cmd(
    array: str = typer.Option(..., "--array", "-a", help=ARRAY_HELP),
    device: Optional[str] = typer.Option(None, help="Input device index or name part (default: matched by the "
                                         "profile's device_pattern, else the system default)."),
    replay: Optional[Path] = typer.Option(None, help="Replay this recording as if live instead of a device."),
    realtime: bool = typer.Option(True, help="With --replay: pace to real time (--no-realtime: as fast as "
                                  "possible)."),
    sample_rate: int = typer.Option(16000, help="Pipeline sample rate (the device is resampled to it)."),
    seconds: Optional[float] = typer.Option(None, help="Stop after this much audio (default: until Ctrl-C or "
                                            "the end of the replay)."),
    out: Optional[Path] = typer.Option(None, help="Write tracks.csv, streams/<id>.wav, target.wav and "
                                       "summary.json here on exit."),
    separation: str = typer.Option("superdirective", help="Beamformer per track."),
    diarize: bool = typer.Option(False, help="Label speakers (VAD + embeddings per stream) and choose the target "
                                 "speaker; also writes diarization.rttm, target.rttm and events.jsonl (the whole "
                                 "chain then takes about 0.3 of a core: benchmarks/results/diarization.txt)."),
    embeddings: bool = typer.Option(True, help="With --diarize: voice embeddings (torch + resemblyzer)."),
    startup: float = typer.Option(5.0, min=0.0, help="With --diarize: " + STARTUP_HELP),
    still_talkers: bool = typer.Option(False, help=STILL_TALKERS_HELP),
) -> None:
    """Live view of the tracked talkers (direction, level, speaker, target, dropped blocks) from an array or a
    replay; on exit (end of replay, --seconds or Ctrl-C) writes the same files as `farfield process`."""
    import time

    import soundfile as sf
    from rich.live import Live

    from .capture import DeviceSource, FileReplaySource
    from .frontend import Frontend, place
    from .geometry import ProfileError, load_array
    from .io import write_tracks_csv

    try:
        geom = load_array(array)
        src = (FileReplaySource(replay, geom, sample_rate=sample_rate, realtime=realtime) if replay is not None
               else DeviceSource(geom, device=device, sample_rate=sample_rate))
    except (ProfileError, ValueError, FileNotFoundError, RuntimeError) as e:
        _fail(str(e))
    dia = policy = None
    if diarize:
        from .diarize import OnlineDiarizer
        from .target import TargetSelector

        dia, policy = OnlineDiarizer(sample_rate, embeddings=embeddings), TargetSelector(startup_s=startup)
    fe = Frontend(geom, sample_rate, separation=separation, diarizer=dia, target=policy,
                  tracker_options=_tracker_options(still_talkers))
    rows, latest, n = [], {}, 0
    segments, events = [], []
    streams: dict[int, list] = {}
    target: list[np.ndarray] = []
    t0 = time.perf_counter()

    def view() -> Table:
        t = Table(title=f"farfield listen: {geom.name} @ {sample_rate} Hz, {n / sample_rate:.1f} s, "
                        f"target {fe.target_id if fe.target_id is not None else '-'}")
        for col in ("track", "azimuth deg", "elevation deg", "level dB", "speaking", "target"):
            t.add_column(col)
        speaking = dia.speaking_tracks() if dia else {}
        for tid, r in sorted(latest.items()):
            t.add_row(str(tid), f"{r.azimuth_deg:.0f}", f"{r.elevation_deg:.0f}", f"{r.power_db:.1f}",
                      (speaking.get(tid, "-") or "(unlabelled)") if dia else "", "<-" if tid == fe.target_id else "")
        st = src.stats
        t.caption = (f"blocks {st.blocks_out}, dropped {st.overflows} ({st.dropped_samples} samples), device "
                     f"overflows {st.device_overflows}, waits {st.underruns}, load "
                     f"{(time.perf_counter() - t0) / max(n / sample_rate, 1e-9):.2f} x real time")
        return t

    try:
        with src, Live(view(), console=console, refresh_per_second=8) as live:
            for block in fe.stream(src):
                n = fe.stft.frames_done * fe.stft.hop_size
                rows += block.tracks
                segments += block.segments
                events += block.events
                if block.tracks:
                    last_t = block.tracks[-1].time_s
                    latest = {r.track_id: r for r in block.tracks if r.time_s == last_t}
                if out is not None:
                    for tid, chunks in block.streams.items():
                        streams.setdefault(tid, []).extend(chunks)
                    if block.target is not None:
                        target.append(block.target[1])
                live.update(view())
                if seconds is not None and n >= seconds * sample_rate:
                    break
    except KeyboardInterrupt:
        console.print("stopped")
    st = src.stats
    console.print(f"{n / sample_rate:.1f} s processed; dropped blocks {st.overflows}, device overflows "
                  f"{st.device_overflows}")
    if out is not None:
        (out / "streams").mkdir(parents=True, exist_ok=True)
        write_tracks_csv(rows, out / "tracks.csv")
        for tid, chunks in streams.items():
            buf = np.zeros(n)
            for start, a in chunks:
                place(buf, start, a)
            sf.write(str(out / "streams" / f"{tid}.wav"), buf.astype(np.float32), sample_rate, subtype="FLOAT")
        tgt = np.concatenate(target)[fe.latency_samples:][:n] if target else np.zeros(0)
        sf.write(str(out / "target.wav"), np.pad(tgt, (0, n - tgt.size)).astype(np.float32), sample_rate,
                 subtype="FLOAT")
        if dia is not None:
            from .frontend import target_segments

            more, ev = dia.flush(n / sample_rate)
            final = [dia.final_label(g) for g in segments + more]  # names of tracks identified later
            _write_diarization(out, final, sorted(events + ev, key=lambda e: e.time_s),
                               target_segments(final, events + ev, n / sample_rate), "live")
        (out / "summary.json").write_text(json.dumps({"array": geom.name, "sample_rate": sample_rate,
                                                      "samples": n, "latency_samples": fe.latency_samples,
                                                      "capture": st.as_dict()}, indent=1))
        console.print(f"wrote {out}")


@app.command("demo")
def demo_cmd(
    array: str = typer.Option("respeaker-6mic-hat", "--array", "-a", help="Profile name or .toml path."),
    talkers: int = typer.Option(2, min=1, max=4, help="Number of simultaneous talkers."),
    rt60: float = typer.Option(0.4, help="Reverberation time, seconds."),
    snr: float = typer.Option(15.0, help="Signal-to-diffuse-noise ratio, dB."),
    duration: float = typer.Option(6.0, help="Length of the scene, seconds."),
    seed: int = typer.Option(0, help="Random seed (positions, signals, noise)."),
    speech_dir: Optional[Path] = typer.Option(None, help="Folder of mono speech files to use instead of the "
                                              "built-in synthetic speech."),
    out: Optional[Path] = typer.Option(None, help="Also write mix.wav and tracks.csv here."),
) -> None:
    """Simulate a small reverberant room (pyroomacoustics), localize and track, and print true vs
    estimated directions."""
    import soundfile as sf

    from .geometry import ProfileError, load_array
    from .io import summarize_tracks, write_tracks_csv
    from .localize import localize
    from .metrics import activity_at, score_doa, tracks_per_frame
    from .sim import SourceSpec, render_scene, synthetic_speech

    rng = np.random.default_rng(seed)
    try:
        geom = load_array(array)
    except ProfileError as e:
        _fail(str(e))
    sr = 16000
    room = np.array([6.0, 5.0, 3.0])
    centre = np.array([3.0, 2.5, 1.0])
    signals = []
    if speech_dir is not None:
        from .io import AUDIO_SUFFIXES

        files = sorted(f for f in Path(speech_dir).iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
        if len(files) < talkers:
            _fail(f"{speech_dir} has {len(files)} audio files, need at least {talkers}")
        for f in rng.choice(files, talkers, replace=False):
            x, fs = sf.read(str(f), dtype="float64", always_2d=True)
            if fs != sr:
                from scipy.signal import resample_poly

                x = resample_poly(x, sr, fs, axis=0)
            sig = np.resize(x[:, 0], int(duration * sr))
            signals.append(sig)
    else:
        for k in range(talkers):
            signals.append(synthetic_speech(duration, sr, f0_hz=rng.uniform(90, 230), rng=rng))
    base = rng.uniform(0, 360)
    sources = []
    for k, sig in enumerate(signals):
        az = np.deg2rad(base + k * 360.0 / talkers + rng.uniform(-20, 20))
        dist = rng.uniform(1.0, 2.0)
        pos = centre + np.array([dist * np.cos(az), dist * np.sin(az), rng.uniform(0.3, 0.7)])
        sources.append(SourceSpec(sig, tuple(np.clip(pos, 0.3, room - 0.3)), name=f"talker{k + 1}"))
    sc = render_scene(geom, sources, sr, room_dim=room, rt60_s=rt60, array_position=centre, snr_db=snr,
                      duration_s=duration, rng=rng)
    res = localize(sc.mix, sr, geom)
    times = np.array([f.time_s for f in res.frames])
    act = activity_at(sc.activity, times, sr)
    # where the array hears each talker: their azimuth; in front of a linear array, at their angle from its axis
    heard = geom.in_front(sc.azimuth_deg, sc.elevation_deg)
    scores = score_doa(times, tracks_per_frame(res.tracks, times), np.repeat(heard[:, None], len(times), axis=1), act)
    summ = summarize_tracks(res.tracks)
    t = Table(title=f"{geom.name}: {talkers} talker(s), RT60 {rt60} s, SNR {snr} dB, seed {seed}")
    columns = ["talker", "true az", "true el"] + (["heard az"] if geom.is_linear else [])
    for col in columns + ["dist m", "track", "est az", "est el", "error deg"]:
        t.add_column(col)
    from .geometry import azimuth_difference_deg

    for k in range(talkers):
        truth = [f"talker{k + 1}", f"{sc.azimuth_deg[k]:.1f}", f"{sc.elevation_deg[k]:.1f}"]
        truth += [f"{heard[k]:.1f}"] if geom.is_linear else []
        truth += [f"{sc.distance_m[k]:.2f}"]
        best = min(summ, key=lambda s: azimuth_difference_deg(s["azimuth_deg"], heard[k]), default=None)
        if best is None or azimuth_difference_deg(best["azimuth_deg"], heard[k]) > 20:
            t.add_row(*truth, "-", "-", "-", "not found")
            continue
        err = azimuth_difference_deg(best["azimuth_deg"], heard[k])
        t.add_row(*truth, str(best["track_id"]), f"{best['azimuth_deg']:.1f}", f"{best['elevation_deg']:.1f}",
                  f"{err:.1f}")
    console.print(t)
    console.print(f"per-frame: azimuth MAE {scores.mae_deg:.1f} deg, recall {scores.recall:.0%} "
                  f"(track within 10 deg of an active talker), {scores.false_per_frame:.2f} unmatched tracks/frame, "
                  f"{len(summ)} track id(s)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        sf.write(str(out / "mix.wav"), (sc.mix / max(1.0, np.abs(sc.mix).max())).T, sr)
        write_tracks_csv(res.tracks, out / "tracks.csv")
        console.print(f"wrote {out / 'mix.wav'} and {out / 'tracks.csv'}")


@app.command("recipes")
def recipes_cmd() -> None:
    """List the built-in scene recipes (simulations/*.toml)."""
    from .sim.recipe import list_recipes, load_recipe

    t = Table(title="built-in scene recipes")
    for col in ("name", "talkers", "RT60 s", "SNR dB", "description"):
        t.add_column(col)
    for n in list_recipes():
        r = load_recipe(n).spec
        t.add_row(n, str(r["talkers"]["count"]), str(r["room"]["rt60_s"]), str(r["mix"]["snr_db"]), r["description"])
    console.print(t)


@app.command("simulate")
def simulate_cmd(
    recipe: str = typer.Argument(..., help="Built-in recipe name (see `farfield recipes`) or a recipe .toml path."),
    scenes: int = typer.Option(..., "--scenes", "-n", min=1, help="Number of scenes."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder (scene folders + manifest.jsonl)."),
    seed: int = typer.Option(0, help="Dataset seed; scene i depends only on (seed, i)."),
    start: int = typer.Option(0, help="Index of the first scene (to extend a dataset or split work)."),
    workers: int = typer.Option(1, min=1, help="Parallel worker processes (or Ray tasks in flight)."),
    backend: str = typer.Option("process", help="process (local pool) or ray."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (auto, ray://host:10001); "
                                          "default starts a local Ray."),
    speech: Optional[Path] = typer.Option(None, help="Folder of speech recordings (e.g. LibriSpeech) instead of "
                                          "the recipe's talkers.speech (built-in espeak-ng voices by default)."),
) -> None:
    """Render simulated scenes with exact labels into OUT; an interrupted run resumes where it stopped."""
    import warnings

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .sim.dataset import simulate
    from .sim.recipe import RecipeError, load_recipe
    from .sim.render import SceneError

    try:
        rec = load_recipe(recipe)
    except RecipeError as e:
        _fail(str(e))
    with Progress(TextColumn(f"[bold]{rec.name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task("scenes", total=scenes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                written = simulate(rec, scenes, out, seed=seed, start=start, workers=workers, backend=backend,
                                   address=address, speech=str(speech) if speech else None,
                                   progress=lambda done, total: bar.update(task, completed=done))
        except (RecipeError, SceneError, ValueError, FileNotFoundError, ImportError) as e:
            _fail(str(e))
    console.print(f"{len(written)} scene(s) rendered, {scenes - len(written)} already there; "
                  f"dataset in {out} ({out / 'manifest.jsonl'})")


@app.command("eval")
def eval_cmd(
    dataset: Path = typer.Argument(..., help="Dataset folder written by `farfield simulate`."),
    pred: Path = typer.Option(..., "--pred", "-p", help="Predictions: PRED/<scene>/tracks.csv, diarization.rttm, "
                              "streams/*.wav."),
    threshold: float = typer.Option(10.0, help="Azimuth error (deg) within which a track finds a source."),
    collar: float = typer.Option(0.25, help="DER collar (s) either side of reference boundaries."),
    include_playback: bool = typer.Option(False, help="Score TV/radio playback as speakers in the DER."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write all per-scene scores here."),
) -> None:
    """Score predictions against a simulated dataset: azimuth MAE/recall, SI-SDR improvement, DER."""
    from .evaluate import evaluate_dataset

    try:
        res = evaluate_dataset(dataset, pred, threshold_deg=threshold, collar_s=collar,
                               include_playback=include_playback)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    t = Table(title=f"{pred} vs {dataset}")
    for col in ("scene", "az MAE deg", "recall", "false/frame", "SI-SDRi dB (direct/image)", "DER"):
        t.add_column(col)

    def f(x, fmt):
        return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, fmt)

    for name, r in res["scenes"].items():
        tr, st, di = r.get("tracks", {}), r.get("streams", {}), r.get("diarization", {})
        t.add_row(name, f(tr.get("mae_deg"), ".1f"), f(tr.get("recall"), ".2f"), f(tr.get("false_per_frame"), ".2f"),
                  f(st.get("si_sdri_db"), ".1f") + " / " + f(st.get("si_sdri_image_db"), ".1f"),
                  f(di.get("der"), ".1%"))
    s = res["summary"]
    t.add_row("[bold]all", f(s.get("azimuth_mae_deg"), ".1f"), f(s.get("azimuth_recall"), ".2f"),
              f(s.get("false_tracks_per_frame"), ".2f"),
              f(s.get("si_sdri_db"), ".1f") + " / " + f(s.get("si_sdri_image_db"), ".1f"), f(s.get("der"), ".1%"))
    console.print(t)
    if s["scenes_without_predictions"]:
        console.print(f"[yellow]{len(s['scenes_without_predictions'])} scene(s) had no predictions[/yellow]")
    if json_out is not None:
        json_out.write_text(json.dumps(res, indent=1, default=float))
        console.print(f"wrote {json_out}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
