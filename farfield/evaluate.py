"""Score predictions against a simulated dataset's labels (``farfield eval``).

Predictions for scene ``scene_000123`` live in ``PRED/scene_000123/`` in the formats farfield writes:
``tracks.csv`` (localization and tracking), ``diarization.rttm`` (who spoke when) and ``streams/*.wav`` (one
separated mono stream per talker, aligned with ``mix.wav``). Whatever is present is scored:

- tracks: azimuth MAE and recall against every labelled talker and playback source that is active (RTTM) at
  each ``tracks.csv`` time, one-to-one matching within ``threshold_deg``; false tracks per frame. On a linear
  array the truth is where it hears a source (:meth:`~farfield.geometry.ArrayGeometry.in_front`: in front of it,
  at the source's angle from its axis), since it cannot tell the directions with that angle apart.
- streams: SI-SDR improvement over the reference mic (mic 0 of ``mix.wav``) against each talker's direct path at
  the reference mic (``si_sdri_db``; reverberation counts as error, as for ASR) and against its full reverberant
  image there (``si_sdri_image_db``, the usual BSS target); streams are matched to talkers by best SI-SDR
  against the direct path, and a talker without a stream scores 0 dB.
- diarization: DER against the live talkers of ``reference.rttm`` (playback excluded unless asked), with
  ``collar_s`` either side of each reference boundary and overlap scored.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from .geometry import ArrayGeometry
from .io import read_rttm, read_tracks_csv
from .metrics import diarization_error_rate, match_streams, score_doa, si_sdr, tracks_per_frame
from .sim.dataset import read_manifest

PLAYBACK_PREFIX = "playback_"


def read_positions(path: str | Path) -> dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """``positions.csv`` as ``{source: (kind, times_s (T,), azimuth_deg (T,), elevation_deg (T,))}``."""
    out: dict[str, tuple[str, list, list, list]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            k = out.setdefault(row["source"], (row["kind"], [], [], []))
            k[1].append(float(row["time_s"]))
            k[2].append(float(row["azimuth_deg"]))
            k[3].append(float(row["elevation_deg"]))
    return {s: (kind, np.array(t), np.array(a), np.array(e)) for s, (kind, t, a, e) in out.items()}


def heard_azimuths(scene_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{source: (times_s (T,), azimuth_deg (T,))}`` from a scene's ``positions.csv``: where its array hears each
    source (the azimuth; on a linear array :meth:`~farfield.geometry.ArrayGeometry.in_front` of the azimuth and
    elevation)."""
    array = ArrayGeometry(json.loads((scene_dir / "scene.json").read_text())["array"]["positions_m"])
    return {name: (t, array.in_front(az, el))
            for name, (_, t, az, el) in read_positions(scene_dir / "positions.csv").items()}


def _azimuth_at(times: np.ndarray, t: np.ndarray, az: np.ndarray) -> np.ndarray:
    un = np.unwrap(np.deg2rad(az))
    return np.rad2deg(np.interp(times, t, un)) % 360.0


def score_tracks(scene_dir: Path, tracks_csv: Path, threshold_deg: float = 10.0) -> dict:
    """Azimuth scores of one scene's ``tracks.csv``."""
    rows = read_tracks_csv(tracks_csv)
    pos = heard_azimuths(scene_dir)
    segs = read_rttm(scene_dir / "reference.rttm")
    names = sorted({s for s, _, _ in segs if s in pos})
    if not rows:
        times = np.array([s + d / 2 for _, s, d in segs])
    else:
        times = np.unique(np.array([r.time_s for r in rows]))
    true_az = (np.stack([_azimuth_at(times, *pos[n]) for n in names]) if names
               else np.zeros((0, times.size)))
    active = np.zeros((len(names), times.size), dtype=bool)
    for spk, s, d in segs:
        if spk in names:
            active[names.index(spk)] |= (times >= s) & (times < s + d)
    sc = score_doa(times, tracks_per_frame(rows, times), true_az, active, threshold_deg)
    return {"mae_deg": sc.mae_deg, "recall": sc.recall, "false_per_frame": sc.false_per_frame, "frames": sc.n_frames}


