"""Render one scene of a recipe: draw every parameter, render the room, mix, and build exact labels.

``render_recipe_scene(recipe, seed, index)`` depends only on ``(recipe, seed, index)``: the random generator is
``np.random.default_rng([seed, index])`` and is used in a fixed order, so scene ``index`` renders identically
alone, in any order and in any process.

Levels (all powers are means over mics and over the samples where at least one live talker is active, as
labelled in the RTTM): ``snr_db`` = talkers / all noise (point, diffuse, background talkers, mic self-noise);
a playback source's ``sir_db`` = talkers / that playback source over its own active samples.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from ..geometry import SPEED_OF_SOUND, ArrayGeometry, load_array, unit_to_az_el
from .noise import POINT_NOISES, coloured_noise, diffuse_noise
from .recipe import DIFFUSE_TYPES, PLAYBACK_TYPES, Recipe, draw_value, load_recipe
from .room import calibrated_absorption, compute_rirs, convolve_rirs, measure_rt60, mics_in_room, to_array_frame
from .voices import Voice, _resample, speech_bank

WALL_MARGIN_M = 0.3
"""Closest a source may come to a wall (m)."""


class SceneError(ValueError):
    """A scene that cannot be built from its recipe (e.g. no room position fits the asked distances)."""


@dataclass(frozen=True)
class Segment:
    """One RTTM segment: ``speaker`` active from ``start_s`` for ``duration_s`` (seconds at the array)."""

    speaker: str
    start_s: float
    duration_s: float


@dataclass
class Source:
    """A rendered source. ``trajectory``: ``(n_waypoints, 3)`` room positions at ``waypoint_times_s``."""

    name: str
    kind: str  # talker | playback | noise | background
    dry: np.ndarray
    trajectory: np.ndarray
    waypoint_times_s: np.ndarray
    segments: list[Segment] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    image: np.ndarray | None = None  # (n_mics, samples)
    direct: np.ndarray | None = None  # (samples,) at the reference mic


@dataclass
class Scene:
    """A rendered scene: audio ``(n_mics, samples)`` float32 plus labels and every drawn parameter."""

    name: str
    sample_rate: int
    array: ArrayGeometry
    mix: np.ndarray
    noise: np.ndarray
    sources: list[Source]
    noise_images: dict[str, np.ndarray]
    positions: list[tuple]
    params: dict

    @property
    def segments(self) -> list[Segment]:
        return sorted((s for src in self.sources for s in src.segments), key=lambda s: (s.start_s, s.speaker))


# --- drawing ------------------------------------------------------------------------------------------------------

def _place(rng: np.random.Generator, room: np.ndarray, centre: np.ndarray, distance, height, what: str,
           avoid_az: list[float] = (), min_sep_deg: float = 0.0) -> np.ndarray:
    """A room position at a drawn horizontal distance from ``centre``, inside the walls, apart from ``avoid_az``."""
    for _ in range(400):
        d, h, az = draw_value(distance, rng), draw_value(height, rng), rng.uniform(0, 360)
        p = np.array([centre[0] + d * np.cos(np.deg2rad(az)), centre[1] + d * np.sin(np.deg2rad(az)), h])
        if np.all(p[:2] > WALL_MARGIN_M) and np.all(p[:2] < room[:2] - WALL_MARGIN_M) and 0 < h < room[2]:
            if all(abs((az - a + 180) % 360 - 180) >= min_sep_deg for a in avoid_az):
                return p
    raise SceneError(f"cannot place {what} at distance {distance} m from the array in a "
                     f"{room[0]:.1f} x {room[1]:.1f} m room (array at {centre[0]:.1f}, {centre[1]:.1f}) "
                     f"{'with ' + str(min_sep_deg) + ' deg separation ' if avoid_az else ''}after 400 tries")


def _walk(rng: np.random.Generator, start: np.ndarray, speed: float, times: np.ndarray, room: np.ndarray,
          array_xy: np.ndarray) -> np.ndarray:
    """Straight walk at ``speed`` m/s that turns away from walls and from the array (>= 0.5 m)."""
    pos = np.empty((times.size, 3))
    pos[0] = start
    heading = rng.uniform(0, 2 * np.pi)
    for k in range(1, times.size):
        step = speed * (times[k] - times[k - 1])
        for _ in range(50):
            heading += rng.normal(0, 0.15)
            p = pos[k - 1] + step * np.array([np.cos(heading), np.sin(heading), 0.0])
            if (np.all(p[:2] > WALL_MARGIN_M) and np.all(p[:2] < room[:2] - WALL_MARGIN_M)
                    and np.hypot(*(p[:2] - array_xy)) >= 0.5):
                break
            heading = rng.uniform(0, 2 * np.pi)
        else:
            p = pos[k - 1]
        pos[k] = p
    return pos


def speech_segments(x: np.ndarray, sample_rate: int, start_s: float, speaker: str, *, threshold_db: float = -35.0,
                    merge_gap_s: float = 0.25, min_dur_s: float = 0.05) -> list[Segment]:
    """Active stretches of a dry utterance (10 ms frames within ``threshold_db`` of its loudest), gaps shorter
    than ``merge_gap_s`` bridged, placed at ``start_s``."""
    hop = sample_rate // 100
    fr = np.pad(x, (0, -x.size % hop)).reshape(-1, hop)
    e = np.mean(fr**2, axis=1)
    if not np.any(e > 0):
        return []
    act = e > e.max() * 10 ** (threshold_db / 10)
    segs = []
    idx = np.flatnonzero(act)
    if idx.size == 0:
        return []
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > merge_gap_s * 100) + 1)
    for r in runs:
        a, b = r[0] * hop / sample_rate, min((r[-1] + 1) * hop, x.size) / sample_rate
        if b - a >= min_dur_s:
            segs.append(Segment(speaker, start_s + a, b - a))
    return segs


def _place_utterance(track: np.ndarray, utt: np.ndarray, start: int) -> np.ndarray:
    """Add ``utt`` into ``track`` at ``start`` (cut at the end); returns the part that fitted."""
    m = max(0, min(utt.size, track.size - start))
    track[start:start + m] += utt[:m]
    return utt[:m]


def _conversation(voices: list[Voice], n: int, sample_rate: int, conv: dict,
                  rng: np.random.Generator) -> tuple[list[np.ndarray], list[list[tuple]]]:
    """Turn-taking timeline: turns by alternating talkers, gaps (negative = overlap), backchannels, pauses.

    Returns each talker's dry track ``(samples,)`` and its utterances ``(start_s, dry_utterance, kind)``.
    """
    tracks = [np.zeros(n) for _ in voices]
    utts: list[list[tuple]] = [[] for _ in voices]
    duration = n / sample_rate
    t, prev = float(draw_value(conv["first_turn_s"], rng)), -1
    while t < duration - 0.3:
        if rng.random() < conv["long_pause_prob"]:
            t += float(draw_value(conv["long_pause_s"], rng))
            if t >= duration - 0.3:
                break
        choices = [k for k in range(len(voices)) if k != prev] or [0]
        k = int(choices[int(rng.integers(len(choices)))])
        utt = voices[k].say(float(draw_value(conv["turn_s"], rng)), rng)
        start = int(t * sample_rate)
        utts[k].append((t, _place_utterance(tracks[k], utt, start), "turn"))
        if len(voices) > 1 and rng.random() < conv["backchannel_prob"]:
            others = [j for j in range(len(voices)) if j != k]
            j = int(others[int(rng.integers(len(others)))])
            bc = voices[j].backchannel(rng)
            tb = t + rng.uniform(0.3, 0.8) * utt.size / sample_rate
            utts[j].append((tb, _place_utterance(tracks[j], bc, int(tb * sample_rate)), "backchannel"))
        t += utt.size / sample_rate + float(draw_value(conv["gap_s"], rng))
        t = max(t, start / sample_rate + 0.2)
        prev = k
    return tracks, utts


def _continuous_speech(voices: list[Voice], n: int, sample_rate: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, list[tuple]]:
    """Uninterrupted talk (a TV presenter, a background talker): utterances with 0.1-0.6 s gaps."""
    track, utts, t = np.zeros(n), [], float(rng.uniform(0, 0.5))
    while t < n / sample_rate:
        utt = voices[int(rng.integers(len(voices)))].say(float(rng.uniform(2, 5)), rng)
        utts.append((t, _place_utterance(track, utt, int(t * sample_rate)), "playback"))
        t += utt.size / sample_rate + rng.uniform(0.1, 0.6)
    return track, utts


def _music_bed(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A radio's music under the speech: chords of harmonic tones changing every 0.5-1.5 s."""
    out, pos = np.zeros(n), 0
    while pos < n:
        m = min(n - pos, int(rng.uniform(0.5, 1.5) * sample_rate))
        t = np.arange(m) / sample_rate
        root = 110 * 2 ** (rng.integers(0, 12) / 12)
        chord = sum(np.sin(2 * np.pi * root * r * h * t) / h**1.5 for r in (1, 1.26, 1.5) for h in range(1, 5))
        out[pos:pos + m] = chord * np.minimum(1, np.minimum(t, t[::-1]) / 0.02)
        pos += m
    return out / (np.sqrt(np.mean(out**2)) + 1e-20) * 0.03


