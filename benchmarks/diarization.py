"""Diarization and target selection on simulated rooms, farfield side by side with a single-channel baseline.

DER (collar 0.25 s either side, overlap scored, live talkers only; errors summed over all scenes, divided by all
reference speech, and the mean of the per-scene DER beside it) on
- meetings: the ``meeting_room`` recipe at RT60 0.5 s, 2-4 static seated talkers with turns, overlaps and
  backchannels;
- factory: the ``factory_hall`` recipe with 2-3 static talkers (machines, hammering, sometimes a radio).

farfield = the array front end (tracks, beams) + per-stream Silero VAD + Resemblyzer embeddings + spatial
continuity. Baseline = the same VAD, embeddings and online clustering on the reference mic only (one "track").

Target selection on 75 s ``home_living_room`` scenes with a TV, per policy: ``enrolled`` (talker1 enrolled from 6 s
of their voice), ``trigger`` (``require_trigger=True`` and a cue 0.3 s before each turn of talker1 that nobody else
starts near, like a glance or a button before each request), ``wake word`` (the same turns, each opened by a 0.6 s
wake word: the trigger comes when it ends, with its start), ``gaze`` (the trigger's cues, each with talker1's true
azimuth and elevation as its direction: a camera that sees who looks at the device), ``nearest`` (no prior; the
addressee is the talker nearest the array; the selector's start-up wait holds: nobody is the target by level alone
in the first 5 s, nor until 15 s a voice heard nearly all the time) and ``sector`` (talker1's true azimuth +- the
recipe's least spacing of sources, 20 deg, as for a device that turns to face the person it talks with: aimed
exactly, the sector holds nobody else). The target is a track: each target segment (target.rttm) is given to the
true source nearest its track's direction (on a linear array, where that array hears each source:
``ArrayGeometry.in_front`` of its azimuth and elevation); reported are the fraction of target time on the
addressee's track while they speak (also with the DER collar: target time within 0.25 s of a boundary of the
addressee's turns not scored, since a segment's edges lag the speech by the localizer's smoothing and the VAD), the
fraction on the addressee's track at all (also counting the VAD's hangover after their words and the short pauses
inside a segment), the fraction on the TV's track, and how much of the addressee's speech the target covers.
(Counting target time that merely overlaps TV speech would score any target high: the TV talks most of the time.)
Also the label delay and the real-time factor of the whole chain (front end, Silero VAD, Resemblyzer embeddings):
over the DER scenes with the machine's 2 cores, and on one core (numba and torch limited to one thread) over the
first two meetings.

The target selection runs twice: with espeak-ng voices (talker1 enrolled from its own dry track in the scene), and,
when ../shared/data/speech is there, on the same recipe with the real voices of its 9 people (talkers and TV
presenters all different people; talker1 enrolled from held-out audio of the same person, never played in the room).
Per scene the pipeline runs twice: once with talker1 enrolled (the enrolled policy), and once for all the other
policies, whose selectors are replayed on what that run fed its target policy (``SelectorTrace``; the same figures as a
run of each policy on its own, to the last digit, since nothing upstream of the selector depends on the policy).

    python benchmarks/diarization.py [--scenes 4] [--out benchmarks/results/diarization.txt]
    python benchmarks/diarization.py --one-core-only    # just the one-core real-time factor
    python benchmarks/diarization.py --real-voices-only # just the target selection with real voices
    python benchmarks/diarization.py --target-only      # just the target selection, espeak and real voices
    python benchmarks/diarization.py --target-only --target-seed 6  # ... on held-out rooms
    python benchmarks/diarization.py --target-only --min-separation 30  # ... talkers and TV 30 deg apart, not 20
    python benchmarks/diarization.py --target-only --selector trigger_window_s=0.8  # ... a TargetSelector option
    python benchmarks/diarization.py --target-only --policy sector  # ... one policy only (repeatable)
    (add --postfilter to run the target selection with the separator's post-filter on, and --localizer NAME=VALUE
    to run it with a Localizer option instead of its default)
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from _report import emit, option  # noqa: E402
from scenes import DATA, real_voice_bank
from farfield.diarize import OnlineDiarizer
from farfield.embed import SpeakerEncoder
from farfield.frontend import Cue, FrontendBlock, _cue, process, target_segments
from farfield.geometry import azimuth_difference_deg
from farfield.metrics import diarization_error_rate
from farfield.sim.recipe import load_recipe, parse_recipe
from farfield.sim.render import render_recipe_scene
from farfield.target import TargetSelector
from farfield.track import TrackRow


def variant(name: str, **changes) -> object:
    import copy

    spec = copy.deepcopy(load_recipe(name).spec)
    for path, value in changes.items():
        sec, _, key = path.rpartition(".")
        (spec[sec] if sec else spec)[key] = value
    return parse_recipe(_unparse(spec), f"{name} variant")


def _unparse(spec: dict) -> dict:
    """A parsed recipe back to TOML-shaped data (defaults included, which is allowed)."""
    out = {k: v for k, v in spec.items() if k not in ("noise",) and v is not None}
    for sec in ("room", "array", "talkers", "conversation", "mix", "output"):
        out[sec] = {k: v for k, v in spec[sec].items() if v is not None}
    out["noise"] = [{k: v for k, v in n.items() if v is not None} for n in spec["noise"]]
    return out


def reference(scene, live_only: bool = True):
    return [(g.speaker, g.start_s, g.duration_s) for g in scene.segments
            if not (live_only and g.speaker.startswith("playback_"))]


def single_channel(scene, encoder) -> list:
    d = OnlineDiarizer(scene.sample_rate, encoder=encoder)
    x = scene.mix[0].astype(np.float64)
    segs = []
    for s in range(0, x.size, 1024):
        segs += d.process(FrontendBlock([TrackRow(s / scene.sample_rate, 0, 0.0, 0.0, 0.0)],
                                        {0: [(s, x[s: s + 1024])]}))[0]
    segs += d.flush(x.size / scene.sample_rate)[0]
    return [(g.speaker, g.start_s, g.end_s - g.start_s) for g in segs]


def run_array(scene, encoder, frontend: dict | None = None) -> tuple:
    """The whole chain with the diarizer on ``scene``: ``(result, diarizer, wall seconds)``; ``frontend``: options
    of :func:`~farfield.frontend.process`, and ``diarizer_options`` of the :class:`OnlineDiarizer`
    (``selector_options`` do not apply: no target selector here)."""
    frontend = dict(frontend or {})
    frontend.pop("selector_options", None)
    dia = OnlineDiarizer(scene.sample_rate, encoder=encoder, **frontend.pop("diarizer_options", {}))
    t = time.perf_counter()
    res = process(scene.mix.astype(float), scene.sample_rate, scene.array, diarizer=dia, **frontend)
    return res, dia, time.perf_counter() - t


WHO_DEG = 20.0
COLLAR_S = 0.25  # target scoring's collar around the addressee's turn boundaries (the DER collar)
TARGET_SCENE_S = 75.0
MEETING = {"room.rt60_s": 0.5, "duration_s": 25.0}  # changes to the meeting_room recipe: the DER meetings
WAKE_WORD_S = 0.6
PLAYBACK_MIN_S = TargetSelector().playback.min_s


def pooled(scores: list, part: str) -> float:
    """A DER part over all scenes together (errors summed over the summed reference time, as pyannote.metrics
    accumulates it over files)."""
    return sum(getattr(d, part) * d.total_s for d in scores) / max(sum(d.total_s for d in scores), 1e-9)


def nearest_talker(scene) -> str:
    """The live talker closest to the array (the addressee of the ``nearest`` policy)."""
    dist = {p[1]: p[8] for p in scene.positions if p[2] == "talker"}
    return min(dist, key=dist.get)


def trigger_times(scene, addressee: str, before_s: float = 0.3, min_gap_s: float = 3.0) -> list[float]:
    """A cue ``before_s`` before each turn of ``addressee`` that nobody else starts near (no other source starts
    from 1 s before that turn to 0.5 s after it), at least ``min_gap_s`` apart: a wake word or a glance before
    each request, after which "whoever speaks first" is the addressee. Detected onsets lag true ones by the
    tracker's birth and the VAD, so a cue between two onsets a few tenths of a second apart would be a coin toss.
    Empty when no turn is that clear: the trigger policies then choose nobody in the scene."""
    others = [g.start_s for g in scene.segments if g.speaker != addressee]
    cues: list[float] = []
    for g in sorted(scene.segments, key=lambda g: g.start_s):
        if (g.speaker == addressee and g.start_s >= 1.0 and (not cues or g.start_s - before_s - cues[-1] >= min_gap_s)
                and not any(g.start_s - 1.0 <= o <= g.start_s + 0.5 for o in others)):
            cues.append(g.start_s - before_s)
    return cues


def source_directions(scene) -> dict[str, tuple[float, float]]:
    """The scene's true non-noise sources ``{name: (azimuth_deg, elevation_deg)}`` in the array's frame (where each
    first is)."""
    sources: dict[str, tuple[float, float]] = {}
    for p in scene.positions:
        if p[2] != "noise":
            sources.setdefault(p[1], (p[6], p[7]))
    return sources


def source_azimuths(scene) -> dict[str, float]:
    """``{name: azimuth_deg}`` of the true non-noise sources where the array hears them: their azimuth, and on a
    linear array the direction in front of it at the same angle from its axis (``ArrayGeometry.in_front``: a
    linear array cannot tell the directions on that cone apart)."""
    return {name: scene.array.in_front(az, el) for name, (az, el) in source_directions(scene).items()}


def folded_distance(array):
    """``dist(a, b)`` in degrees between two azimuths; on a linear array the smaller of it and the distance to
    b's mirror image across the array axis (such arrays cannot tell them apart)."""
    axis = array.front_deg - 90.0 if array.is_linear else None

    def dist(a: float, b: float) -> float:
        d = azimuth_difference_deg(a, b)
        return min(d, azimuth_difference_deg(a, 2 * axis - b)) if axis is not None else d

    return dist


