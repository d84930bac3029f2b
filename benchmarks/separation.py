"""Separation accuracy and speed on simulated factory rooms, farfield side by side with pyroomacoustics.

For each scene (2 or 3 static talkers speaking in overlapping turns, factory noise: mains-hum machine, rotating
machine and pink diffuse noise at the given SNR), every method gives one stream per talker; streams are matched
to talkers by best SI-SDR. SI-SDR improvement over the reference mic (mic 0) is reported against two targets:

- ``direct``: the talker's direct path at the reference mic (what an ASR wants: reverberation counts as error);
- ``image``: the talker's full reverberant image at the reference mic (the usual BSS target).

Methods, all run on the same mix:
- farfield streaming front end (localizer + tracker + per-track beams): ``lcmv``, ``mvdr``, ``superdirective``,
  ``mask-mvdr``, ``mask-gev``,
  ``sd+WPE`` (superdirective after online WPE dereverberation, ``dereverb=True``) and ``sd+PF`` (superdirective
  with the Wiener post-filter);
- pyroomacoustics AuxIVA (20 iterations, projection back to mic 0, as many sources as mics, best matches kept);
- pyroomacoustics delay-and-sum toward the *true* azimuths (``Beamformer.far_field_weights``, re-referenced from
  the array centre to mic 0, without which its SI-SDR is meaningless);
- oracle MVDR (Souden) from the true talker images and the true rest-of-mix: the ceiling of a beamformer;
- oracle MVDR + ideal Wiener post-filter: the oracle beam times the gain ``|S|^2 / (|S|^2 + |R|^2)`` computed from
  the true target ``S`` and residual ``R`` in its output: the ceiling of a beam followed by any post-filter (a
  time-varying gain per bin; it cannot remove reverberation that lies in the same bins as the direct sound).

- perfect image: the talker's clean reverberant image at mic 0, scored against the direct path only: the ceiling
  of any method that keeps the reverberant image (MVDR does) instead of removing reverberation.

Also STOI and wideband PESQ (where pystoi / pesq are installed) against the direct path, and the
real-time factor of farfield's whole streaming chain (STFT, localization, tracking, beams, synthesis) for
8 mics at 16 kHz on one core.

    python benchmarks/separation.py [--quick] [--out benchmarks/results/separation.txt]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

import pyroomacoustics as pra  # noqa: E402

from _report import emit  # noqa: E402
from farfield.beamform import apply_weights, estimate_covariance, mvdr_souden_weights  # noqa: E402
from farfield.frontend import process  # noqa: E402
from farfield.metrics import match_streams, si_sdr  # noqa: E402
from farfield.sim.recipe import parse_recipe  # noqa: E402
from farfield.sim.render import render_recipe_scene  # noqa: E402
from farfield.stft import istft, stft  # noqa: E402

ARRAYS = {"4-mic": "respeaker-4mic-hat", "6-mic": "respeaker-6mic-hat", "8-mic": "minidsp-uma8"}
OURS = ("lcmv", "mvdr", "superdirective", "mask-mvdr", "mask-gev")


def recipe(profile: str, talkers: int, rt60: float, snr: float, duration: float) -> dict:
    return parse_recipe({
        "name": "bench_separation", "duration_s": duration,
        "room": {"size_m": [8.0, 6.0, 3.5], "rt60_s": rt60, "max_order": 30},
        "array": {"profile": profile, "height_m": 1.0, "wall_margin_m": 2.5},
        "talkers": {"count": talkers, "distance_m": [1.0, 2.0], "min_separation_deg": 40.0, "height_m": [1.4, 1.8]},
        "conversation": {"first_turn_s": 0.3, "turn_s": [2.0, 4.0], "gap_s": [-1.5, -0.5], "long_pause_prob": 0.0,
                         "backchannel_prob": 0.0},
        "noise": [{"type": "machine_hum", "distance_m": [2.5, 4.0]},
                  {"type": "rotating_machine", "distance_m": [2.5, 4.0]}, {"type": "diffuse", "colour": "pink"}],
        "mix": {"snr_db": snr},
    })


def pra_streams(x: np.ndarray, array_profile, true_az: list[float], sr: int) -> dict[str, list[np.ndarray]]:
    n = x.shape[1]
    X = stft(x)  # (M, F, T)
    Y = pra.bss.auxiva(X.transpose(2, 1, 0), n_iter=20, proj_back=True)  # (T, F, S)
    aux = [istft(Y[:, :, s].T[None], 256, n)[0] for s in range(Y.shape[2])]
    bf = pra.Beamformer((array_profile.positions - array_profile.centre)[:, :2].T, sr, N=512)
    ds = []
    for az in true_az:
        bf.far_field_weights(np.deg2rad(az))
        w = bf.weights  # (M, F), phase-referenced to the array centre
        y = np.einsum("mf,mft->ft", w.conj(), X) * (w[0] / np.abs(w[0]))[:, None]  # re-reference to mic 0
        ds.append(istft(y[None], 256, n)[0])
    return {"pra AuxIVA": aux, "pra DS (true az)": ds}


def oracle(x: np.ndarray, images: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Oracle Souden MVDR streams, and the same streams after an ideal Wiener post-filter."""
    n = x.shape[1]
    X = stft(x)
    beams, filtered = [], []
    for img in images:
        S = stft(img)
        w = mvdr_souden_weights(estimate_covariance(S), estimate_covariance(X - S))
        Y, Ys = apply_weights(w, X), apply_weights(w, S)
        gain = np.abs(Ys) ** 2 / (np.abs(Ys) ** 2 + np.abs(Y - Ys) ** 2 + 1e-20)
        beams.append(istft(Y[None], 256, n)[0])
        filtered.append(istft((gain * Y)[None], 256, n)[0])
    return beams, filtered


