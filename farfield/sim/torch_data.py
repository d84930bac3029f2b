"""torch datasets over simulated scenes (needs the ``neural`` extra: ``pip install 'farfield[neural]'``).

- :class:`SceneDataset`: a map-style ``Dataset`` over a folder written by ``farfield simulate``.
- :class:`SceneStream`: an ``IterableDataset`` that renders scenes on the fly; each ``DataLoader`` worker renders
  its own share of indices, so every index is rendered exactly once per pass and identically to ``simulate``.

An item is a dict: ``mix`` ``(n_mics, samples)`` float32 tensor, ``images`` ``(n_talkers, n_mics, samples)``
(reverberant talker images), ``direct`` ``(n_talkers, samples)`` (direct path at the reference mic),
``noise`` ``(n_mics, samples)``, ``talkers`` (names), ``segments`` (RTTM rows ``(speaker, start_s, duration_s)``),
``positions`` (rows of ``positions.csv``), ``scene`` (the ``scene.json`` dict). Use ``collate_fn=list`` or
crop to a fixed length, since scenes differ in length.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError as e:  # pragma: no cover - depends on the extra
    raise ImportError("farfield.sim.torch_data needs torch: pip install 'farfield[neural]'") from e

from ..io import read_rttm
from .dataset import read_manifest
from .recipe import load_recipe
from .render import Scene, render_recipe_scene


def _item(mix, images, direct, noise, talkers, segments, positions, scene) -> dict:
    return {"mix": torch.as_tensor(np.asarray(mix, np.float32)),
            "images": torch.as_tensor(np.asarray(images, np.float32)),
            "direct": torch.as_tensor(np.asarray(direct, np.float32)),
            "noise": torch.as_tensor(np.asarray(noise, np.float32)),
            "talkers": talkers, "segments": segments, "positions": positions, "scene": scene}


def scene_item(scene: Scene) -> dict:
    """The dataset item of an in-memory scene."""
    talkers = [s for s in scene.sources if s.kind == "talker"]
    return _item(scene.mix, np.stack([s.image for s in talkers]), np.stack([s.direct for s in talkers]), scene.noise,
                 [s.name for s in talkers], [(g.speaker, g.start_s, g.duration_s) for g in scene.segments],
                 scene.positions, scene.params)


class SceneDataset(Dataset):
    """Scenes of a dataset folder, in manifest (index) order."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.entries = read_manifest(self.root)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        d = self.root / self.entries[i]["path"]
        meta = json.loads((d / "scene.json").read_text())
        names = [t["name"] for t in meta["talkers"]]

        def read(name: str) -> np.ndarray:
            x, _ = sf.read(str(d / name), dtype="float32", always_2d=True)
            return x.T

        with open(d / "positions.csv", newline="") as f:
            rows = list(csv.reader(f))[1:]
        return _item(read("mix.wav"), np.stack([read(f"sources/{n}.wav") for n in names]),
                     np.stack([read(f"sources/{n}.direct.wav")[0] for n in names]), read("sources/noise.wav"), names,
                     read_rttm(d / "reference.rttm"), rows, meta)


class SceneStream(IterableDataset):
    """Render scenes ``start .. start + n_scenes - 1`` of a recipe on the fly (``n_scenes=None``: endless)."""

    def __init__(self, recipe, seed: int = 0, n_scenes: int | None = None, start: int = 0,
                 speech: str | None = None) -> None:
        self.recipe = load_recipe(recipe)
        self.seed, self.n_scenes, self.start, self.speech = seed, n_scenes, start, speech

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        i = self.start + wid
        while self.n_scenes is None or i < self.start + self.n_scenes:
            yield scene_item(render_recipe_scene(self.recipe, self.seed, i, speech=self.speech))
            i += nw