def sector_on(scene, half_width_deg: float, name: str = "talker1") -> tuple[float, float]:
    """The ``sector`` policy's ``(centre_az_deg, half_width_deg)`` for a device that faces ``name``: centred on
    their true azimuth (on a linear array, where it hears them: in front of it, at their angle from its axis, as
    its tracks are)."""
    return source_azimuths(scene)[name], half_width_deg


def _overlap(a: float, b: float, spans: list) -> float:
    """Seconds of ``[a, b)`` inside the disjoint ``spans`` ``[(start, end), ...]``."""
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e in spans)


def _unscored(spoken: list, collar_s: float) -> list:
    """The collars: ``collar_s`` either side of each boundary of the ``spoken`` turns, merged into disjoint spans."""
    out: list = []
    for s, e in sorted((t - collar_s, t + collar_s) for turn in spoken for t in turn):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def score_target(scene, res, addressee: str, after_s: float = 0.0) -> tuple[float, ...]:
    """(seconds of target time on the addressee's track while they speak, seconds on the TV's track, target
    seconds, seconds the addressee speaks, target seconds on the addressee's track, and the first and third again
    with a collar: target time within COLLAR_S of a boundary of the addressee's turns left out, as DER scoring
    leaves it out), counting from ``after_s``. Each target segment is given to the source nearest the mean azimuth
    of its track during the segment, if within WHO_DEG. The fifth figure also counts the VAD's hangover after the
    addressee's words and the short pauses inside a segment, while the first counts only the time they speak."""
    dist = folded_distance(scene.array)
    sources = source_azimuths(scene)
    spoken = [(max(g.start_s, after_s), g.start_s + g.duration_s) for g in scene.segments
              if g.speaker == addressee and g.start_s + g.duration_s > after_s]
    collars = _unscored([(g.start_s, g.start_s + g.duration_s) for g in scene.segments if g.speaker == addressee],
                        COLLAR_S)
    right = tv = total = on_track = right_c = total_c = 0.0
    for g in res.target_segments:
        if g.end_s <= after_s:
            continue
        g = dataclasses.replace(g, start_s=max(g.start_s, after_s))
        total += g.end_s - g.start_s
        total_c += g.end_s - g.start_s - _overlap(g.start_s, g.end_s, collars)
        mean = track_azimuth(res, g)
        who = None if mean is None else nearest_source(sources, dist, mean)
        if who is None:
            continue
        if who == addressee:
            heard = _overlap(g.start_s, g.end_s, spoken)
            right += heard
            # ... less the part of it inside the collars (each turn's share of the segment, clipped)
            right_c += heard - sum(_overlap(max(a, g.start_s), min(b, g.end_s), collars) for a, b in spoken)
            on_track += g.end_s - g.start_s
        elif who.startswith("playback"):
            tv += g.end_s - g.start_s
    return right, tv, total, sum(b - a for a, b in spoken), on_track, right_c, total_c


