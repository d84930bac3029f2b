"""Write scenes to disk and build datasets of many scenes, resumable and in parallel.

A dataset folder holds one folder per scene (``scene_000000/`` ...) and ``manifest.jsonl`` with one line per
finished scene. A scene is rendered into a hidden temporary folder and renamed into place only when complete;
its manifest line is appended after that by the single driver process. A killed run therefore leaves only
complete scenes listed, and ``simulate`` run again skips them and redoes the rest (renders are deterministic in
``(seed, index)``, so the result is the same as an uninterrupted run).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import soundfile as sf

from ..io import write_rttm
from .recipe import Recipe, load_recipe
from .render import Scene, render_recipe_scene

POSITIONS_CSV_HEADER = ("time_s", "source", "kind", "x", "y", "z", "azimuth_deg", "elevation_deg", "distance_m")
MANIFEST = "manifest.jsonl"


def scene_name(index: int) -> str:
    return f"scene_{index:06d}"


def write_scene(scene: Scene, out_dir: str | Path, *, noise_images: bool = False, subtype: str = "FLOAT") -> Path:
    """Write ``scene`` to ``out_dir/<scene.name>`` atomically (temporary folder, then rename). Returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / scene.name
    tmp = Path(tempfile.mkdtemp(prefix=f".{scene.name}.", dir=out_dir))
    try:
        sr = scene.sample_rate
        sf.write(tmp / "mix.wav", scene.mix.T, sr, subtype=subtype)
        (tmp / "sources").mkdir()
        for s in scene.sources:
            if s.kind in ("talker", "playback"):
                sf.write(tmp / "sources" / f"{s.name}.wav", s.image.T.astype(np.float32), sr, subtype=subtype)
                sf.write(tmp / "sources" / f"{s.name}.direct.wav", s.direct.astype(np.float32), sr, subtype=subtype)
        sf.write(tmp / "sources" / "noise.wav", scene.noise.T.astype(np.float32), sr, subtype=subtype)
        if noise_images:
            for name, img in scene.noise_images.items():
                sf.write(tmp / "sources" / f"{name}.wav", img.T.astype(np.float32), sr, subtype=subtype)
        write_rttm(scene.segments, tmp / "reference.rttm", scene.name)
        with open(tmp / "positions.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(POSITIONS_CSV_HEADER)
            for row in scene.positions:
                w.writerow([row[0], row[1], row[2], *(f"{v:.4f}" for v in row[3:])])
        (tmp / "scene.json").write_text(json.dumps(scene.params, indent=1, default=_json_default))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o)} to JSON")


def manifest_entry(scene: Scene) -> dict:
    """The manifest line of a scene (a summary of its ``scene.json``)."""
    p = scene.params
    return {"scene": scene.name, "path": scene.name, "index": p["index"], "seed": p["seed"], "recipe": p["recipe"],
            "duration_s": p["duration_s"], "sample_rate": p["sample_rate"], "array": p["array"]["profile"],
            "n_mics": scene.array.n_mics, "n_talkers": len(p["talkers"]),
            "walking": sum(t["walking"] for t in p["talkers"]), "rt60_s": p["measured"]["rt60_s"],
            "snr_db": p["measured"]["snr_db"],
            "playback": [s.name for s in scene.sources if s.kind == "playback"],
            "timing_s": p["timing_s"]}


