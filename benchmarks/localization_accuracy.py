"""Localization accuracy on simulated rooms with known truth, side by side with pyroomacoustics.

Usage: python benchmarks/localization_accuracy.py [--quick] [--seeds 8] [--first-seed 0] [--no-peers]
       [--array PROFILE ...] [--talkers N ...] [--rt60 S ...] [--snr DB|none ...] [--lead-in S]
       [--localizer NAME=VALUE ...] [--tracker NAME=VALUE ...] [--out FILE]

Rooms of 7 x 6 x 3 m (pyroomacoustics image source method), 1-3 talkers reading real speech from
../shared/data/speech 1-2.5 m from the array (at least 40 degrees apart, all talking at once for 6 s),
spherically diffuse noise, for 4-, 6- and 8-mic circular arrays (``--array PROFILE``: others). Per localizer update
an active talker counts as found when an estimate is within 10 degrees of azimuth; MAE is over found talkers. A
linear array (the PS Eye) searches the half circle in front of it and is scored against where it hears each talker
(``ArrayGeometry.in_front`` of their azimuth and elevation: it measures only their angle from its axis).

A second table splits the tracks' misses: how long after a talker starts a track is first on them (acquisition,
median and mean over talkers, seconds), and the share of active (talker, update) pairs missed before that, missed
later with a track 10-20 degrees off, and missed later with no track within 20 degrees.

Columns: farfield tracks (what tracks.csv holds), farfield detections (per-update localizer output),
pyroomacoustics SRP and NormMUSIC run on the same STFT frames (the same 8-frame window farfield's smoothing
spans), the same circle grid and band, and told the true number of talkers (an advantage farfield does not get).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import environment, option  # noqa: E402
from peers import pra_doa, pra_locate  # noqa: E402
from scenes import GEOMETRIES, SAMPLE_RATE, make_scene  # noqa: E402

import farfield as ff  # noqa: E402
from farfield.metrics import activity_at, score_doa, tracks_per_frame  # noqa: E402

BAND = (300.0, 6000.0)


def evaluate(array: str, n_talkers: int, rt60: float, snr: float | None, seed: int, pra_every: int,
             peers: bool = True, lead_in_s: float = 0.0, tracker_options: dict | None = None,
             **localizer_options) -> dict:
    geom, sc = make_scene(array, n_talkers, rt60, snr, seed, lead_in_s=lead_in_s)
    kind = "half-circle" if geom.is_linear else "circle"
    res = ff.localize(sc.mix, SAMPLE_RATE, geom, grid=kind, freq_range=BAND, tracker_options=tracker_options,
                      **localizer_options)
    times = np.array([f.time_s for f in res.frames])
    act = activity_at(sc.activity, times, SAMPLE_RATE)
    heard = geom.in_front(sc.azimuth_deg, sc.elevation_deg)  # circular arrays: the azimuth
    true_az = np.repeat(heard[:, None], len(times), axis=1)
    out = {"tracks": score_doa(times, tracks_per_frame(res.tracks, times), true_az, act),
           "detections": score_doa(times, [np.array([d.azimuth_deg for d in f.detections]) for f in res.frames],
                                   true_az, act)}
    if not peers:
        return out
    X = ff.stft(sc.mix, 512, 256)
    sel = np.arange(len(times))[::pra_every]
    frame_of_update = (np.arange(len(times)) + 1) * 2 - 1  # update k ends at STFT frame 2k + 1
    for method in ("SRP", "NormMUSIC"):
        doa = pra_doa(method, geom, ff.make_grid(kind, 360, geom.front_deg if geom.is_linear else 0.0),
                      SAMPLE_RATE, 512, num_src=n_talkers)
        est = []
        for k in sel:
            t = frame_of_update[k]
            # pyroomacoustics is only asked where a talker is active (it has no silence detection)
            est.append(pra_locate(doa, X[:, :, max(0, t - 7): t + 1], BAND) if act[:, k].any() else np.array([]))
        out[f"pra {method}"] = score_doa(times[sel], est, true_az[:, sel], act[:, sel])
    return out


def _split(scores: list) -> str:
    """Acquisition time (median and mean over talkers found at all; seconds) and the shares of active
    (talker, update) pairs found (the recall of the table above), missed before the talker's first track, off by
    10-20 deg, and absent; shares are per room, then averaged over rooms as the recall is."""
    acq = np.array([a for s in scores for a in s.acquisition_s])
    acq = acq[~np.isnan(acq)]
    shares = np.mean([[s.recall] + [getattr(s, k) / max(s.n_active, 1) for k in ("missed_early", "missed_off",
                                                                                "missed_absent")]
                      for s in scores], axis=0)
    acq_text = f"{np.median(acq):6.2f} {np.mean(acq):6.2f}" if acq.size else f"{'-':>6s} {'-':>6s}"
    return f"{acq_text} | " + " ".join(f"{v:5.3f}" for v in shares[:3]) + f" {shares[3]:6.3f}"


def _snr(text: str) -> float | None:
    """``--snr`` values: dB, or ``none`` for no noise at all."""
    return None if text.lower() == "none" else float(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer conditions (RT60 0.6, SNR 10, 1 seed)")
    ap.add_argument("--seeds", type=int, default=8, help="rooms per condition")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="room numbers first-seed .. first-seed + seeds - 1 (other rooms than the default 0..7)")
    ap.add_argument("--no-peers", action="store_true", help="farfield only (no pyroomacoustics columns; faster)")
    ap.add_argument("--pra-every", type=int, default=8, help="score pyroomacoustics on every n-th update")
    ap.add_argument("--localizer", action="append", default=[], metavar="NAME=VALUE", type=option,
                    help="a Localizer option instead of its default, e.g. refine_sources=False or dominance_fit=0.6 "
                         "(repeatable)")
    ap.add_argument("--tracker", action="append", default=[], metavar="NAME=VALUE", type=option,
                    help="a Tracker option instead of its default, e.g. measurement_noise_deg=12 (repeatable)")
    ap.add_argument("--array", action="append", metavar="PROFILE",
                    help="only these array profiles (repeatable; default the 4-, 6- and 8-mic circular arrays: "
                         f"{', '.join(GEOMETRIES.values())})")
    ap.add_argument("--talkers", action="append", type=int, metavar="N",
                    help="only these talker counts (repeatable; default 1, 2 and 3)")
    ap.add_argument("--rt60", action="append", type=float, metavar="S",
                    help="only these RT60s in seconds (repeatable; default 0.3, 0.6 and 1.0)")
    ap.add_argument("--snr", action="append", type=_snr, metavar="DB",
                    help="only these SNRs in dB, or 'none' for rooms without noise (repeatable; default 5, 10 and 20)")
    ap.add_argument("--lead-in", type=float, default=0.0, metavar="S",
                    help="seconds of noise alone before the talkers start (default 0: they talk from the first sample, "
                         "before the localizer's noise floor has settled; a device that listens all the time has it "
                         "settled); scored like the rest: tracks there are unmatched")
    ap.add_argument("--out", type=Path, help="also write the table here")
    args = ap.parse_args()
    rt60s, snrs, seeds = ((0.6,), (10.0,), 1) if args.quick else ((0.3, 0.6, 1.0), (5.0, 10.0, 20.0), args.seeds)
    rt60s, snrs = tuple(args.rt60 or rt60s), tuple(args.snr or snrs)
    talkers = tuple(args.talkers or (1, 2, 3))
    methods = ("tracks", "detections") + (() if args.no_peers else ("pra SRP", "pra NormMUSIC"))
    lines = []

    def emit(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    emit(f"{'array':6s} {'talk':>4s} {'RT60':>5s} {'SNR':>4s} | " +
         " | ".join(f"{m:^22s}" for m in methods))
    emit(f"{'':24s}| " + " | ".join(f"{'MAE':>6s} {'recall':>6s} {'false':>6s}" for _ in methods))
    goal = {m: [] for m in methods}
    allr = {m: [] for m in methods}
    misses = []  # per cell: its label and the tracks' scores
    options = dict(args.localizer)  # Localizer options
    tracker = dict(args.tracker)  # Tracker options
    t0 = time.time()
    geometries = {a: a for a in args.array} if args.array else GEOMETRIES
    for (label, array), n, rt60, snr in itertools.product(geometries.items(), talkers, rt60s, snrs):
        acc = {m: [] for m in methods}
        for seed in range(args.first_seed, args.first_seed + seeds):
            r = evaluate(array, n, rt60, snr, 1000 * n + seed, args.pra_every, not args.no_peers, args.lead_in,
                         tracker, **options)
            for m in methods:
                acc[m].append(r[m])
                allr[m].append(r[m])
                if n <= 2 and rt60 <= 0.6 and (snr is None or snr >= 10):
                    goal[m].append(r[m])
        row = []
        for m in methods:
            mae = np.nanmean([s.mae_deg for s in acc[m]])
            row.append(f"{mae:6.1f} {np.mean([s.recall for s in acc[m]]):6.2f} "
                       f"{np.mean([s.false_per_frame for s in acc[m]]):6.2f}")
        cell = f"{label:6s} {n:4d} {rt60:5.1f} {'none' if snr is None else f'{snr:4.0f}'}"
        emit(f"{cell} | " + " | ".join(row))
        misses.append((cell, acc["tracks"]))
    emit(f"\ntracks: where the misses are (shares of active talker-updates)\n{'array':6s} {'talk':>4s} {'RT60':>5s} "
         f"{'SNR':>4s} | {'acquisition s':>13s} | {'found':>5s} {'early':>5s} {'off':>5s} {'absent':>6s}")
    emit(f"{'':24s}| {'median':>6s} {'mean':>6s} |")
    for cell, scores in misses + [("goal conditions", goal["tracks"]), ("all conditions", allr["tracks"])]:
        emit(f"{cell:22s} | {_split(scores)}")
    for name, d in (("goal conditions (<= 2 talkers, RT60 <= 0.6 s, SNR >= 10 dB)", goal), ("all conditions", allr)):
        emit(f"\n{name}:")
        for m in methods:
            if d[m]:
                emit(f"  {m:14s} MAE {np.nanmean([s.mae_deg for s in d[m]]):5.1f} deg  recall "
                     f"{np.mean([s.recall for s in d[m]]):.2f}  unmatched estimates/frame "
                     f"{np.mean([s.false_per_frame for s in d[m]]):.2f}")
    peers = ("no pyroomacoustics" if args.no_peers else f"pyroomacoustics given the true number of talkers, scored "
             f"on every {args.pra_every}th update where a talker is active")
    emit(f"\n({seeds} rooms per condition, rooms {args.first_seed}-{args.first_seed + seeds - 1}, "
         f"{time.time() - t0:.0f} s; {peers}; "
         f"{f'{args.lead_in:g} s of noise alone first; ' if args.lead_in else ''}Localizer options: "
         f"{', '.join(f'{k}={v!r}' for k, v in options.items()) or 'defaults'}"
         f"{''.join(f'; Tracker option {k}={v!r}' for k, v in tracker.items())})")
    emit(environment())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