def track_azimuth(res, segment) -> float | None:
    """Mean azimuth (deg) of ``segment``'s track over the segment and 0.5 s either side; ``None`` when the track has
    no rows then."""
    az = [r.azimuth_deg for r in res.tracks
          if r.track_id == segment.track_id and segment.start_s - 0.5 <= r.time_s <= segment.end_s + 0.5]
    return float(np.degrees(np.angle(np.mean(np.exp(1j * np.radians(az)))))) if az else None


def nearest_source(sources: dict[str, float], dist, azimuth_deg: float) -> str | None:
    """The source of ``sources`` (:func:`source_azimuths`) nearest ``azimuth_deg`` by ``dist``
    (:func:`folded_distance`), or ``None`` when none is within WHO_DEG."""
    who = min(sources, key=lambda n: dist(azimuth_deg, sources[n]))
    return who if dist(azimuth_deg, sources[who]) <= WHO_DEG else None


def target_recipe(min_separation_deg: float | None = None):
    """75 s living rooms with a TV (a TV "plays for a long time"; playback zones need 15 s of history);
    ``min_separation_deg``: talkers and TV at least this far apart in azimuth instead of the recipe's 20 deg."""
    more = {} if min_separation_deg is None else {"talkers.min_separation_deg": float(min_separation_deg)}
    return variant("home_living_room", **{"talkers.count": [2, 3], "talkers.walking_prob": 0.0,
                                          "duration_s": TARGET_SCENE_S}, **more)


