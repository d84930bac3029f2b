"""Render a static scene in a shoebox room with pyroomacoustics and return exact labels.

Directions are in the array frame: the array sits at ``array_position`` (room coordinates, metres) rotated
by ``array_yaw_deg`` about the vertical axis, so azimuth 0 is the array's +x axis.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pyroomacoustics as pra

from ..geometry import ArrayGeometry, unit_to_az_el
from .noise import diffuse_noise


@dataclass(frozen=True)
class SourceSpec:
    """A point source: its signal ``(samples,)``, room position (m) and start time (s)."""

    signal: np.ndarray
    position: tuple[float, float, float]
    start_s: float = 0.0
    name: str = "source"
    kind: str = "talker"


@dataclass(frozen=True)
class RenderedScene:
    """A rendered scene.

    mix: ``(n_mics, samples)``; images: reverberant image of each source at every mic
    ``(n_sources, n_mics, samples)``; noise: ``(n_mics, samples)``; azimuth/elevation/distance: per source
    in the array frame; activity: ``(n_sources, samples)`` bool, True where the dry source is active.
    """

    mix: np.ndarray
    images: np.ndarray
    noise: np.ndarray
    sample_rate: int
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    distance_m: np.ndarray
    activity: np.ndarray
    rt60_s: float
    info: dict = field(default_factory=dict)


def _rotation(yaw_deg: float) -> np.ndarray:
    a = np.deg2rad(yaw_deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def direction_from_array(source_position, array_position, array_yaw_deg: float = 0.0) -> tuple[float, float, float]:
    """(azimuth_deg, elevation_deg, distance_m) of a room position as seen in the array frame."""
    v = _rotation(array_yaw_deg).T @ (np.asarray(source_position, float) - np.asarray(array_position, float))
    dist = float(np.linalg.norm(v))
    az, el = unit_to_az_el(v / dist)
    return float(az), float(el), dist


def _activity(sig: np.ndarray, sample_rate: int, threshold_db: float = -35.0) -> np.ndarray:
    """Frames of 20 ms whose energy is within ``threshold_db`` of the loudest frame count as active."""
    hop = sample_rate // 50
    n = sig.size
    frames = np.pad(sig, (0, -n % hop)).reshape(-1, hop)
    e = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    act = e > e.max() + threshold_db
    return np.repeat(act, hop)[:n]


def render_scene(array: ArrayGeometry, sources: list[SourceSpec], sample_rate: int, *,
                 room_dim=(6.0, 5.0, 3.0), rt60_s: float = 0.4, array_position=None, array_yaw_deg: float = 0.0,
                 snr_db: float | None = 20.0, noise: str = "diffuse", duration_s: float | None = None,
                 max_order: int | None = None, rng: np.random.Generator | None = None) -> RenderedScene:
    """Render ``sources`` in a shoebox room; add spatially diffuse noise at ``snr_db`` (relative to the sum
    of the sources' images, averaged over mics).

    ``noise`` is ``"diffuse"`` (spherical-sinc coherence) or ``"white"`` (independent per mic).
    """
    rng = rng or np.random.default_rng()
    room_dim = np.asarray(room_dim, dtype=float)
    arr_pos = room_dim / 2 if array_position is None else np.asarray(array_position, float)
    mic_room = (_rotation(array_yaw_deg) @ (array.positions - array.centre).T).T + arr_pos
    for s in sources:
        if np.any(np.asarray(s.position) <= 0) or np.any(np.asarray(s.position) >= room_dim):
            raise ValueError(f"source '{s.name}' at {s.position} is outside the room {tuple(room_dim)}")
    n = int(max(s.start_s * sample_rate + len(s.signal) for s in sources))
    if duration_s is not None:
        n = int(duration_s * sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            e_abs, order = pra.inverse_sabine(rt60_s, room_dim)
        except ValueError as e:
            raise ValueError(f"RT60 {rt60_s} s is impossible for a {tuple(room_dim)} m room: {e}") from None
    if max_order is not None:
        order = min(order, max_order)
    room = pra.ShoeBox(room_dim, fs=sample_rate, materials=pra.Material(e_abs), max_order=order)
    for s in sources:
        room.add_source(list(s.position), signal=np.asarray(s.signal, float), delay=s.start_s)
    room.add_microphone_array(mic_room.T)
    premix = room.simulate(return_premix=True)  # (S, M, N')
    offset = pra.constants.get("frac_delay_length") // 2
    images = np.zeros((len(sources), array.n_mics, n))
    m = min(n, premix.shape[2] - offset)
    images[:, :, :m] = premix[:, :, offset: offset + m]
    clean = images.sum(axis=0)
    if snr_db is None:
        nz = np.zeros_like(clean)
    else:
        if noise == "diffuse":
            nz = diffuse_noise(array.positions, n, sample_rate, rng=rng)
        elif noise == "white":
            nz = rng.standard_normal(clean.shape)
        else:
            raise ValueError(f"unknown noise '{noise}'; expected 'diffuse' or 'white'")
        p_sig = np.mean(clean**2)
        nz *= np.sqrt(p_sig / (np.mean(nz**2) * 10 ** (snr_db / 10)))
    az, el, dist = zip(*(direction_from_array(s.position, arr_pos, array_yaw_deg) for s in sources))
    act = np.zeros((len(sources), n), dtype=bool)
    for k, s in enumerate(sources):
        a = _activity(np.asarray(s.signal, float), sample_rate)
        st = int(round(s.start_s * sample_rate))
        e = min(n, st + a.size)
        act[k, st:e] = a[: e - st]
    return RenderedScene(clean + nz, images, nz, sample_rate, np.array(az), np.array(el), np.array(dist), act,
                         rt60_s, {"room_dim": room_dim.tolist(), "max_order": int(order),
                                  "array_position": arr_pos.tolist(), "array_yaw_deg": array_yaw_deg})
