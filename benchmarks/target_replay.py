"""Record the target-selection benchmark's pipeline once, then replay TargetSelector options on it in minutes.

The target benchmark (``diarization.py --target-only``) runs the whole pipeline (localizer, tracker, beams, VAD,
embeddings) for every room, 45-90 s each on 2 cores. A change to the selector alone does not need that: what the
front end feeds the selector does not depend on it (``SelectorTrace``), so ``record`` keeps it per room and
``replay`` runs any selector options on it and scores them as the benchmark does. A replay holds only for the code
it was recorded with: change anything upstream of the selector (localizer, tracker, separator, diarizer) and record
again (``replay`` warns when ``farfield/`` differs from the recording's).

    python benchmarks/target_replay.py record DIR [--seeds 5 6 7 8] [--scenes 8] [--voices espeak real] [--enrolled]
    python benchmarks/target_replay.py replay DIR [--selector NAME=VALUE ...] [--policy P ...] [--breakdown]

``record`` writes ``DIR/seed<S>_<voices>_room<i>.pkl`` (about 2 MB each); ``--enrolled`` also records the
enrolled policy's run (its diarizer knows talker1's voice, so it is a run of its own: twice the time). ``replay``
prints, per seed and voice set, the benchmark's lines (the same figures as ``diarization.py --target-only`` with
the same ``--selector`` options, to the digit), then every policy pooled over all of them; ``--breakdown`` adds
where each policy's target time went: the addressee while they speak (right), their track while they are silent
(split by whether someone else speaks then), another talker's track, the TV's, or a track farther than 20 deg
from every source. The pickles are this machine's scratch files: load only ones you wrote.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import pickle
import tempfile
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from _report import emit, environment, option
from diarization import (POLICIES, PLAYBACK_MIN_S, WHO_DEG, SelectorTrace, _overlap, _own_voice, folded_distance,
                         held_out_voice, nearest_source, policy_setup, score_target, source_azimuths, target_recipe,
                         target_report, track_azimuth)
from scenes import DATA, real_voice_bank

import farfield
from farfield.diarize import OnlineDiarizer
from farfield.embed import SpeakerEncoder
from farfield.frontend import process
from farfield.sim.render import render_recipe_scene
from farfield.target import TargetSelector

VOICES = ("espeak", "real")


def code_hash() -> str:
    """A hash of the ``farfield`` package's sources (what a recording is valid for)."""
    h = hashlib.sha256()
    root = Path(farfield.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _light(scene):
    """``scene`` without its audio (what scoring and the cues need: array, positions, segments, parameters)."""
    empty = np.zeros(0, np.float32)
    return dataclasses.replace(scene, mix=np.zeros((scene.mix.shape[0], 0), np.float32), noise=empty,
                               noise_images={}, sources=[dataclasses.replace(s, dry=empty, image=None, direct=None)
                                                         for s in scene.sources])


def _run(scene, enc, selector: TargetSelector, enrolment=None) -> dict:
    """One pipeline run on ``scene`` with a :class:`SelectorTrace` around ``selector``: what a replay needs."""
    dia = OnlineDiarizer(scene.sample_rate, encoder=enc)
    if enrolment is not None:
        dia.enroll("addressee", enrolment, scene.sample_rate)
    trace = SelectorTrace(selector)
    res = process(scene.mix.astype(float), scene.sample_rate, scene.array, diarizer=dia, target=trace)
    # the replay needs only the target's length, not its audio; the streams not at all
    res = dataclasses.replace(res, streams={}, target=np.zeros(len(res.target), np.int8))
    return {"blocks": trace.blocks, "res": res}


def record(out: Path, seeds: list[int], n_scenes: int, voices: list[str], enrolled: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    enc = SpeakerEncoder()
    rec = target_recipe()
    stamp = {"code": code_hash(), "environment": environment()}
    for kind in voices:
        with tempfile.TemporaryDirectory() as tmp:
            speech, enrol = None, _own_voice
            if kind == "real":
                if not (DATA / "speech").is_dir():
                    raise SystemExit(f"real voices need {DATA / 'speech'}, which is not there")
                enrol, speech = partial(held_out_voice, real_voice_bank(Path(tmp))), tmp
            for seed in seeds:
                for i in range(n_scenes):
                    sc = render_recipe_scene(rec, seed, i, speech=speech)
                    item = {**stamp, "scene": _light(sc), "end_s": sc.mix.shape[1] / sc.sample_rate,
                            "min_separation_deg": rec.spec["talkers"]["min_separation_deg"],
                            "shared": _run(sc, enc, TargetSelector()),
                            "enrolled": (_run(sc, enc, TargetSelector(enrolled="addressee"), enrol(sc))
                                         if enrolled else None)}
                    path = out / f"seed{seed}_{kind}_room{i}.pkl"
                    with open(path, "wb") as f:
                        pickle.dump(item, f)
                    print("recorded", path, flush=True)


def breakdown(scene, res, addressee: str) -> collections.Counter:
    """Seconds of ``res``'s target time by where they went (see the module docstring)."""
    dist, sources = folded_distance(scene.array), source_azimuths(scene)
    spoken = [(g.start_s, g.start_s + g.duration_s) for g in scene.segments if g.speaker == addressee]
    others = [(g.start_s, g.start_s + g.duration_s) for g in scene.segments if g.speaker != addressee]
    out: collections.Counter = collections.Counter()
    for g in res.target_segments:
        length = g.end_s - g.start_s
        mean = track_azimuth(res, g)
        if mean is None:
            out["a track with no rows"] += length
            continue
        who = nearest_source(sources, dist, mean)
        if who is None:
            out[f"a track over {WHO_DEG:.0f} deg from every source"] += length
        elif who.startswith("playback"):
            out["the TV's track"] += length
        elif who != addressee:
            out["another talker's track"] += length
        else:
            heard = _overlap(g.start_s, g.end_s, spoken)
            out["right: the addressee while they speak"] += heard
            t = np.arange(g.start_s, g.end_s, 0.01) + 0.005  # the rest, in 10 ms steps
            silent = ~np.any([(t >= a) & (t < b) for a, b in spoken], axis=0) if spoken else np.ones(t.size, bool)
            other = np.any([(t >= a) & (t < b) for a, b in others], axis=0) if others else np.zeros(t.size, bool)
            rest = length - heard  # (the steps' count, scaled to it so the parts add up)
            n_silent = max(int(silent.sum()), 1)
            out["their track, silent, while others speak"] += rest * float(np.sum(silent & other)) / n_silent
            out["their track, silent, nobody else speaks"] += rest * float(np.sum(silent & ~other)) / n_silent
    return out


def replay(src: Path, selector: dict, policies: tuple[str, ...], show_breakdown: bool, out: Path | None) -> None:
    paths = sorted(src.glob("seed*_room*.pkl"), key=lambda p: (p.name.split("_")[:2], int(p.stem.split("room")[1])))
    if not paths:
        raise SystemExit(f"no recordings (seed*_room*.pkl) in {src}: run 'record' first")
    code = code_hash()
    groups: dict[tuple, dict] = {}
    where: dict[str, collections.Counter] = {p: collections.Counter() for p in policies}
    stale = set()
    for path in paths:
        with open(path, "rb") as f:
            item = pickle.load(f)
        if item["code"] != code:
            stale.add(item["code"])
        sc = item["scene"]
        kind = path.name.split("_")[1]
        g = groups.setdefault((int(path.name.split("_")[0][4:]), kind),
                              {"stats": {p: [] for p in policies}, "late": {p: [] for p in policies}, "linear": []})
        g["linear"].append(sc.array.is_linear)
        for policy in policies:
            kw, addressee, cues = policy_setup(sc, policy, selector, item["min_separation_deg"], item["end_s"])
            run = item["enrolled"] if policy == "enrolled" else item["shared"]
            if run is None:
                raise SystemExit(f"{path} has no enrolled run: record with --enrolled, or leave that policy out")
            if policy == "enrolled":
                kw["enrolled"] = "addressee"
            trace = SelectorTrace(TargetSelector())
            trace.blocks = run["blocks"]
            res = trace.replay(run["res"], sc.array, TargetSelector(**kw), cues)
            g["stats"][policy].append(score_target(sc, res, addressee))
            g["late"][policy].append(score_target(sc, res, addressee, after_s=PLAYBACK_MIN_S))
            if show_breakdown:
                where[policy] += breakdown(sc, res, addressee)
    options = ", ".join(f"{k}={v!r}" for k, v in selector.items())
    lines = [f"replayed target selection from {src}" + (f" (selector: {options})" if options else "")]
    if stale:
        lines.append(f"WARNING: recorded with other farfield code ({', '.join(sorted(stale))}; now {code}): the "
                     f"replays hold only if nothing upstream of the selector changed")
    for (seed, kind), g in sorted(groups.items()):
        n = len(g["linear"])
        lines += target_report(g["stats"], g["late"], g["linear"], n, "as recorded",
                               title=f"seed {seed}, {kind} voices")
    lines += ["", f"pooled over {sum(len(g['linear']) for g in groups.values())} rooms (right, on the TV, with the "
                  f"collar, on the addressee's track, the addressee's speech covered):"]
    for policy in policies:
        s = np.sum([x for g in groups.values() for x in g["stats"][policy]], axis=0)
        right, tv, total, spoken, on_track, right_c, total_c = s
        lines.append(f"  {policy:<9} {right / max(total, 1e-9):6.1%} {tv / max(total, 1e-9):6.2%} "
                     f"{right_c / max(total_c, 1e-9):6.1%} {on_track / max(total, 1e-9):6.1%} "
                     f"{right / max(spoken, 1e-9):6.1%}   of {total:.0f} s")
        if show_breakdown:
            total_w = sum(where[policy].values())
            for k, v in where[policy].most_common():
                lines.append(f"      {k:<42} {v:6.1f} s {v / max(total_w, 1e-9):6.1%}")
    emit(lines, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="run the pipeline on the benchmark's rooms and keep what the selector gets")
    r.add_argument("dir", type=Path)
    r.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7, 8], help="recipe seeds (default 5 6 7 8)")
    r.add_argument("--scenes", type=int, default=8, help="rooms per seed (default 8, as the committed results)")
    r.add_argument("--voices", nargs="+", choices=VOICES, default=list(VOICES), help="voice sets (default both)")
    r.add_argument("--enrolled", action="store_true", help="also record the enrolled policy's own run")
    p = sub.add_parser("replay", help="replay selector options on a recording and score them")
    p.add_argument("dir", type=Path)
    p.add_argument("--selector", action="append", default=[], metavar="NAME=VALUE", type=option,
                   help="a TargetSelector option for every policy, e.g. trigger_window_s=0.8 (repeatable)")
    p.add_argument("--policy", action="append", choices=POLICIES, default=None,
                   help="only this policy (repeatable; default all but enrolled, and enrolled too when recorded)")
    p.add_argument("--breakdown", action="store_true", help="also say where each policy's target time went")
    p.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.command == "record":
        record(args.dir, args.seeds, args.scenes, args.voices, args.enrolled)
        return
    policies = tuple(args.policy) if args.policy else None
    if policies is None:
        first = next(iter(sorted(args.dir.glob("seed*_room*.pkl"))), None)
        with_enrolled = False
        if first is not None:
            with open(first, "rb") as f:
                with_enrolled = pickle.load(f)["enrolled"] is not None
        policies = tuple(p for p in POLICIES if with_enrolled or p != "enrolled")
    replay(args.dir, dict(args.selector), policies, args.breakdown, args.out)


if __name__ == "__main__":
    main()