def held_out_voice(enrolment: dict[str, np.ndarray], scene) -> np.ndarray:
    """talker1's enrolment on real-voice scenes: its person's held-out audio from ``scenes.real_voice_bank``."""
    talker1 = next(s for s in scene.sources if s.name == "talker1")
    return enrolment[talker1.params["voice"]["speaker"]]


def _own_voice(scene) -> np.ndarray:
    """talker1's enrolment on espeak scenes: the first 6 s of voiced samples of its dry track."""
    talker1 = next(s for s in scene.sources if s.name == "talker1")
    voiced = talker1.dry[np.abs(talker1.dry) > 1e-4]
    return voiced[: 6 * scene.sample_rate]


POLICIES = ("enrolled", "trigger", "wake word", "gaze", "nearest", "sector")
CUED = ("trigger", "wake word", "gaze")  # the policies that take cues (require_trigger=True)


class SelectorTrace:
    """What a :class:`~farfield.frontend.Frontend` feeds its target policy in one run, to replay other policies on it.

    It stands in as the run's target policy and passes every call on to ``selector`` (whose playback zones the
    diarizer is given, as in a live run). Per block: the ``update(rows, time_s)`` calls and the ``observe`` call, in
    order. Nothing the front end or the diarizer does depends on the policy otherwise (the playback zones depend only on
    the track rows and the playback settings), so :meth:`replay` gives what a run with another selector would: the
    pipeline (localizer, tracker, beams, VAD, embeddings) runs once for all the policies that share a diarizer."""

    def __init__(self, selector: TargetSelector) -> None:
        self.selector = selector
        self.blocks: list[list[tuple]] = [[]]

    def reset(self) -> None:
        self.selector.reset()
        self.blocks = [[]]

    @property
    def playback_tracks(self) -> set[int]:
        return self.selector.playback_tracks

    @property
    def target(self):
        return self.selector.target

    def update(self, rows, time_s: float):
        self.blocks[-1].append(("update", rows, time_s))
        return self.selector.update(rows, time_s)

    def observe(self, speaking_tracks: dict) -> None:
        self.blocks[-1].append(("observe", dict(speaking_tracks)))
        self.selector.observe(speaking_tracks)

    def pop_events(self) -> list:
        self.blocks.append([])  # the front end pops the events at the end of every block
        return self.selector.pop_events()

    def replay(self, res, array, selector: TargetSelector, cues=()):
        """``res`` (the recorded run's :class:`~farfield.frontend.ProcessResult` on ``array``) as ``process(...,
        target=selector, triggers=cues)`` would have given it: the cues are delivered before the block that holds
        their time, as ``process`` does; the events are the recorded run's without its ``target_changed`` events and
        with the replayed ones, and the target segments are cut from the recorded run's speaker segments (the
        target's audio is left as recorded)."""
        sr, block_size = res.sample_rate, res.settings["block_size"]
        pending = sorted((_cue(c) for c in cues), key=lambda c: c.time_s)
        events = []
        for k, calls in enumerate(self.blocks):
            while pending and pending[0].time_s * sr < (k + 1) * block_size:
                c = pending.pop(0)
                direction = c.direction_deg
                if direction is not None and res.settings["grid"] == "half-circle":
                    # as Frontend.trigger turns it for a linear array
                    direction = array.in_front(direction, c.elevation_deg or 0.0)
                selector.trigger(c.time_s, spoken_from_s=c.spoken_from_s, direction_deg=direction)
            for call in calls:
                if call[0] == "update":
                    selector.update(call[1], call[2])
                else:
                    selector.observe(call[1])
            events += selector.pop_events()
        end_s = len(res.target) / sr
        kept = [e for e in res.events if e.type != "target_changed"]
        return dataclasses.replace(res, events=sorted(kept + events, key=lambda e: e.time_s),
                                   target_segments=target_segments(res.segments, events, end_s))


