"""Reading recordings; writing and reading results (tracks.csv, RTTM)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from .geometry import ArrayGeometry
from .track import TRACKS_CSV_HEADER, TrackRow

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a multichannel file, or a folder of equally long mono files (taken in natural name order).

    Returns ``(signals (channels, samples) float64, sample_rate)``.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted((f for f in p.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES), key=_natural_key)
        if not files:
            raise FileNotFoundError(f"{p} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
        chans, rates = [], set()
        for f in files:
            x, sr = sf.read(str(f), dtype="float64", always_2d=True)
            chans.append(x.T)
            rates.add(sr)
        if len(rates) != 1:
            raise ValueError(f"files in {p} have different sample rates: {sorted(rates)}")
        lengths = {c.shape[1] for c in chans}
        if len(lengths) != 1:
            raise ValueError(f"files in {p} have different lengths: {sorted(lengths)} samples")
        return np.concatenate(chans, axis=0), rates.pop()
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    try:
        x, sr = sf.read(str(p), dtype="float64", always_2d=True)
    except RuntimeError as e:
        raise ValueError(f"cannot read {p} as audio: {e}") from None
    return np.ascontiguousarray(x.T), int(sr)


def mic_signals(recording: np.ndarray, array: ArrayGeometry, *, channels_are_mics: bool = False) -> np.ndarray:
    """The array's mic channels ``(n_mics, samples)`` from a device recording ``(channels, samples)``.

    A recording holds the device's channels, numbered as the profile's ``channel`` keys. With
    ``channels_are_mics`` the recording holds exactly the mics, in profile order.
    """
    if channels_are_mics:
        if recording.shape[0] != array.n_mics:
            raise ValueError(f"the recording has {recording.shape[0]} channels, expected {array.n_mics} "
                             f"(one per mic of '{array.name}')")
        return recording
    return array.select_channels(recording)


def write_tracks_csv(rows: list[TrackRow], path: str | Path) -> Path:
    """Write ``time_s,track_id,azimuth_deg,elevation_deg,power_db,cdr_db`` rows (``cdr_db`` empty where unknown)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="") as fh:
        fh.write(TRACKS_CSV_HEADER + "\n")
        for r in rows:
            cdr = "" if math.isnan(r.cdr_db) else f"{r.cdr_db:.2f}"
            fh.write(f"{r.time_s:.4f},{r.track_id},{r.azimuth_deg:.2f},{r.elevation_deg:.2f},{r.power_db:.2f},{cdr}\n")
    return p


def read_tracks_csv(path: str | Path) -> list[TrackRow]:
    """Read a ``tracks.csv`` written by :func:`write_tracks_csv` (or any tool using its columns; ``cdr_db`` may be
    missing or empty: NaN)."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(TRACKS_CSV_HEADER.split(",")) - {"cdr_db"} - set(reader.fieldnames or [])  # cdr_db: optional
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected {TRACKS_CSV_HEADER}")
        return [TrackRow(float(r["time_s"]), int(r["track_id"]), float(r["azimuth_deg"]),
                         float(r["elevation_deg"]), float(r["power_db"]), True,
                         float(r.get("cdr_db") or "nan")) for r in reader]


def summarize_tracks(rows: list[TrackRow]) -> list[dict]:
    """Per track id: first/last time, number of rows, circular-mean azimuth, median elevation, azimuth spread."""
    by_id: dict[int, list[TrackRow]] = {}
    for r in rows:
        by_id.setdefault(r.track_id, []).append(r)
    out = []
    for tid, rs in sorted(by_id.items()):
        az = np.deg2rad([r.azimuth_deg for r in rs])
        mean = np.angle(np.mean(np.exp(1j * az)))
        dev = np.rad2deg(np.angle(np.exp(1j * (az - mean))))
        out.append({"track_id": tid, "start_s": rs[0].time_s, "end_s": rs[-1].time_s, "rows": len(rs),
                    "azimuth_deg": float(np.rad2deg(mean) % 360), "azimuth_std_deg": float(np.std(dev)),
                    "elevation_deg": float(np.median([r.elevation_deg for r in rs]))})
    return out


def write_rttm(segments, path: str | Path, file_id: str) -> Path:
    """Write speaker segments (objects with ``speaker``, ``start_s``, ``duration_s``) as standard RTTM:
    ``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``."""
    path = Path(path)
    with open(path, "w") as f:
        for s in sorted(segments, key=lambda s: (s.start_s, s.speaker)):
            f.write(f"SPEAKER {file_id} 1 {s.start_s:.3f} {s.duration_s:.3f} <NA> <NA> {s.speaker} <NA> <NA>\n")
    return path


def read_rttm(path: str | Path) -> list[tuple[str, float, float]]:
    """Read an RTTM file's SPEAKER lines as ``(speaker, start_s, duration_s)``."""
    out = []
    for k, line in enumerate(Path(path).read_text().splitlines()):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        if len(parts) < 8:
            raise ValueError(f"{path}: line {k + 1} is not an RTTM SPEAKER line: {line!r}")
        try:
            start, dur = float(parts[3]), float(parts[4])
        except ValueError:
            raise ValueError(f"{path}: line {k + 1}: start/duration are not numbers: {line!r}") from None
        if dur < 0:
            raise ValueError(f"{path}: line {k + 1}: negative duration {dur}")
        out.append((parts[7], start, dur))
    return out
