"""Where the enrolled policy loses the addressee's speech: the first stage of the chain that fails, per block.

The target-selection benchmark (``diarization.py --target-only``) reports how often the target is right and how
much of the addressee's speech it covers (little: 25 % with espeak voices, 3.5 % with real ones on its rooms). This
replays the same living rooms with the ``enrolled`` policy through :class:`~farfield.frontend.Frontend` block by
block and, for every block in which the addressee (talker1) speaks, names the first stage that fails:

- ``no track``: the tracker reports no track within 20 deg of the addressee (on linear arrays, of where they hear
  the addressee: in front, at their angle from the axis, as the benchmark scores);
- ``playback``: every such track is in the target policy's playback zones;
- ``not speech``: none of those tracks has speech for the diarizer now (its VAD, the leakage gate against louder
  streams, or no localizer detection in the last 0.1 s);
- ``not named``: none of those speaking carries the enrolled name yet;
- ``not chosen``: one does, but the target is elsewhere (or nobody);
- ``covered``: the target is on one of them.

    python benchmarks/target_coverage.py [--scenes 8] [--target-seed 5] [--min-separation DEG] [--out FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from _report import emit
from diarization import (TARGET_SEED, WHO_DEG, _own_voice, folded_distance, held_out_voice, source_azimuths,
                         target_recipe)
from farfield.diarize import OnlineDiarizer
from farfield.embed import SpeakerEncoder
from farfield.frontend import Frontend
from farfield.sim.render import render_recipe_scene
from farfield.target import TargetSelector
from scenes import DATA, real_voice_bank

STAGES = ("no track", "playback", "not speech", "not named", "not chosen", "covered")
NAME = "addressee"


def stage(near: list[int], playback: set[int], speaking: dict, target: int | None) -> str:
    """The first failing stage for one block (see the module notes); ``near``: reported tracks near the addressee."""
    if not near:
        return "no track"
    live = [t for t in near if t not in playback]
    if not live:
        return "playback"
    heard = [t for t in live if t in speaking]
    if not heard:
        return "not speech"
    if not any(speaking[t] == NAME for t in heard):
        return "not named"
    return "covered" if target in heard else "not chosen"


def coverage(scene, enc, enrolment: np.ndarray, block_size: int = 1024) -> Counter:
    """Blocks of ``scene`` in which talker1 speaks, counted by :func:`stage`."""
    dia = OnlineDiarizer(scene.sample_rate, encoder=enc)
    dia.enroll(NAME, enrolment, scene.sample_rate)
    fe = Frontend(scene.array, scene.sample_rate, diarizer=dia, target=TargetSelector(enrolled=NAME))
    dist = folded_distance(scene.array)
    where = source_azimuths(scene)["talker1"]
    spoken = [(g.start_s, g.start_s + g.duration_s) for g in scene.segments if g.speaker == "talker1"]
    x = scene.mix.astype(float)
    counts: Counter = Counter()
    for s in range(0, x.shape[1], block_size):
        b = fe.process(x[:, s: s + block_size])
        now = (s + block_size - fe.latency_samples) / scene.sample_rate  # input time the streams have reached
        if not any(a <= now < e for a, e in spoken):
            continue
        near = sorted({r.track_id for r in b.tracks if dist(r.azimuth_deg, where) <= WHO_DEG})
        counts[stage(near, fe.target.playback_tracks, dia.speaking_tracks(), b.target_id)] += 1
    return counts


def report(title: str, rows: list[tuple[str, Counter]]) -> list[str]:
    """Shares of each stage per room and pooled."""
    def shares(c: Counter) -> str:
        n = max(sum(c.values()), 1)
        return "  ".join(f"{c[k] / n:10.1%}" for k in STAGES)

    head = f"{'room':<24}" + "  ".join(f"{k:>10}" for k in STAGES)
    lines = [title, head]
    lines += [f"{name:<24}" + shares(c) for name, c in rows]
    lines.append(f"{'all':<24}" + shares(sum((c for _, c in rows), Counter())))
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--target-seed", type=int, default=TARGET_SEED,
                    help=f"recipe seed of the rooms (default {TARGET_SEED}, those of the target-selection benchmark)")
    ap.add_argument("--min-separation", type=float, default=None, metavar="DEG",
                    help="talkers and TV at least DEG apart in azimuth (the recipe's default is 20 deg)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    enc = SpeakerEncoder()
    rec = target_recipe(args.min_separation)
    apart = "" if args.min_separation is None else f", talkers and TV at least {args.min_separation:g} deg apart"
    lines = [f"addressee's speech (blocks of 64 ms while talker1 speaks) by the first stage that fails, enrolled "
             f"policy, {args.scenes} home_living_room scenes of 75 s with a TV, recipe seed {args.target_seed}{apart}",
             ""]
    rows = []
    for i in range(args.scenes):
        sc = render_recipe_scene(rec, args.target_seed, i)
        rows.append((f"{i} {sc.array.name}", coverage(sc, enc, _own_voice(sc))))
        print(rows[-1], flush=True)
    lines += report("espeak-ng voices (talker1 enrolled from 6 s of its own dry track):", rows)
    if (DATA / "speech").is_dir():
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            enrol = real_voice_bank(Path(tmp))
            for i in range(args.scenes):
                sc = render_recipe_scene(rec, args.target_seed, i, speech=tmp)
                rows.append((f"{i} {sc.array.name}", coverage(sc, enc, held_out_voice(enrol, sc))))
                print(rows[-1], flush=True)
        lines += report("real voices of ../shared/data/speech (talker1 enrolled from held-out audio):", rows)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
