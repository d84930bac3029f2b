"""Direction grids for steered-response localization.

A :class:`DirectionGrid` holds unit vectors ``(n_points, 3)`` in the array frame. Three kinds:

* ``circle``: azimuth only, elevation 0 (for planar arrays when height does not matter);
* ``half-circle``: the circle's azimuths within 90 degrees of a front direction (for linear arrays, which cannot
  tell a direction from its mirror image across their axis);
* ``sphere``: icosahedral subdivision, ``10 * 4**level + 2`` points (level 4: 2562 points, ~4 deg apart);
* ``half-sphere``: the sphere's points with elevation >= 0 (a planar array cannot tell up from down).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .geometry import azimuth_difference_deg, unit_to_az_el


@dataclass(frozen=True, eq=False)
class DirectionGrid:
    """Unit vectors ``units (n_points, 3)`` with their azimuth / elevation in degrees."""

    units: np.ndarray
    kind: str
    level: int

    @property
    def n_points(self) -> int:
        return int(self.units.shape[0])

    @property
    def azimuth_deg(self) -> np.ndarray:
        return unit_to_az_el(self.units)[0]

    @property
    def elevation_deg(self) -> np.ndarray:
        return unit_to_az_el(self.units)[1]

    @property
    def spacing_deg(self) -> float:
        """Typical angle between neighbouring points, degrees."""
        if self.kind in ("circle", "half-circle"):
            return 360.0 / self.level  # level: points of the whole circle
        return float(np.rad2deg(np.sqrt(4.0 * np.pi / (10 * 4**self.level + 2))))


def circle_grid(n_points: int = 360) -> DirectionGrid:
    """``n_points`` azimuths evenly spaced on the horizontal circle."""
    if n_points < 4:
        raise ValueError(f"a circle grid needs at least 4 points, got {n_points}")
    az = 2 * np.pi * np.arange(n_points) / n_points
    units = np.stack([np.cos(az), np.sin(az), np.zeros_like(az)], axis=1)
    return DirectionGrid(units, "circle", n_points)


def half_circle_grid(n_points: int = 360, front_deg: float = 0.0) -> DirectionGrid:
    """The azimuths of an ``n_points`` circle within 90 degrees of ``front_deg`` (both ends included)."""
    full = circle_grid(n_points)
    az = np.rad2deg(np.arctan2(full.units[:, 1], full.units[:, 0]))
    keep = azimuth_difference_deg(az, front_deg) <= 90.0 + 1e-9
    return DirectionGrid(np.ascontiguousarray(full.units[keep]), "half-circle", n_points)


@lru_cache(maxsize=16)
def _icosphere(level: int) -> np.ndarray:
    t = (1.0 + np.sqrt(5.0)) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
             (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5),
             (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    v = [np.array(p, dtype=np.float64) / np.linalg.norm(p) for p in verts]
    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    out = np.array(v)
    out.setflags(write=False)
    return out


def sphere_grid(level: int = 4, *, half: bool = False) -> DirectionGrid:
    """Icosahedral sphere grid (``10 * 4**level + 2`` points); ``half`` keeps elevation >= 0."""
    if not 0 <= level <= 6:
        raise ValueError(f"sphere grid level must be in 0..6, got {level}")
    units = np.array(_icosphere(level))
    if half:
        units = units[units[:, 2] >= -1e-9]
    return DirectionGrid(units, "half-sphere" if half else "sphere", level)


def make_grid(kind: str, resolution: int | None = None, front_deg: float = 0.0) -> DirectionGrid:
    """Grid by name: ``circle`` / ``half-circle`` (resolution = azimuths on the whole circle, default 360; the
    half circle faces ``front_deg``) or ``sphere`` / ``half-sphere`` (resolution = icosahedral level, default 4)."""
    if kind == "circle":
        return circle_grid(360 if resolution is None else resolution)
    if kind == "half-circle":
        return half_circle_grid(360 if resolution is None else resolution, front_deg)
    if kind in ("sphere", "half-sphere"):
        return sphere_grid(4 if resolution is None else resolution, half=kind == "half-sphere")
    raise ValueError(f"unknown grid kind '{kind}'; expected 'circle', 'half-circle', 'sphere' or 'half-sphere'")


def coarse_grid_for(fine: DirectionGrid) -> DirectionGrid:
    """The coarse grid used for the first pass of coarse-to-fine search over ``fine``."""
    if fine.kind == "circle":
        return circle_grid(max(4, fine.n_points // 8))
    if fine.kind == "half-circle":
        front = np.rad2deg(np.arctan2(*fine.units.mean(axis=0)[[1, 0]]))
        return half_circle_grid(max(8, fine.level // 8), float(front))
    return sphere_grid(max(0, fine.level - 2), half=fine.kind == "half-sphere")


def nearest_point(grid: DirectionGrid, units: np.ndarray) -> np.ndarray:
    """Index of the grid point nearest each unit vector in ``units (n, 3)``: ``(n,)``."""
    return np.argmax(np.asarray(units) @ grid.units.T, axis=1)
