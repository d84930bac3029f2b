"""Render a static scene in a shoebox room with pyroomacoustics and return exact labels.

Directions are in the array frame: the array sits at ``array_position`` (room coordinates, metres) rotated
by ``array_yaw_deg`` about the vertical axis, so azimuth 0 is the array's +x axis.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pyroomacoustics as pra
from scipy.signal import oaconvolve

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


def mics_in_room(array: ArrayGeometry, array_position, array_yaw_deg: float = 0.0) -> np.ndarray:
    """Room coordinates ``(n_mics, 3)`` of a profile's mics with its centre at ``array_position``, turned by yaw."""
    return (_rotation(array_yaw_deg) @ (array.positions - array.centre).T).T + np.asarray(array_position, float)


def to_array_frame(position, array_position, array_yaw_deg: float = 0.0) -> np.ndarray:
    """A room position ``(..., 3)`` expressed in the array frame (metres)."""
    return (np.asarray(position, float) - np.asarray(array_position, float)) @ _rotation(array_yaw_deg)


def direction_from_array(source_position, array_position, array_yaw_deg: float = 0.0) -> tuple[float, float, float]:
    """(azimuth_deg, elevation_deg, distance_m) of a room position as seen in the array frame."""
    v = to_array_frame(source_position, array_position, array_yaw_deg)
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


# --- impulse responses -------------------------------------------------------------------------------------------

PRA_OFFSET = pra.constants.get("frac_delay_length") // 2
"""pyroomacoustics centres its fractional-delay filters, so every RIR it makes is late by this many samples;
:func:`convolve_rirs` removes it so that labels (distance / c) line up with the audio."""


def _make_room(room_dim, e_abs: float, order: int, sample_rate: int, rir: str) -> pra.ShoeBox:
    if rir == "hybrid":
        room = pra.ShoeBox(room_dim, fs=sample_rate, materials=pra.Material(e_abs), max_order=3, ray_tracing=True,
                           air_absorption=True)
        room.set_ray_tracing(receiver_radius=0.5, energy_thres=1e-7)
        return room
    if rir != "ism":
        raise ValueError(f"unknown RIR method '{rir}'; expected 'ism' or 'hybrid'")
    return pra.ShoeBox(room_dim, fs=sample_rate, materials=pra.Material(e_abs), max_order=order)


def measure_rt60(rir: np.ndarray, sample_rate: int) -> float:
    """Reverberation time (s) of an impulse response from its Schroeder decay (T30, extrapolated to 60 dB)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pra.experimental.measure_rt60(np.asarray(rir, float), sample_rate, decay_db=30))


def calibrated_absorption(room_dim, rt60_s: float, sample_rate: int, *, max_order: int = 40, rir: str = "ism",
                          tolerance: float = 0.05, max_iter: int = 8) -> tuple[float, int, float]:
    """Wall energy absorption that gives ``rt60_s`` in this room, measured on the rendered RIR.

    Sabine's formula (``pra.inverse_sabine``) is only a start: in long, flat halls the image-source field is not
    diffuse and the decay can be twice as slow, so the absorption is corrected until the T30 of a probe RIR is
    within ``tolerance``. Returns ``(energy_absorption, image_source_order, achieved_rt60_s)``; warns when the
    RT60 cannot be reached in this room (the achieved value is then the closest possible).
    """
    dim = np.asarray(room_dim, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            e_abs, order = pra.inverse_sabine(rt60_s, dim)
        except ValueError:
            e_abs, order = 0.99, 1
    order = int(min(max(order, 8), max_order))
    src, mic = dim * np.array([0.3, 0.35, 0.45]), dim * np.array([0.62, 0.55, 0.4])
    measured = np.nan
    for _ in range(max_iter):
        room = _make_room(dim, e_abs, order, sample_rate, rir)
        room.add_source(list(src))
        room.add_microphone(list(mic))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            room.compute_rir()
        measured = measure_rt60(room.rir[0][0], sample_rate)
        ratio = measured / rt60_s
        if abs(ratio - 1) <= tolerance:
            break
        new = float(np.clip(e_abs * ratio, 1e-3, 0.99))
        if new == e_abs:
            break
        e_abs = new
    if abs(measured / rt60_s - 1) > 0.2:
        why = (f"even fully absorbing walls (energy absorption {e_abs:.2f}) leave it longer" if measured > rt60_s else
               f"the image-source order is capped at {order} (raise room.max_order, or use rir = 'hybrid')")
        warnings.warn(f"RT60 {rt60_s:.2f} s cannot be reached in a {dim[0]:.1f} x {dim[1]:.1f} x {dim[2]:.1f} m room "
                      f"with '{rir}' rendering: the closest is {measured:.2f} s; {why}", stacklevel=2)
    return float(e_abs), order, float(measured)


def compute_rirs(room_dim, e_abs: float, order: int, sources: np.ndarray, mics: np.ndarray, sample_rate: int,
                 rir: str = "ism") -> list[np.ndarray]:
    """Impulse responses from every source to every mic: a list over sources of ``(n_mics, length)`` arrays
    (still carrying pyroomacoustics' :data:`PRA_OFFSET`)."""
    room = _make_room(np.asarray(room_dim, float), e_abs, order, sample_rate, rir)
    for s in np.atleast_2d(sources):
        room.add_source(list(map(float, s)))
    room.add_microphone_array(np.atleast_2d(mics).T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        room.compute_rir()
    out = []
    for k in range(len(room.sources)):
        length = max(len(room.rir[m][k]) for m in range(len(mics)))
        h = np.zeros((len(mics), length))
        for m in range(len(mics)):
            h[m, : len(room.rir[m][k])] = room.rir[m][k]
        out.append(h)
    return out


def convolve_rirs(signal: np.ndarray, rirs: np.ndarray, n_samples: int, start: int = 0) -> np.ndarray:
    """Image ``(n_mics, n_samples)`` of a mono ``signal`` that starts at sample ``start``, through ``rirs``
    ``(n_mics, length)`` from :func:`compute_rirs` (the pyroomacoustics offset removed)."""
    y = oaconvolve(np.asarray(signal, float)[None, :], rirs, axes=1)
    out = np.zeros((rirs.shape[0], n_samples))
    a = start - PRA_OFFSET  # output sample of y[:, 0]
    lo, hi = max(0, a), min(n_samples, a + y.shape[1])
    if hi > lo:
        out[:, lo:hi] = y[:, lo - a: hi - a]
    return out


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
    mic_room = mics_in_room(array, arr_pos, array_yaw_deg)
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
    offset = PRA_OFFSET
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
