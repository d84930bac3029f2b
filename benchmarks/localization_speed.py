"""Speed of farfield's streaming localizer vs pyroomacoustics SRP-PHAT on the same frames, grid and band.

Usage: python benchmarks/localization_speed.py [--seconds 20] [--threads 1] [--localizer NAME=VALUE ...]
       [--out FILE]

Prints, from one run: time per localization update for farfield SRP-PHAT (coarse-to-fine and full scan) and
pyroomacoustics SRP / NormMUSIC on the same 2562-point sphere grid, 8 mics, 16 kHz, the speed ratio, and the
share of one core that the whole streaming localizer + tracker needs in real time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import emit, option  # noqa: E402
from peers import pra_doa, pra_locate  # noqa: E402
from scenes import make_scene  # noqa: E402

import farfield as ff  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the test signal")
    ap.add_argument("--threads", type=int, default=1, help="numba threads (1 = one core)")
    ap.add_argument("--pra-updates", type=int, default=40, help="updates timed for pyroomacoustics (slow)")
    ap.add_argument("--localizer", action="append", default=[], metavar="NAME=VALUE", type=option,
                    help="a Localizer option instead of its default for farfield's rows, e.g. weak_free_weight=0.1 "
                         "(repeatable)")
    ap.add_argument("--out", type=Path, help="also write the report here")
    args = ap.parse_args()
    options = dict(args.localizer)
    numba.set_num_threads(args.threads)
    sr = 16000
    geom, sc = make_scene("matrix-creator", 2, 0.5, 15, seed=1, duration_s=args.seconds)
    grid = ff.sphere_grid(4)
    x = sc.mix
    band = (300.0, 6000.0)
    probe = ff.Localizer(geom, sr, grid=grid, freq_range=band, **options)
    X = ff.stft(x, probe.frame_size, probe.hop_size)  # the localizer's frames; pyroomacoustics gets the same

    rows = []
    for label, kw in [("farfield SRP-PHAT, coarse-to-fine", dict(refine=True)),
                      ("farfield SRP-PHAT, full scan", dict(refine=False))]:
        loc = ff.Localizer(geom, sr, grid=grid, freq_range=band, **kw, **options)
        loc.process_stft(X[:, :, :250])  # compile / warm up every code path (2 s: one and two sources)
        dts = []
        for _ in range(5):  # median of 5 passes
            loc.reset()
            t0 = time.perf_counter()
            frames = loc.process_stft(X)
            dts.append(time.perf_counter() - t0)
        rows.append((label, float(np.median(dts)) / len(frames) * 1e3))
    # whole streaming chain: STFT + localizer + tracker, fed in 16 ms blocks; median of 7 passes (a 2-core
    # machine's background work moves a single pass by +-20 %)
    passes = []
    for _ in range(7):
        loc = ff.Localizer(geom, sr, grid=grid, freq_range=band, **options)
        tracker = ff.Tracker(frame_period_s=loc.frame_period_s)
        block = 256
        t0 = time.perf_counter()
        for s in range(0, x.shape[1], block):
            for fr in loc.process(x[:, s: s + block]):
                tracker.update(fr)
        passes.append(time.perf_counter() - t0)
    chain = float(np.median(passes))
    n_upd = loc.frames_processed // loc.update_every

    pra_rows = []
    for method in ("SRP", "NormMUSIC"):
        doa = pra_doa(method, geom, grid, sr, probe.frame_size, num_src=2)
        idx = np.linspace(8, X.shape[2] - 1, args.pra_updates).astype(int)
        pra_locate(doa, X[:, :, :8], band)
        t0 = time.perf_counter()
        for t in idx:
            pra_locate(doa, X[:, :, t - 8: t], band)  # same 8-frame (128 ms) window farfield averages over
        pra_rows.append((f"pyroomacoustics {method}", (time.perf_counter() - t0) / len(idx) * 1e3))

    lines = [f"8 mics ({geom.name}), {sr} Hz, {grid.n_points}-point sphere grid, band {band[0]:.0f}-{band[1]:.0f} Hz, "
             f"numba threads {args.threads}, {args.seconds:.0f} s of audio, {len(frames)} updates",
             f"{'method':42s} {'ms / update':>12s} {'vs pra SRP':>11s}   (farfield: median of 5 passes)"]
    ref = pra_rows[0][1]
    for label, ms in rows + pra_rows:
        lines.append(f"{label:42s} {ms:12.3f} {ref / ms:10.1f}x")
    lines += ["", f"whole streaming chain (STFT + SRP-PHAT + tracker, 16 ms blocks, median of 7 passes "
                  f"{', '.join(f'{p:.2f}' for p in passes)} s): {chain:.2f} s for {args.seconds:.0f} s "
                  f"of audio = {100 * chain / args.seconds:.2f}% of one core ({n_upd} updates, "
                  f"{1 / loc.frame_period_s:.1f} updates/s)"]
    if options:
        lines.append("Localizer options: " + ", ".join(f"{k}={v!r}" for k, v in options.items()))
    emit(lines, args.out)


if __name__ == "__main__":
    main()
