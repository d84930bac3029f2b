"""Simulator speed: scenes per minute per core for each built-in recipe, the share of time spent computing room
impulse responses vs convolution and mixing, and the speed-up of 2 worker processes over 1.

    python benchmarks/simulation_speed.py [--scenes 3] [--out benchmarks/results/simulation_speed.txt]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _report import emit  # noqa: E402
from farfield.sim.dataset import simulate, time_scene  # noqa: E402
from farfield.sim.recipe import list_recipes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=3, help="scenes per recipe for the per-recipe timing")
    ap.add_argument("--parallel-scenes", type=int, default=6, help="scenes for the 1- vs 2-worker comparison")
    ap.add_argument("--parallel-recipe", default="meeting_room")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    lines = [f"simulator speed, {args.scenes} scenes per recipe, one process (1 core), 16 kHz",
             f"{'recipe':<18}{'scene s':>9}{'audio s':>9}{'x real time':>12}{'scenes/min/core':>17}"
             f"{'RIR %':>7}{'conv+mix %':>11}"]
    for name in list_recipes():
        times = [time_scene(name, 0, i) for i in range(args.scenes)]
        tot = np.mean([t["total_s"] for t in times])
        audio = np.mean([t["duration_s"] for t in times])
        rir = np.sum([t["rir"] for t in times]) / np.sum([t["total_s"] for t in times])
        lines.append(f"{name:<18}{tot:>9.2f}{audio:>9.1f}{audio / tot:>12.1f}{60 / tot:>17.1f}"
                     f"{100 * rir:>7.0f}{100 * (1 - rir):>11.0f}")
    with tempfile.TemporaryDirectory() as d:
        walls = {}
        for w in (1, 2):
            t = time.perf_counter()
            simulate(args.parallel_recipe, args.parallel_scenes, Path(d) / f"w{w}", seed=1, workers=w)
            walls[w] = time.perf_counter() - t
    lines.append(f"{args.parallel_recipe}, {args.parallel_scenes} scenes written to disk: 1 worker {walls[1]:.1f} s, "
                 f"2 workers {walls[2]:.1f} s, speed-up {walls[1] / walls[2]:.2f}x on {os.cpu_count()} cores")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