def read_manifest(dataset_dir: str | Path) -> list[dict]:
    """Manifest lines of a dataset folder, one per scene in index order (a torn last line is ignored)."""
    path = Path(dataset_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{dataset_dir} has no {MANIFEST}: not a farfield dataset folder")
    out = []
    lines = path.read_text().splitlines()
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(lines) - 1:  # a line cut by a kill: that scene is simply redone
                continue
            raise ValueError(f"{path}: line {k + 1} is not valid JSON") from None
    last = {e["index"]: e for e in out}  # a scene redone after a kill is listed again: keep the newest line
    return sorted(last.values(), key=lambda e: e["index"])


def _render_and_write(recipe: Recipe, seed: int, index: int, out_dir: str, speech: str | None) -> dict:
    """Worker: render one scene, write it, return its manifest entry (runs in a pool process or a Ray task)."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    scene = render_recipe_scene(recipe, seed, index, speech=speech)
    out = recipe.spec["output"]
    write_scene(scene, out_dir, noise_images=out["noise_images"], subtype=out["subtype"])
    return manifest_entry(scene)


def _pending(out_dir: Path, n_scenes: int, start: int) -> list[int]:
    done = set()
    path = out_dir / MANIFEST
    if path.exists():
        entries = read_manifest(out_dir)
        if len(entries) != sum(1 for line in path.read_text().splitlines() if line.strip()):
            # drop a torn line (and repeated entries) before appending: rewrite atomically
            tmp = path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(e, default=_json_default) + "\n" for e in entries))
            os.replace(tmp, path)
        done = {e["index"] for e in entries if (out_dir / e["path"] / "scene.json").exists()}
    for tmp in out_dir.glob(".scene_*"):  # left by a killed run
        shutil.rmtree(tmp, ignore_errors=True)
    return [i for i in range(start, start + n_scenes) if i not in done]


def _append(out_dir: Path, entry: dict) -> None:
    # a previous run may have been killed mid-line: make sure each entry starts on a new line
    path = out_dir / MANIFEST
    prefix = ""
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            prefix = "" if f.read(1) == b"\n" else "\n"
    with open(path, "a") as f:
        f.write(prefix + json.dumps(entry, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())


def simulate(recipe: str | Path | Recipe, n_scenes: int, out_dir: str | Path, *, seed: int = 0, start: int = 0,
             workers: int = 1, backend: str = "process", address: str | None = None, speech: str | None = None,
             progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Render scenes ``start .. start + n_scenes - 1`` of ``recipe`` into ``out_dir``; resume what is missing.

    Args:
        workers: parallel processes (``backend="process"``), or at most this many Ray tasks in flight.
        backend: ``"process"`` (a local process pool; 1 worker renders in this process) or ``"ray"``.
        address: Ray cluster address (``"auto"`` or ``"ray://host:10001"``); ``None`` starts a local Ray.
        speech: folder of speech recordings replacing the recipe's ``talkers.speech``.
        progress: called as ``progress(done, total)`` after each scene.
    Returns the manifest entries written by this call.
    """
    recipe = load_recipe(recipe)
    if n_scenes < 1:
        raise ValueError(f"n_scenes must be >= 1, got {n_scenes}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = _pending(out_dir, n_scenes, start)
    total, done = n_scenes, n_scenes - len(todo)
    if progress:
        progress(done, total)
    written = []

    def finished(entry: dict) -> None:
        nonlocal done
        _append(out_dir, entry)
        written.append(entry)
        done += 1
        if progress:
            progress(done, total)

    if not todo:
        return written
    if backend == "ray":
        _run_ray(recipe, seed, todo, str(out_dir), speech, workers, address, finished)
    elif backend != "process":
        raise ValueError(f"unknown backend '{backend}'; expected 'process' or 'ray'")
    elif workers == 1:
        for i in todo:
            finished(_render_and_write(recipe, seed, i, str(out_dir), speech))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            _drain(lambda i: pool.submit(_render_and_write, recipe, seed, i, str(out_dir), speech), todo,
                   2 * workers, lambda fut: fut.result(), finished)
    return written


def _drain(submit: Callable, todo: Iterable[int], in_flight: int, result: Callable, finished: Callable) -> None:
    """Keep ``in_flight`` futures running; hand each finished one's result to ``finished``."""
    it = iter(todo)
    running = set()
    for i in it:
        running.add(submit(i))
        if len(running) >= in_flight:
            break
    while running:
        ready, running = wait(running, return_when=FIRST_COMPLETED)
        for fut in ready:
            finished(result(fut))
            nxt = next(it, None)
            if nxt is not None:
                running.add(submit(nxt))


def _run_ray(recipe: Recipe, seed: int, todo: list[int], out_dir: str, speech: str | None, workers: int,
             address: str | None, finished: Callable) -> None:
    try:
        import ray
    except ImportError:
        raise ImportError("the Ray backend needs Ray: pip install 'farfield[cluster]' (or pip install ray)") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_render_and_write)
        pending = {}
        it = iter(todo)
        limit = max(1, workers) * 2
        for i in it:
            pending[task.remote(recipe, seed, i, out_dir, speech)] = i
            if len(pending) >= limit:
                break
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                finished(ray.get(ref))
                nxt = next(it, None)
                if nxt is not None:
                    pending[task.remote(recipe, seed, nxt, out_dir, speech)] = nxt
    finally:
        if started:
            ray.shutdown()


def time_scene(recipe: str | Path | Recipe, seed: int, index: int) -> dict:
    """Render one scene in memory and return its timing split (for benchmarks)."""
    t = time.perf_counter()
    scene = render_recipe_scene(recipe, seed, index)
    return {"total_s": time.perf_counter() - t, **scene.params["timing_s"], "duration_s": scene.params["duration_s"]}