def policy_setup(scene, policy: str, selector: dict, min_separation_deg: float,
                 end_s: float) -> tuple[dict, str, list]:
    """How the benchmark runs ``policy`` on ``scene`` (``end_s`` long): the :class:`TargetSelector` options
    (``selector`` and the policy's own), the addressee it is scored against, and the cues it is given."""
    kw = dict(selector)
    addressee = nearest_talker(scene) if policy == "nearest" else "talker1"
    if policy == "sector":
        # as wide as the recipe's least spacing of sources: aimed at talker1, it holds nobody else
        kw["sector"] = sector_on(scene, min_separation_deg)
    cues = trigger_times(scene, "talker1") if policy in CUED else []
    if policy == "wake word":  # the same clear turns, each opened by a WAKE_WORD_S wake word (not a turn that
        # starts too near the end of the scene for its wake word to finish)
        cues = [(c + 0.3, c + 0.3 + WAKE_WORD_S) for c in cues if c + 0.3 + WAKE_WORD_S <= end_s]
    if policy == "gaze":  # the trigger's cues, each saying where talker1 is (a camera that sees them; the front
        # end turns the direction into where a linear array hears them)
        az, el = source_directions(scene)["talker1"]
        cues = [Cue(c, direction_deg=az, elevation_deg=el) for c in cues]
    if policy in CUED:
        kw["require_trigger"] = True
    return kw, addressee, cues


def target_selection(rec, seed: int, n_scenes: int, enc, enrolment, speech: str | None = None,
                     frontend: dict | None = None, policies: tuple[str, ...] = POLICIES):
    """Every policy on scenes ``0..n_scenes-1`` of ``rec``: per policy, a list of :func:`score_target` tuples for
    whole scenes and from ``PLAYBACK_MIN_S``; and per scene whether its array is linear. ``enrolment(scene)``
    gives talker1's enrolment audio; ``frontend``: options of :func:`~farfield.frontend.process` (such as
    ``localizer_options``), ``selector_options`` for every policy's :class:`TargetSelector` and
    ``diarizer_options`` for the :class:`OnlineDiarizer`. The policies other than ``enrolled`` (whose diarizer knows
    talker1's voice) share one run of the pipeline (:class:`SelectorTrace`)."""
    frontend = dict(frontend or {})
    selector = frontend.pop("selector_options", {})
    diarizer = frontend.pop("diarizer_options", {})
    stats: dict[str, list] = {p: [] for p in policies}
    late: dict[str, list] = {p: [] for p in stats}
    linear: list[bool] = []  # per scene: the array is linear (the PS-Eye: 4 mics on 6 cm, mirror images)
    for i in range(n_scenes):
        sc = render_recipe_scene(rec, seed, i, speech=speech)
        linear.append(sc.array.is_linear)
        trace = shared = None
        for policy in stats:
            kw, addressee, cues = policy_setup(sc, policy, selector, rec.spec["talkers"]["min_separation_deg"],
                                               sc.mix.shape[1] / sc.sample_rate)
            if policy == "trigger" and not cues:
                print(f"target {i}: no turn of talker1 is clear of other onsets: no cue, the trigger and wake word "
                      f"choose nobody", flush=True)
            if policy == "enrolled":
                dia = OnlineDiarizer(sc.sample_rate, encoder=enc, **diarizer)
                dia.enroll("addressee", enrolment(sc), sc.sample_rate)
                res = process(sc.mix.astype(float), sc.sample_rate, sc.array, diarizer=dia,
                              target=TargetSelector(**kw, enrolled="addressee"), **frontend)
            else:
                if trace is None:
                    trace = SelectorTrace(TargetSelector(**selector))
                    shared = process(sc.mix.astype(float), sc.sample_rate, sc.array,
                                     diarizer=OnlineDiarizer(sc.sample_rate, encoder=enc, **diarizer), target=trace,
                                     **frontend)
                res = trace.replay(shared, sc.array, TargetSelector(**kw), cues)
            stats[policy].append(score_target(sc, res, addressee))
            late[policy].append(score_target(sc, res, addressee, after_s=PLAYBACK_MIN_S))
        print("target", i, sc.array.name, {p: tuple(round(x, 1) for x in v[-1]) for p, v in stats.items()}, flush=True)
    return stats, late, linear