def score_streams(scene_dir: Path, streams_dir: Path) -> dict:
    """SI-SDR improvement of one scene's streams over the reference mic."""
    mix, sr = sf.read(str(scene_dir / "mix.wav"), dtype="float64", always_2d=True)
    talkers = sorted(p.stem for p in (scene_dir / "sources").glob("*.wav")
                     if not p.stem.endswith(".direct") and p.stem.startswith("talker"))
    refs = [sf.read(str(scene_dir / "sources" / f"{t}.direct.wav"), dtype="float64")[0] for t in talkers]
    images = [sf.read(str(scene_dir / "sources" / f"{t}.wav"), dtype="float64", always_2d=True)[0][:, 0]
              for t in talkers]
    files = sorted(streams_dir.glob("*.wav"))
    streams = []
    for f in files:
        x, s_sr = sf.read(str(f), dtype="float64", always_2d=True)
        if s_sr != sr or x.shape[0] != mix.shape[0]:
            raise ValueError(f"{f}: stream must match mix.wav ({mix.shape[0]} samples at {sr} Hz), "
                             f"found {x.shape[0]} samples at {s_sr} Hz")
        streams.append(x[:, 0])
    per = {}
    for i, j, v in match_streams(streams, refs):
        base = si_sdr(mix[:, 0], refs[j])
        img = si_sdr(streams[i], images[j]) - si_sdr(mix[:, 0], images[j])
        per[talkers[j]] = {"stream": files[i].name, "si_sdr_db": v, "si_sdr_mix_db": base, "si_sdri_db": v - base,
                           "si_sdri_image_db": img}
    n = max(len(talkers), 1)
    return {"si_sdri_db": sum(p["si_sdri_db"] for p in per.values()) / n,
            "si_sdri_image_db": sum(p["si_sdri_image_db"] for p in per.values()) / n,
            "matched": len(per), "talkers": len(talkers), "per_talker": per}


def score_diarization(scene_dir: Path, rttm: Path, collar_s: float = 0.25, include_playback: bool = False) -> dict:
    """DER of one scene's ``diarization.rttm``."""
    ref = [r for r in read_rttm(scene_dir / "reference.rttm")
           if include_playback or not r[0].startswith(PLAYBACK_PREFIX)]
    d = diarization_error_rate(ref, read_rttm(rttm), collar_s=collar_s)
    return {"der": d.der, "missed": d.missed, "false_alarm": d.false_alarm, "confusion": d.confusion,
            "scored_s": d.total_s}


def evaluate_dataset(dataset_dir: str | Path, pred_dir: str | Path, *, threshold_deg: float = 10.0,
                     collar_s: float = 0.25, include_playback: bool = False) -> dict:
    """Score every scene of ``dataset_dir`` that has predictions in ``pred_dir``.

    Returns ``{"scenes": {name: {...}}, "summary": {...}}``; summary means are over scenes (DER is pooled over
    scored time)."""
    dataset_dir, pred_dir = Path(dataset_dir), Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    scenes, missing = {}, []
    for e in read_manifest(dataset_dir):
        sd, pd = dataset_dir / e["path"], pred_dir / e["scene"]
        r = {}
        if (pd / "tracks.csv").exists():
            r["tracks"] = score_tracks(sd, pd / "tracks.csv", threshold_deg)
        if (pd / "streams").is_dir() and any((pd / "streams").glob("*.wav")):
            r["streams"] = score_streams(sd, pd / "streams")
        if (pd / "diarization.rttm").exists():
            r["diarization"] = score_diarization(sd, pd / "diarization.rttm", collar_s, include_playback)
        if r:
            scenes[e["scene"]] = r
        else:
            missing.append(e["scene"])
    if not scenes:
        raise FileNotFoundError(f"{pred_dir} has no predictions for any scene of {dataset_dir} "
                                f"(expected e.g. {pred_dir / 'scene_000000' / 'tracks.csv'})")
    summ: dict = {"scenes_scored": len(scenes), "scenes_without_predictions": missing}
    tr = [s["tracks"] for s in scenes.values() if "tracks" in s]
    if tr:
        summ["azimuth_mae_deg"] = float(np.nanmean([t["mae_deg"] for t in tr]))
        summ["azimuth_recall"] = float(np.mean([t["recall"] for t in tr]))
        summ["false_tracks_per_frame"] = float(np.mean([t["false_per_frame"] for t in tr]))
    st = [s["streams"] for s in scenes.values() if "streams" in s]
    if st:
        summ["si_sdri_db"] = float(np.mean([s["si_sdri_db"] for s in st]))
        summ["si_sdri_image_db"] = float(np.mean([s["si_sdri_image_db"] for s in st]))
    di = [s["diarization"] for s in scenes.values() if "diarization" in s]
    if di:
        tot = sum(d["scored_s"] for d in di)
        summ["der"] = float(sum(d["der"] * d["scored_s"] for d in di) / max(tot, 1e-9))
    return {"scenes": scenes, "summary": summ}