def quality(streams: list[np.ndarray], targets: list[np.ndarray], sr: int) -> tuple[float, float]:
    """Mean STOI and wideband PESQ of the best-matching streams against the direct-path targets (NaN when
    pystoi / pesq are not installed, or PESQ finds no speech)."""
    try:
        from pesq import pesq
        from pystoi import stoi
    except ImportError:
        return float("nan"), float("nan")
    st, pq = [], []
    for i, j, _ in match_streams(streams, targets):
        ref = targets[j] / (np.max(np.abs(targets[j])) + 1e-12)
        est = streams[i] / (np.max(np.abs(streams[i])) + 1e-12)
        st.append(stoi(ref, est, sr, extended=False))
        try:
            pq.append(pesq(sr, ref, est, "wb"))
        except Exception:  # pesq raises on inputs it cannot align (no utterance found)
            pass
    return (float(np.mean(st)) if st else float("nan"), float(np.mean(pq)) if pq else float("nan"))


def scores(streams: list[np.ndarray], x0: np.ndarray, targets: list[np.ndarray]) -> list[float]:
    """SI-SDR improvement per talker (streams matched by best SI-SDR; an unmatched talker scores 0)."""
    got = {j: v - si_sdr(x0, targets[j]) for _, j, v in match_streams(streams, targets)}
    return [got.get(j, 0.0) for j in range(len(targets))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one condition per row (RT60 0.6, SNR 5)")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    sr = 16000
    conds = []
    for arr in ARRAYS:
        for rt in ((0.6,) if args.quick else (0.3, 0.6, 1.0)):
            for snr in ((5.0,) if args.quick else (0.0, 5.0, 15.0)):
                conds.append((arr, 2, rt, snr))
        conds.append((arr, 3, 0.6, 5.0))
    methods = [f"farfield {m}" for m in OURS] + ["farfield sd+WPE", "farfield sd+PF", "pra AuxIVA", "pra DS (true az)",
                                                 "oracle MVDR", "oracle MVDR+IWF", "perfect image"]
    rows = []
    qual: dict = {}
    silent = 0
    for arr, k, rt, snr in conds:
        for seed in range(args.seeds):
            sc = render_recipe_scene(recipe(ARRAYS[arr], k, rt, snr, args.duration), seed, 0)
            x = sc.mix.astype(float)
            # a talker whose first turn falls after the scene's end says nothing: no target to score (its SI-SDR
            # against a silent target is meaningless: it once added 80 dB to a room's oracle)
            talk = [s for s in sc.sources if s.kind == "talker" and np.any(s.direct)]
            silent += sum(1 for s in sc.sources if s.kind == "talker" and not np.any(s.direct))
            az = [next(r[6] for r in sc.positions if r[1] == s.name) for s in talk]
            tg = {"direct": [s.direct for s in talk], "image": [s.image[0] for s in talk]}
            outs = {f"farfield {m}": list(process(x, sr, sc.array, separation=m).streams.values()) for m in OURS}
            outs["farfield sd+WPE"] = list(process(x, sr, sc.array, dereverb=True).streams.values())
            outs["farfield sd+PF"] = list(process(x, sr, sc.array,
                                                  separator_options={"postfilter": True}).streams.values())
            outs.update(pra_streams(x, sc.array, az, sr))
            outs["oracle MVDR"], outs["oracle MVDR+IWF"] = oracle(x, [s.image for s in talk])
            outs["perfect image"] = tg["image"]
            outs["mic 0 (input)"] = [x[0]] * len(talk)
            for m in methods:
                rows.append((arr, k, rt, snr, m, np.mean(scores(outs[m], x[0], tg["direct"])),
                             np.nan if m == "perfect image" else np.mean(scores(outs[m], x[0], tg["image"]))))
                qual.setdefault((k, m), []).append(quality(outs[m], tg["direct"], sr))
            qual.setdefault((k, "mic 0 (input)"), []).append(quality(outs["mic 0 (input)"], tg["direct"], sr))
            print(f"{arr} {k} talkers RT60 {rt} SNR {snr}: " + ", ".join(
                f"{m} {r[5]:.1f}/{r[6]:.1f}" for m, r in zip(methods, rows[-len(methods):])), flush=True)
    lines = ["separation: SI-SDR improvement (dB) over mic 0, mean over talkers and scenes; direct / image target",
             f"{args.duration:.0f} s scenes, 8 x 6 x 3.5 m room, talkers 1-2 m away in overlapping turns, "
             f"factory noise (hum + rotating machine + pink diffuse), {args.seeds} seed(s); {silent} talker(s) "
             f"left out: silent in their scene (first turn after its end)", ""]
    head = f"{'condition':<30}" + "".join(f"{m:>24}" for m in methods)
    lines.append(head)
    groups = {}
    for arr, k, rt, snr, m, d, i in rows:
        groups.setdefault((arr, k, rt, snr), {}).setdefault(m, []).append((d, i))
    for (arr, k, rt, snr), g in groups.items():
        lines.append(f"{arr + f' {k}tk RT60 {rt} SNR {snr:g}':<30}" + "".join(
            f"{np.mean([a for a, _ in g[m]]):>15.1f} /{np.mean([b for _, b in g[m]]):>6.1f}" for m in methods))
    lines.append("")
    for label, sel in (("all 2-talker", lambda c: c[1] == 2), ("all 3-talker", lambda c: c[1] == 3),
                       ("goal: 6-mic 2tk RT60 0.6 SNR 5", lambda c: c == ("6-mic", 2, 0.6, 5.0))):
        gs = [g for c, g in groups.items() if sel(c)]
        if gs:
            lines.append(f"{label:<30}" + "".join(
                f"{np.mean([a for g in gs for a, _ in g[m]]):>15.1f} /{np.mean([b for g in gs for _, b in g[m]]):>6.1f}"
                for m in methods))
    lines.append("")
    lines.append("STOI / wideband PESQ of the matched streams against the direct path (mean over rooms):")
    for k in (2, 3):
        lines.append(f"  {k} talkers: " + ", ".join(
            f"{m} {np.nanmean([q[0] for q in qual[(k, m)]]):.2f} / {np.nanmean([q[1] for q in qual[(k, m)]]):.2f}"
            for m in ["mic 0 (input)", *methods] if (k, m) in qual))
    # speed: 8 mics, 3 talkers, one core
    os.environ["NUMBA_NUM_THREADS"] = "1"
    import numba

    numba.set_num_threads(1)
    sc = render_recipe_scene(recipe("minidsp-uma8", 3, 0.6, 10.0, 20.0), 0, 0)
    x = sc.mix.astype(float)
    process(x[:, :sr], sr, sc.array)
    t = time.perf_counter()
    res = process(x, sr, sc.array)
    rtf = (time.perf_counter() - t) / (x.shape[1] / sr)
    t = time.perf_counter()
    process(x, sr, sc.array, dereverb=True)
    rtf_wpe = (time.perf_counter() - t) / (x.shape[1] / sr)
    t = time.perf_counter()
    process(x, sr, sc.array, separation="mask-mvdr")
    rtf_mask = (time.perf_counter() - t) / (x.shape[1] / sr)
    t = time.perf_counter()
    process(x, sr, sc.array, separation="mask-gev")
    rtf_gev = (time.perf_counter() - t) / (x.shape[1] / sr)
    lines.append("")
    lines.append(f"speed: whole streaming chain (STFT, SRP-PHAT, tracker, {len(res.streams)} beams (3 talkers), "
                 f"ISTFT), 8 mics, 16 kHz, one core: real-time factor {rtf:.3f} (superdirective), {rtf_wpe:.3f} "
                 f"with online WPE, {rtf_mask:.3f} mask-mvdr, {rtf_gev:.3f} mask-gev; algorithmic latency "
                 f"{res.latency_samples} samples = {1000 * res.latency_samples / sr:.0f} ms")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