def target_report(stats: dict, late: dict, linear: list, n_scenes: int, enrolment: str,
                  title: str = "target selection, home_living_room with a TV") -> list[str]:
    lines = ["", f"{title}, {n_scenes} scenes of {TARGET_SCENE_S:.0f} s "
             f"(addressee: talker1 for enrolled, trigger, wake word, gaze and sector, the nearest talker for nearest; "
             f"enrolled: {enrolment}; trigger: a cue 0.3 s before each clear turn of talker1; wake word: the first "
             f"{WAKE_WORD_S} s of those turns are a wake word; gaze: the trigger's cues with talker1's true azimuth "
             f"and elevation as their direction; all three with require_trigger=True; sector: talker1's true "
             f"azimuth +- the recipe's least spacing of sources, as for a device that faces them). A target segment "
             f"belongs to the source nearest its track's mean azimuth (within {WHO_DEG:.0f} deg; on linear "
             f"arrays, where they hear each source: in front, at its angle from their axis). "
             f"Whole scenes, and [after the first {PLAYBACK_MIN_S:.0f} s, once playback zones can be "
             f"judged]:"]
    for policy in stats:
        parts = []
        for v in (stats[policy], late[policy]):
            right, tv, tot, spoken, on_track, right_c, tot_c = (sum(x[k] for x in v) for k in range(7))
            parts.append((right / max(tot, 1e-9), on_track / max(tot, 1e-9), tv / max(tot, 1e-9), tot,
                          right / max(spoken, 1e-9), right_c / max(tot_c, 1e-9)))
        (r, o, t, tot, c, rc), (r2, o2, t2, tot2, c2, rc2) = parts
        lines.append(f"  {policy:<9} target time right {r:.1%} [{r2:.1%}], with a {COLLAR_S} s collar {rc:.1%} "
                     f"[{rc2:.1%}] (on the addressee's track {o:.1%} [{o2:.1%}]), on the TV {t:.1%} [{t2:.1%}] of "
                     f"{tot:.0f} [{tot2:.0f}] s of target speech; addressee's speech covered {c:.1%} [{c2:.1%}]")
    circ = [i for i, lin in enumerate(linear) if not lin]
    if len(circ) < len(linear):
        lines.append(f"  on the {len(circ)} scenes with a circular array (the others have the linear PS-Eye, whose "
                     f"4 mics on 6 cm put most sources in one cone), whole scenes:")
        for policy in stats:
            right, tv, tot, spoken, on_track, right_c, tot_c = (sum(stats[policy][i][k] for i in circ)
                                                                for k in range(7))
            lines.append(f"    {policy:<9} target time right {right / max(tot, 1e-9):.1%}, with the collar "
                         f"{right_c / max(tot_c, 1e-9):.1%}, on the addressee's track {on_track / max(tot, 1e-9):.1%}, "
                         f"on the TV {tv / max(tot, 1e-9):.1%} of {tot:.0f} s; addressee's speech covered "
                         f"{right / max(spoken, 1e-9):.1%}")
    return lines


def _settings(frontend: dict | None) -> str:
    """Report-title suffix naming non-default separator, localizer, tracker, diarizer and selector options."""
    parts = [f"{part}: " + ", ".join(f"{k}={v!r}" for k, v in frontend[f"{part}_options"].items())
             for part in ("separator", "localizer", "tracker", "diarizer", "selector")
             if (frontend or {}).get(f"{part}_options")]
    return f" ({'; '.join(parts)})" if parts else ""


TARGET_SEED = 5  # recipe seed of the target-selection rooms that the selector's settings were chosen on


def rooms_title(seed: int, min_sep: float | None = None) -> str:
    """Report-title suffix naming rooms other than the default ones."""
    out = "" if seed == TARGET_SEED else f" (recipe seed {seed}: rooms the settings were not chosen on)"
    return out + ("" if min_sep is None else f" (talkers and TV at least {min_sep:g} deg apart, not 20)")


