"""farfield on the real recordings in ../shared/data: the MC-WSJ-AV 8-channel circular array and the speechbrain
4-channel peer test case. Prints the tracks found and their spread.

Usage: python benchmarks/real_recordings.py [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

import farfield as ff
from farfield.geometry import azimuth_difference_deg
from farfield.io import read_audio, summarize_tracks
from _report import emit
from scenes import DATA

# channel order that the files' pairwise delays fit (the data README lists the last two mics swapped)
SPEECHBRAIN_MICS = [[-0.05, -0.05, 0], [-0.05, 0.05, 0], [0.05, -0.05, 0], [0.05, 0.05, 0]]


def show(name: str, res: ff.LocalizationResult, truth_az: float | None = None) -> list[str]:
    """One line per track of ``res`` (direction, spread, span, and the error against ``truth_az`` when given)."""
    summ = summarize_tracks(res.tracks)
    n_upd = len(res.frames)
    if not summ:
        return [f"{name:48s} no tracks ({n_upd} updates)"]
    lines = []
    for s in summ:
        err = "" if truth_az is None else f"  error {azimuth_difference_deg(s['azimuth_deg'], truth_az):4.1f} deg"
        lines.append(f"{name:48s} track {s['track_id']}: az {s['azimuth_deg']:6.1f} +- {s['azimuth_std_deg']:3.1f} "
                     f"deg, el {s['elevation_deg']:5.1f}, {s['start_s']:.2f}-{s['end_s']:.2f} s, "
                     f"{s['rows']}/{n_upd} updates{err}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="also write the report here")
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found")
    x, sr = read_audio(DATA / "real" / "mcwsj_8ch_uca")
    lines = show("mcwsj_8ch_uca (mcwsj-uca8, half-sphere)", ff.localize(x, sr, "mcwsj-uca8", grid="half-sphere"))
    lines += show("mcwsj_8ch_uca (mcwsj-uca8, circle)", ff.localize(x, sr, "mcwsj-uca8", grid="circle"))
    arr = ff.ArrayGeometry(SPEECHBRAIN_MICS, name="speechbrain-test")
    for f in sorted((DATA / "peers" / "speechbrain_multimic").glob("*.flac")):
        y, sr = sf.read(str(f), always_2d=True)
        truth = None
        if f.stem != "noise_diffuse":
            u = np.array([float(v) for v in f.stem.split("_")[1:]])
            az, el = ff.unit_to_az_el(u / np.linalg.norm(u))
            truth = float(az)
            lines.append(f"{f.name}: true azimuth {az:.1f}, elevation {el:.1f}")
        lines += show(f"  {f.stem[:44]} (circle)", ff.localize(y.T, sr, arr), truth)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