def _read_recording(path: str, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    x, sr = sf.read(str(Path(path).expanduser()), dtype="float64", always_2d=True)
    x = _resample(x[:, 0], sr, sample_rate)
    if not np.any(x):
        raise SceneError(f"noise recording {path} is silent")
    reps = int(np.ceil((n + x.size) / x.size))
    start = int(rng.integers(x.size))
    return np.tile(x, reps)[start:start + n]


# --- rendering ----------------------------------------------------------------------------------------------------

def _render_images(sources: list[Source], room: np.ndarray, e_abs: float, order: int, mics: np.ndarray,
                   sample_rate: int, n: int, rir: str, crossfade_s: float) -> tuple[list[float], float]:
    """Fill ``image`` and ``direct`` of every point source; moving ones are rendered piecewise with
    triangular crossfades between the RIRs of consecutive waypoints. Returns measured RT60s and RIR seconds."""
    all_pos = np.concatenate([s.trajectory for s in sources])
    t0 = time.perf_counter()
    rirs = compute_rirs(room, e_abs, order, all_pos, mics, sample_rate, rir)
    direct = compute_rirs(room, e_abs, 0, all_pos, mics[:1], sample_rate, "ism")
    rir_time = time.perf_counter() - t0
    rt60s, k = [], 0
    for s in sources:
        w = s.trajectory.shape[0]
        if s.kind == "talker":
            rt60s.append(measure_rt60(rirs[k][0], sample_rate))
        if w == 1:
            s.image = convolve_rirs(s.dry, rirs[k], n)
            s.direct = convolve_rirs(s.dry, direct[k], n)[0]
        else:
            s.image, s.direct = np.zeros((len(mics), n)), np.zeros(n)
            hop = int(round(crossfade_s * sample_rate))
            for j in range(w):
                c = j * hop
                a, b = max(0, c - hop), min(n, c + hop)
                if a >= b:
                    continue
                tri = 1.0 - np.abs(np.arange(a, b) - c) / hop
                if j == 0:
                    tri[: c - a] = 1.0
                if j == w - 1:
                    tri[c - a:] = 1.0
                seg = s.dry[a:b] * tri
                if np.any(seg):
                    s.image += convolve_rirs(seg, rirs[k + j], n, start=a)
                    s.direct += convolve_rirs(seg, direct[k + j], n, start=a)[0]
        k += w
    return rt60s, rir_time


def _power(x: np.ndarray, mask: np.ndarray) -> float:
    """Mean power of ``x`` ``(..., samples)`` over the samples where ``mask`` is True."""
    return float(np.mean(x[..., mask] ** 2)) if np.any(mask) else 0.0


def _mask(segments: list[Segment], n: int, sample_rate: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    for s in segments:
        m[int(s.start_s * sample_rate): int((s.start_s + s.duration_s) * sample_rate)] = True
    return m


def render_recipe_scene(recipe: Recipe | str | Path, seed: int, index: int, *, speech: str | None = None) -> Scene:
    """Render scene ``index`` of ``recipe`` with ``seed``; ``speech`` overrides ``talkers.speech``."""
    t_start = time.perf_counter()
    recipe = load_recipe(recipe)
    spec = recipe.spec
    rng = np.random.default_rng([int(seed), int(index)])
    sr = int(spec["sample_rate"])
    duration = float(draw_value(spec["duration_s"], rng))
    n = int(round(duration * sr))
    # room
    room = np.array(draw_value(spec["room"]["size_m"], rng), float)
    rt60_target = float(draw_value(spec["room"]["rt60_s"], rng))
    rir = spec["room"]["rir"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e_abs, order, rt60_probe = calibrated_absorption(room, rt60_target, sr,
                                                         max_order=int(spec["room"]["max_order"]), rir=rir)
    for w in caught:
        warnings.warn(f"{recipe.name} scene {index}: {w.message}", stacklevel=2)
    # array
    a = spec["array"]
    profile = str(draw_value(a["profile"], rng))
    array = load_array(profile)
    margin = float(draw_value(a["wall_margin_m"], rng))
    height = float(draw_value(a["height_m"], rng))
    yaw = float(draw_value(a["yaw_deg"], rng))
    if a["position_m"] is not None:
        xy = np.array(a["position_m"], float)
        if np.any(xy <= margin) or np.any(xy >= room[:2] - margin):
            raise SceneError(f"array.position_m {xy.tolist()} is outside the room floor {room[:2].tolist()} "
                             f"(with a {margin} m wall margin)")
    else:
        xy = np.array([rng.uniform(margin, room[0] - margin), rng.uniform(margin, room[1] - margin)])
    array_pos = np.array([xy[0], xy[1], height])
    mics = mics_in_room(array, array_pos, yaw)
    if np.any(mics <= 0) or np.any(mics >= room):
        raise SceneError(f"array '{profile}' at {array_pos.tolist()} does not fit in the room {room.tolist()}")
    # talkers
    tk = spec["talkers"]
    bank = speech_bank(speech or tk["speech"])
    n_talkers = int(draw_value(tk["count"], rng))
    voices = bank.voices(n_talkers, sr, rng)
    hop_s = 0.5  # waypoint spacing of walking talkers (RIRs are crossfaded over 2 x hop_s)
    wp_times = np.arange(0.0, duration + hop_s, hop_s)
    sources: list[Source] = []
    azs: list[float] = []
    for k, voice in enumerate(voices):
        p = _place(rng, room, array_pos, tk["distance_m"], tk["height_m"], f"talker{k + 1}", azs,
                   float(tk["min_separation_deg"]))
        azs.append(float(np.degrees(np.arctan2(p[1] - array_pos[1], p[0] - array_pos[0]))))
        walking = bool(rng.random() < float(draw_value(tk["walking_prob"], rng)))
        params = {"voice": voice.describe(), "level_db": float(draw_value(tk["level_db"], rng)), "walking": walking}
        if walking:
            params["speed_mps"] = float(draw_value(tk["walk_speed_mps"], rng))
            traj, times = _walk(rng, p, params["speed_mps"], wp_times, room, array_pos[:2]), wp_times
        else:
            traj, times = p[None], np.zeros(1)
        sources.append(Source(f"talker{k + 1}", "talker", np.zeros(n), traj, times, params=params))
    tracks, utts = _conversation(voices, n, sr, spec["conversation"], rng)
    for s, track, u in zip(sources, tracks, utts):
        s.dry = track * 10 ** (s.params["level_db"] / 20)
        s.params["utterances"] = [{"start_s": round(t, 4), "duration_s": round(x.size / sr, 4), "kind": kind}
                                  for t, x, kind in u]
        s.segments = [seg for t, x, _ in u for seg in speech_segments(x, sr, t, s.name)]
    # noise sources
    diffuse: dict[str, np.ndarray] = {}
    noise_params = []
    for i, nz in enumerate(spec["noise"]):
        typ = nz["type"]
        for c in range(int(draw_value(nz["count"], rng))):
            name = (f"playback_{typ}{c + 1}" if typ in PLAYBACK_TYPES else f"{typ}{c + 1}")
            params = {"type": typ, "level_db": float(draw_value(nz["level_db"], rng))}
            for key in nz:
                if key not in ("type", "count", "level_db", "distance_m", "height_m", "position_m"):
                    params[key] = draw_value(nz[key], rng)
            if typ in DIFFUSE_TYPES:
                if typ == "diffuse":
                    base = np.stack([coloured_noise(n, rng, params["colour"]) for _ in range(array.n_mics)])
                else:
                    babblers = bank.voices(min(int(params["voices"]), bank.capacity), sr, rng)
                    base = np.stack([sum(_continuous_speech([v], n, sr, rng)[0] for v in
                                         [babblers[int(j)] for j in rng.permutation(len(babblers))[:4]])
                                     for _ in range(array.n_mics)])
                diffuse[name] = diffuse_noise(array.positions, n, sr, source=base, rng=rng)
                diffuse[name] *= 10 ** (params["level_db"] / 20)
                noise_params.append({"name": name, **params})
                continue
            if nz["position_m"] is not None:
                pos = np.array(draw_value(nz["position_m"], rng), float)
                if np.any(pos <= 0) or np.any(pos >= room):
                    raise SceneError(f"noise[{i}] position {pos.tolist()} is outside the room {room.tolist()}")
            elif typ == "robot_self_noise":  # inside the robot, just below the array
                off = rng.uniform(0.1, 0.25) * np.array([np.cos(yaw), np.sin(yaw), 0.0])
                pos = array_pos + off + np.array([0, 0, -rng.uniform(0.1, 0.3)])
            elif typ in PLAYBACK_TYPES:  # apart from the talkers: a TV in line with a person cannot be told apart
                pos = _place(rng, room, array_pos, nz["distance_m"], nz["height_m"], name, azs,
                             float(tk["min_separation_deg"]))
            else:
                pos = _place(rng, room, array_pos, nz["distance_m"], nz["height_m"], name)
            if typ in PLAYBACK_TYPES:
                presenters = bank.voices(int(rng.integers(1, 3)), sr, rng, exclude=tuple(voices))
                params["voices"] = [v.describe() for v in presenters]
                track, u = _continuous_speech(presenters, n, sr, rng)
                if typ == "radio":
                    track = track + _music_bed(n, sr, rng)
                src = Source(name, "playback", track, pos[None], np.zeros(1), params=params)
                src.segments = [seg for t, x, _ in u for seg in speech_segments(x, sr, t, name)]
            elif typ == "background_talkers":
                track, _ = _continuous_speech(bank.voices(1, sr, rng, exclude=tuple(voices)), n, sr, rng)
                src = Source(name, "background", track, pos[None], np.zeros(1), params=params)
            elif typ == "recording":
                src = Source(name, "noise", _read_recording(params["path"], n, sr, rng), pos[None], np.zeros(1),
                             params=params)
            else:
                fn = POINT_NOISES[typ]
                kw = {k: params[k] for k in params if k not in ("type", "level_db")}
                if "blades" in kw:
                    kw["blades"] = int(kw["blades"])
                if "periodic" in kw:
                    kw["periodic"] = bool(kw["periodic"])
                src = Source(name, "noise", fn(n, sr, rng, **kw), pos[None], np.zeros(1), params=params)
            sources.append(src)
    # render point sources
    t_rir = time.perf_counter()
    rt60s, rir_seconds = _render_images(sources, room, e_abs, order, mics, sr, n, rir, hop_s)
    render_seconds = time.perf_counter() - t_rir
    # propagation delay to the array centre shifts the labels of what is heard
    for s in sources:
        moved = []
        for seg in s.segments:
            p = s.trajectory[min(int(seg.start_s / hop_s), len(s.trajectory) - 1)]
            d = np.linalg.norm(p - array_pos) / SPEED_OF_SOUND
            end = min(duration, seg.start_s + seg.duration_s + d)
            if seg.start_s + d < end:
                moved.append(Segment(seg.speaker, seg.start_s + d, end - seg.start_s - d))
        s.segments = moved
    # levels
    talkers = [s for s in sources if s.kind == "talker"]
    speech_mask = _mask([g for s in talkers for g in s.segments], n, sr)
    if not np.any(speech_mask):
        raise SceneError(f"scene {index} has no talker speech in its {duration:.1f} s")
    speech_sum = sum(s.image for s in talkers)
    p_speech = _power(speech_sum, speech_mask)
    noise_parts: dict[str, np.ndarray] = dict(diffuse)
    for s in sources:
        if s.kind in ("noise", "background"):
            noise_parts[s.name] = s.image * 10 ** (s.params["level_db"] / 20) / np.sqrt(np.mean(s.image**2) + 1e-30)
        elif s.kind == "playback":
            sir = float(s.params["sir_db"])
            g = np.sqrt(p_speech / (_power(s.image, _mask(s.segments, n, sr)) + 1e-30) / 10 ** (sir / 10))
            s.image *= g
            s.direct *= g
            s.dry *= g
    mx = spec["mix"]
    snr = float(draw_value(mx["snr_db"], rng))
    if noise_parts:
        total = sum(noise_parts.values())
        g = np.sqrt(p_speech / (_power(total, speech_mask) + 1e-30) / 10 ** (snr / 10))
        noise_parts = {k: v * g for k, v in noise_parts.items()}
        noise = total * g
    else:
        noise = np.zeros((array.n_mics, n))
    for s in sources:
        if s.kind in ("noise", "background"):
            s.image = noise_parts[s.name]
    # device: overall level, per-mic gain mismatch, self-noise, clipping
    level = float(draw_value(mx["level_dbfs"], rng))
    clean = speech_sum + sum((s.image for s in sources if s.kind == "playback"), np.zeros_like(noise))
    g = 10 ** (level / 20) / np.sqrt(np.mean((clean + noise) ** 2))
    mismatch_db = rng.normal(0.0, float(draw_value(mx["gain_mismatch_db"], rng)), array.n_mics)
    gains = g * 10 ** (mismatch_db / 20)
    for s in sources:
        s.image = s.image * gains[:, None]
        s.direct = s.direct * gains[0]
    noise_parts = {k: v * gains[:, None] for k, v in noise_parts.items()}
    noise = noise * gains[:, None]
    self_noise_dbfs = float(draw_value(mx["mic_self_noise_dbfs"], rng))
    self_noise = rng.standard_normal(noise.shape) * 10 ** (self_noise_dbfs / 20)
    noise = noise + self_noise
    clip = 10 ** (float(draw_value(mx["clip_dbfs"], rng)) / 20)
    unclipped = sum(s.image for s in sources if s.kind in ("talker", "playback")) + noise
    mix = np.clip(unclipped, -clip, clip)
    speech_sum = sum(s.image for s in talkers)
    measured_snr = 10 * np.log10(_power(speech_sum, speech_mask) / (_power(noise, speech_mask) + 1e-30))
    measured_sir = {s.name: 10 * np.log10(_power(speech_sum, speech_mask) /
                                          (_power(s.image, _mask(s.segments, n, sr)) + 1e-30))
                    for s in sources if s.kind == "playback"}
    # labels: positions of every point source in the array frame, at label_hop_s
    label_hop = float(spec["label_hop_s"])
    times = np.arange(0.0, duration, label_hop)
    positions = []
    for s in sources:
        traj = s.trajectory
        if traj.shape[0] == 1:
            pts = np.repeat(traj, times.size, axis=0)
        else:
            pts = np.stack([np.interp(times, s.waypoint_times_s, traj[:, c]) for c in range(3)], axis=1)
        local = to_array_frame(pts, array_pos, yaw)
        dist = np.linalg.norm(local, axis=1)
        az, el = unit_to_az_el(local / dist[:, None])
        for t, p, a_, e_, d_ in zip(times, local, np.atleast_1d(az), np.atleast_1d(el), dist):
            positions.append((round(float(t), 4), s.name, s.kind, *map(float, p), float(a_), float(e_), float(d_)))
    name = f"scene_{index:06d}"
    params = {
        "scene": name, "recipe": recipe.name, "recipe_file": recipe.source, "seed": int(seed), "index": int(index),
        "sample_rate": sr, "duration_s": duration, "n_samples": n,
        "room": {"size_m": room.tolist(), "rt60_target_s": rt60_target, "rir": rir, "image_source_order": order,
                 "wall_energy_absorption": e_abs, "rt60_probe_s": rt60_probe},
        "array": {"profile": profile, "name": array.name, "positions_m": array.positions.tolist(),
                  "position_m": array_pos.tolist(), "yaw_deg": yaw, "reference_mic": 0,
                  "mics_in_room_m": mics.tolist()},
        "talkers": [{"name": s.name, **s.params, "trajectory_m": s.trajectory.tolist(),
                     "waypoint_times_s": s.waypoint_times_s.tolist()} for s in talkers],
        "noise": noise_params + [{"name": s.name, "kind": s.kind, **s.params, "position_m": s.trajectory[0].tolist()}
                                 for s in sources if s.kind != "talker"],
        "mix": {"snr_db": snr, "level_dbfs": level, "gain_mismatch_db": mismatch_db.tolist(),
                "mic_self_noise_dbfs": self_noise_dbfs, "clip_level": clip},
        "measured": {"rt60_s": float(np.median(rt60s)), "rt60_per_talker_s": rt60s, "snr_db": float(measured_snr),
                     "sir_db": measured_sir, "clipped_fraction": float(np.mean(np.abs(unclipped) >= clip))},
        "timing_s": {"rir": rir_seconds, "convolution_and_mixing": time.perf_counter() - t_start - rir_seconds,
                     "render_images": render_seconds},
    }
    return Scene(name, sr, array, mix.astype(np.float32), noise, sources, noise_parts, positions, params)