def espeak_voice_report(n_scenes: int, enc, frontend: dict | None = None, seed: int = TARGET_SEED,
                        min_sep: float | None = None, policies: tuple[str, ...] = POLICIES) -> list[str]:
    """Target selection on the living rooms with espeak-ng voices, talker1 enrolled from its own dry track."""
    result = target_selection(target_recipe(min_sep), seed, n_scenes, enc, _own_voice, frontend=frontend,
                              policies=policies)
    return target_report(*result, n_scenes, "talker1 enrolled from 6 s of the scene's own dry track",
                         title="target selection, home_living_room with a TV" + rooms_title(seed, min_sep)
                               + _settings(frontend))


def real_voice_report(n_scenes: int, enc, frontend: dict | None = None, seed: int = TARGET_SEED,
                      min_sep: float | None = None, policies: tuple[str, ...] = POLICIES) -> list[str]:
    """Target selection on the same living rooms with the real voices of ../shared/data/speech (talkers and TV
    presenters, all different people), talker1 enrolled from held-out audio of the same person."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        enrol = real_voice_bank(Path(tmp))
        result = target_selection(target_recipe(min_sep), seed, n_scenes, enc, partial(held_out_voice, enrol),
                                  speech=tmp, frontend=frontend, policies=policies)
    return target_report(*result, n_scenes, "talker1 enrolled from held-out audio (their first file, or the first "
                         "4 s of their one file; the room plays the rest)",
                         title="target selection with the real voices of ../shared/data/speech (9 people; "
                               "talkers and TV presenters all different), same rooms" + rooms_title(seed, min_sep)
                               + _settings(frontend))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--one-core-only", action="store_true", help="only measure the one-core real-time factor")
    ap.add_argument("--real-voices-only", action="store_true",
                    help="only the target selection with the real voices of ../shared/data/speech")
    ap.add_argument("--target-only", action="store_true",
                    help="only the target selection (espeak voices, then real voices when ../shared/data/speech is "
                         "there)")
    ap.add_argument("--der-only", action="store_true",
                    help="only the DER, label delay and real-time factors (no target selection: see --target-only)")
    ap.add_argument("--postfilter", action="store_true",
                    help="the separator's post-filter on (Separator(postfilter=True)); the one-core real-time "
                         "factor keeps the defaults")
    ap.add_argument("--localizer", action="append", default=[], metavar="NAME=VALUE", type=option,
                    help="a Localizer option instead of its default, e.g. weak_free_weight=0.1 (repeatable); the "
                         "one-core real-time factor keeps the defaults")
    ap.add_argument("--tracker", action="append", default=[], metavar="NAME=VALUE", type=option,
                    help="a Tracker option instead of its default, e.g. measurement_noise_deg=12 (repeatable); the "
                         "one-core real-time factor keeps the defaults")
    ap.add_argument("--diarizer", action="append", default=[], metavar="NAME=VALUE", type=option,
                    help="an OnlineDiarizer option instead of its default, e.g. split_moved_deg=None (repeatable); the "
                         "one-core real-time factor keeps the defaults")
    ap.add_argument("--walkers", action="store_true",
                    help="DER on scenes with walking talkers instead of the meetings and factory halls: living rooms "
                         "(with a TV) where every talker walks, and warehouses (workers often walking)")
    ap.add_argument("--selector", action="append", default=[], metavar="NAME=VALUE", type=option,
                    help="a TargetSelector option instead of its default for every policy, e.g. trigger_window_s=0.8 "
                         "(repeatable; target selection only)")
    ap.add_argument("--target-seed", type=int, default=TARGET_SEED,
                    help=f"recipe seed of the target-selection rooms (default {TARGET_SEED}, the rooms the selector's "
                         f"settings were chosen on; another seed gives held-out rooms)")
    ap.add_argument("--min-separation", type=float, default=None, metavar="DEG",
                    help="target-selection rooms with talkers and TV at least DEG apart in azimuth (the recipe's "
                         "default is 20 deg, closer than the small arrays resolve; the localization benchmark's "
                         "rooms use 40; 40 cannot place every room of the recipe)")
    ap.add_argument("--policy", action="append", choices=POLICIES, default=None,
                    help="target selection: only this policy (repeatable; default: all of them)")
    args = ap.parse_args()
    frontend = {"separator_options": {"postfilter": True} if args.postfilter else {},
                "localizer_options": dict(args.localizer), "tracker_options": dict(args.tracker),
                "selector_options": dict(args.selector), "diarizer_options": dict(args.diarizer)}
    rooms = (args.target_seed, args.min_separation, tuple(args.policy or POLICIES))  # which rooms and policies
    warnings.simplefilter("ignore")
    enc = SpeakerEncoder()
    if args.one_core_only:
        emit([one_core_rtf(enc)], args.out)
        return
    if args.real_voices_only:
        emit(real_voice_report(args.scenes, enc, frontend, *rooms), args.out)
        return
    real = (DATA / "speech").is_dir()
    if args.target_only:
        lines = espeak_voice_report(args.scenes, enc, frontend, *rooms)
        emit(lines + (real_voice_report(args.scenes, enc, frontend, *rooms) if real else []), args.out)
        return
    lines = ["diarization" + ("" if args.der_only else " and target selection") + " (simulated rooms, espeak-ng voices"
             + (", walking talkers" if args.walkers else "") + ")" + _settings(frontend), ""]
    rtfs, delays = [], []
    for label, rec in der_scenes(args.walkers):
        ours, base = [], []
        for i in range(args.scenes):
            sc = render_recipe_scene(rec, 11, i)
            ref = reference(sc)
            res, dia, wall = run_array(sc, enc, frontend)
            rtfs.append(wall / sc.params["duration_s"])
            delays += dia.label_delays_s
            hyp = [(g.speaker, g.start_s, g.end_s - g.start_s) for g in res.segments]
            ours.append(diarization_error_rate(ref, hyp))
            base.append(diarization_error_rate(ref, single_channel(sc, enc)))
            print(label, i, f"farfield DER {ours[-1].der:.3f}  single-channel {base[-1].der:.3f}", flush=True)
        lines.append(f"{label:<18} DER farfield {pooled(ours, 'der'):.1%} (miss {pooled(ours, 'missed'):.1%}, FA "
                     f"{pooled(ours, 'false_alarm'):.1%}, confusion {pooled(ours, 'confusion'):.1%})   single-channel "
                     f"baseline {pooled(base, 'der'):.1%}   ratio "
                     f"{pooled(ours, 'der') / max(pooled(base, 'der'), 1e-9):.2f}"
                     f"   ({args.scenes} scenes; mean of per-scene DER {np.mean([d.der for d in ours]):.1%} vs "
                     f"{np.mean([d.der for d in base]):.1%})")
    if not args.der_only:
        lines += espeak_voice_report(args.scenes, enc, frontend, *rooms)
        if real:
            lines += real_voice_report(args.scenes, enc, frontend, *rooms)
    lines.append("")
    lines.append(f"label delay (speech start -> label): mean {np.mean(delays):.2f} s, 90th percentile "
                 f"{np.percentile(delays, 90):.2f} s; real-time factor of the whole chain with "
                 f"{'the energy' if frontend.get('diarizer_options', {}).get('vad') == 'energy' else 'Silero'} VAD and "
                 f"embeddings (2 cores): mean {np.mean(rtfs):.2f}, max {np.max(rtfs):.2f}")
    lines.append(one_core_rtf(enc))
    emit(lines, args.out)


def der_scenes(walkers: bool = False) -> tuple:
    """The DER's scene recipes with their labels: meetings and factory halls with static talkers; ``walkers``:
    living rooms with a TV where every talker walks (the TV's speech is not in the reference, so a TV labelled as a
    speaker is a false alarm), and warehouses (the recipe's workers, half of them walking)."""
    if walkers:
        return (("living room, walking", variant("home_living_room", **{"talkers.count": [2, 3],
                                                                         "talkers.walking_prob": 1.0,
                                                                         "duration_s": 25.0})),
                ("warehouse", variant("warehouse", duration_s=25.0)))
    return (("meeting RT60 0.5", variant("meeting_room", **MEETING)),
            ("factory hall", variant("factory_hall", **{"talkers.count": [2, 3], "talkers.walking_prob": 0.0,
                                                        "duration_s": 25.0})))


def one_core_rtf(encoder) -> str:
    """Real-time factor of the whole chain on one core (numba and torch limited to one thread), first two
    meetings; the thread limits stay set afterwards, so call it last."""
    import numba
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    rec = variant("meeting_room", **MEETING)
    rtfs = []
    for i in range(2):
        sc = render_recipe_scene(rec, 11, i)
        rtfs.append(run_array(sc, encoder)[2] / sc.params["duration_s"])
    return (f"real-time factor on one core (numba and torch: 1 thread), meetings 0-1: "
            f"{', '.join(f'{r:.2f}' for r in rtfs)}")


if __name__ == "__main__":
    main()
