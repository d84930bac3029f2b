"""Playback (TV / radio) zones of the target selector on simulated rooms with known sources.

Each scene is run once through the localizer and tracker; its tracker rows are then replayed through
``TargetSelector`` with its default playback rules and with each rule turned off, and for every true source the
share of localizer updates after ``playback_min_s`` (15 s) in which its direction lies in a playback zone is
reported; and, as line ``5-15 s``, the same share over the updates from 5 to 15 s, where the stricter early
update rule alone marks zones. A TV should be in a zone all the time, a person never. The summaries cover the
circular-array scenes (the linear PS-Eye, 4 mics on 6 cm, puts most sources in one cone and cannot tell a TV from a
person on its mirror side; its scenes are listed per scene only, mirror images folded). Scenes:

- the 75 s ``home_living_room`` rooms with a TV of ``benchmarks/diarization.py`` (seed 5), with espeak-ng voices
  and, when ../shared/data/speech is there, with its real voices;
- meetings: ``meeting_room`` scenes of 75 s (seed 31), 2-4 people taking turns, no TV;
- monologues: the same with one person, who talks 70-80 % of the time.

Variants: ``default``; ``update rule only`` (``playback_slot_fraction=1``: no 1-s slot rule); ``no masking guard``
(``playback_masked=0``: the slot rule also marks a source that nothing else masks).

    python benchmarks/playback_zones.py [--scenes 8] [--out benchmarks/results/playback_zones.txt]
    python benchmarks/playback_zones.py --living-rooms-only [--target-seed 6] [--min-separation 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np

from _report import emit  # noqa: E402
from diarization import TARGET_SEED, folded_distance, rooms_title, source_azimuths, target_recipe, variant
from farfield.frontend import process
from farfield.sim.render import render_recipe_scene
from farfield.playback import EARLY_PLAYBACK_FROM_S
from farfield.target import TargetSelector
from scenes import DATA, real_voice_bank

VARIANTS = {"default": {}, "update rule only": {"playback_slot_fraction": 1.0},
            "no masking guard": {"playback_masked": 0.0}}


def record(scene) -> tuple[dict, list]:
    """The scene's true non-noise sources ``{name: azimuth_deg}`` and its tracker rows grouped per update."""
    sources = source_azimuths(scene)
    res = process(scene.mix.astype(float), scene.sample_rate, scene.array)
    updates: dict[float, list] = {}
    for r in res.tracks:
        updates.setdefault(r.time_s, []).append(r)
    return sources, sorted(updates.items())


def zone_shares(scene, sources: dict, updates: list, **settings) -> tuple[dict[str, float], dict[str, float]]:
    """Per source: the share of updates after ``playback_min_s`` in which its direction is in a playback zone; and
    the same over the updates from ``EARLY_PLAYBACK_FROM_S`` (5 s) to ``playback_min_s`` (the stricter early rule)."""
    dist = folded_distance(scene.array)
    sel = TargetSelector(**settings)
    hits = {w: dict.fromkeys(sources, 0) for w in ("late", "early")}
    n = dict.fromkeys(hits, 0)
    for t, rows in updates:
        sel.update(rows, t)
        w = "late" if t >= sel.playback.min_s else "early" if t >= EARLY_PLAYBACK_FROM_S else None
        if w is not None:
            zones, n[w] = sel.playback_zones(t), n[w] + 1
            for name, az in sources.items():
                hits[w][name] += any(dist(az, z) <= sel.playback.width_deg for z in zones)
    late, early = ({name: h / max(n[w], 1) for name, h in hits[w].items()} for w in ("late", "early"))
    return late, early


def summary(label: str, shares: list[dict], n_linear: int) -> list[str]:
    """Per variant: TVs (mean, min) and people (how many marked more than 5 % of the time, the most); and the same
    over 5-15 s with the default rules (there the variants do not differ: the slot rule is judged after 30 s)."""
    if not shares:
        return [f"{label}: no scene with a circular array ({n_linear} with the linear PS-Eye)"]
    lines = [f"{label} ({len(shares)} scenes with a circular array" + (f"; {n_linear} with the linear PS-Eye left out)"
                                                                     if n_linear else ")")]
    for v in [*VARIANTS, "5-15 s"]:
        tv = [s[v][n] for s in shares for n in s[v] if n.startswith("playback")]
        people = [s[v][n] for s in shares for n in s[v] if not n.startswith("playback")]
        part = f"TV in a zone {np.mean(tv):.0%} of the time (lowest {min(tv):.0%}); " if tv else ""
        marked = sum(p > 0.05 for p in people)
        lines.append(f"  {v:<17} {part}people marked {marked} of {len(people)} "
                     f"(most {max(people):.0%} of the time, all people {np.mean(people):.1%})")
    return lines


def run_set(label: str, rec, seed: int, n: int, speech: str | None = None) -> list[str]:
    shares, n_linear = [], 0
    for i in range(n):
        sc = render_recipe_scene(rec, seed, i, speech=speech)
        sources, updates = record(sc)
        both = {v: zone_shares(sc, sources, updates, **kw) for v, kw in VARIANTS.items()}
        share = {v: late for v, (late, _) in both.items()} | {"5-15 s": both["default"][1]}
        print(label, i, sc.array.name, {v: {k[:8]: round(x, 2) for k, x in s.items()} for v, s in share.items()},
              flush=True)
        if sc.array.is_linear:
            n_linear += 1
        else:
            shares.append(share)
    return summary(label, shares, n_linear)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--target-seed", type=int, default=TARGET_SEED, help="recipe seed of the living rooms")
    ap.add_argument("--min-separation", type=float, default=None,
                    help="talkers and TV at least this far apart (deg) in the living rooms, instead of the recipe's 20")
    ap.add_argument("--living-rooms-only", action="store_true", help="leave out the meetings and monologues")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    n = args.scenes
    lines = ["playback zones: share of localizer updates after 15 s in which a source's direction is a playback zone;",
             "5-15 s: the same over the updates from 5 to 15 s (the default rules: the early update rule only)", ""]
    rooms = "living rooms with a TV" + rooms_title(args.target_seed, args.min_separation)
    rec = target_recipe(args.min_separation)
    lines += run_set(f"{rooms}, espeak voices", rec, args.target_seed, n)
    if (DATA / "speech").is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            real_voice_bank(Path(tmp))
            lines += run_set(f"{rooms}, real voices", rec, args.target_seed, n, speech=tmp)
    if args.living_rooms_only:
        emit(lines, args.out)
        return
    lines += run_set("meetings of 75 s, no TV", variant("meeting_room", duration_s=75.0), 31, n)
    lines += run_set("monologues of 75 s (one person, no TV)",
                     variant("meeting_room", **{"duration_s": 75.0, "talkers.count": 1}), 31, max(1, n * 3 // 4))
    emit(lines, args.out)


if __name__ == "__main__":
    main()
