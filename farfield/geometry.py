"""Microphone-array geometry, array profiles and direction conventions.

Conventions used everywhere in farfield:

* positions are metres, shape ``(n_mics, 3)``, in the array frame;
* azimuth is degrees counter-clockwise from the array's +x axis, in ``[0, 360)``;
* elevation is degrees up from the array's x-y plane, in ``[-90, 90]``;
* a direction is also a unit vector ``(3,)`` (or ``(n, 3)``) pointing from the array towards the source.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ._data import data_dirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPEED_OF_SOUND = 343.0
"""Speed of sound in m/s used unless a caller gives another."""

MAX_PLAUSIBLE_APERTURE_M = 3.0
MIN_MIC_SPACING_M = 1e-3

_REQUIRED_KEYS = {"name", "mics"}
_OPTIONAL_KEYS = {"sample_rate", "device_channels", "device_pattern", "notes", "source", "verified"}
_MIC_KEYS = {"position", "channel"}


class ProfileError(ValueError):
    """An array profile (TOML file or arguments) is invalid."""


# --------------------------------------------------------------------------- directions
def az_el_to_unit(azimuth_deg: Any, elevation_deg: Any = 0.0) -> np.ndarray:
    """Unit vector(s) ``(..., 3)`` for azimuth / elevation in degrees."""
    az = np.deg2rad(np.asarray(azimuth_deg, dtype=np.float64))
    el = np.deg2rad(np.asarray(elevation_deg, dtype=np.float64))
    az, el = np.broadcast_arrays(az, el)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def unit_to_az_el(unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in ``[0, 360)`` and elevation in degrees for unit vector(s) ``(..., 3)``."""
    u = np.asarray(unit, dtype=np.float64)
    az = np.rad2deg(np.arctan2(u[..., 1], u[..., 0])) % 360.0
    el = np.rad2deg(np.arctan2(u[..., 2], np.hypot(u[..., 0], u[..., 1])))
    return az, el


def angular_distance_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle angle in degrees between unit vectors ``a (..., 3)`` and ``b (..., 3)``."""
    dot = np.sum(np.asarray(a) * np.asarray(b), axis=-1)
    return np.rad2deg(np.arccos(np.clip(dot, -1.0, 1.0)))


def azimuth_difference_deg(a: Any, b: Any) -> np.ndarray:
    """Absolute wrapped azimuth difference in degrees, in ``[0, 180]``."""
    d = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % 360.0
    return np.minimum(d, 360.0 - d)


def mean_azimuth_deg(azimuths_deg: Any) -> float:
    """The circular mean of azimuths ``(n,)`` in degrees, in degrees (``(-180, 180]``)."""
    return float(np.degrees(np.angle(np.exp(1j * np.radians(np.asarray(azimuths_deg, dtype=np.float64))).mean())))


def spherical_coherence(positions: np.ndarray, freqs_hz: np.ndarray,
                        speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
    """Coherence matrices ``(freq, n_mics, n_mics)`` of a spherically isotropic field at mics ``positions``
    ``(n_mics, 3)`` metres: ``sinc(2 f d / c)`` of each pair's distance ``d``."""
    pos = np.asarray(positions, dtype=np.float64)
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    return np.sinc(2.0 * np.asarray(freqs_hz)[:, None, None] * d[None] / speed_of_sound)


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True, eq=False)
class ArrayGeometry:
    """A microphone array: mic positions plus how they map onto device channels.

    Args:
        positions: mic positions in metres, ``(n_mics, 3)`` (``(n_mics, 2)`` is taken as z = 0).
        channels: input channel of each mic on the device; defaults to ``0..n_mics-1``.
        name: short identifier.
        sample_rate: the device's native sample rate in Hz, if known.
        device_channels: total channel count the device delivers (mics + processed/playback channels).
        device_pattern: case-insensitive substring that identifies the device in sounddevice's list.
        notes, source: free text (where the geometry comes from).
    """

    positions: np.ndarray
    channels: tuple[int, ...] | None = None
    name: str = "custom"
    sample_rate: int | None = None
    device_channels: int | None = None
    device_pattern: str | None = None
    notes: str = ""
    source: str = ""
    verified: bool = True

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] not in (2, 3):
            raise ProfileError(
                f"array '{self.name}': positions must have shape (n_mics, 3) in metres, got {pos.shape}"
            )
        if pos.shape[1] == 2:
            pos = np.concatenate([pos, np.zeros((pos.shape[0], 1))], axis=1)
        if not np.all(np.isfinite(pos)):
            raise ProfileError(f"array '{self.name}': positions contain NaN or inf")
        n = pos.shape[0]
        if n < 2:
            raise ProfileError(f"array '{self.name}': needs at least 2 microphones, got {n}")
        dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
        iu = np.triu_indices(n, 1)
        close = np.flatnonzero(dist[iu] < MIN_MIC_SPACING_M)
        if close.size:
            i, j = iu[0][close[0]], iu[1][close[0]]
            raise ProfileError(
                f"array '{self.name}': mics {i} and {j} are {dist[i, j] * 1000:.3f} mm apart "
                f"(coincident); mics must be at least {MIN_MIC_SPACING_M * 1000:.0f} mm apart"
            )
        aperture = float(dist.max())
        if aperture > MAX_PLAUSIBLE_APERTURE_M:
            raise ProfileError(
                f"array '{self.name}': aperture is {aperture:.2f} m, more than {MAX_PLAUSIBLE_APERTURE_M} m; "
                "positions must be in metres (were they given in millimetres?)"
            )
        chans = tuple(range(n)) if self.channels is None else tuple(int(c) for c in self.channels)
        if len(chans) != n:
            raise ProfileError(f"array '{self.name}': {len(chans)} channels given for {n} mics")
        if min(chans) < 0:
            raise ProfileError(f"array '{self.name}': channel numbers must be >= 0, got {min(chans)}")
        if len(set(chans)) != n:
            dup = sorted({c for c in chans if chans.count(c) > 1})
            raise ProfileError(f"array '{self.name}': duplicate channel(s) {dup}; each mic needs its own channel")
        if self.device_channels is not None and max(chans) >= self.device_channels:
            raise ProfileError(
                f"array '{self.name}': channel {max(chans)} does not exist on a device with "
                f"{self.device_channels} channels (channels are numbered from 0)"
            )
        if self.sample_rate is not None and self.sample_rate <= 0:
            raise ProfileError(f"array '{self.name}': sample_rate must be positive, got {self.sample_rate}")
        pos.setflags(write=False)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "channels", chans)

    # -- derived facts --------------------------------------------------------------------
    @property
    def n_mics(self) -> int:
        return int(self.positions.shape[0])

    @cached_property
    def pairs(self) -> np.ndarray:
        """All mic pairs ``(n_pairs, 2)`` with ``i < j``."""
        return np.array(np.triu_indices(self.n_mics, 1)).T.astype(np.int64)

    @cached_property
    def pair_distances_m(self) -> np.ndarray:
        """Distance of each pair in :attr:`pairs`, ``(n_pairs,)`` metres."""
        p = self.positions
        return np.linalg.norm(p[self.pairs[:, 0]] - p[self.pairs[:, 1]], axis=1)

    @property
    def aperture_m(self) -> float:
        """Largest distance between two mics, metres."""
        return float(self.pair_distances_m.max())

    @property
    def min_spacing_m(self) -> float:
        """Smallest distance between two mics, metres."""
        return float(self.pair_distances_m.min())

    def max_tdoa_s(self, speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
        """Largest possible time difference of arrival of each pair, ``(n_pairs,)`` seconds."""
        return self.pair_distances_m / speed_of_sound

    def spatial_aliasing_hz(self, speed_of_sound: float = SPEED_OF_SOUND) -> float:
        """Frequency above which the closest pair aliases spatially: ``c / (2 d_min)``, Hz."""
        return speed_of_sound / (2.0 * self.min_spacing_m)

    @property
    def is_planar(self) -> bool:
        """True when all mics lie (within 1 mm) in the array's x-y plane (z constant)."""
        return bool(np.ptp(self.positions[:, 2]) < 1e-3)

    @property
    def is_linear(self) -> bool:
        """True when all mics lie on one line (within 1 mm)."""
        c = self.positions - self.positions.mean(axis=0)
        s = np.linalg.svd(c, compute_uv=False)
        return bool(s[1] < 1e-3)

    @property
    def front_deg(self) -> float:
        """Azimuth (degrees) of the side a linear array reports: perpendicular to its axis in the x-y plane,
        towards +x (towards +y when the axis is the x axis). Its mirror image across the axis gives the same
        delays."""
        axis = self._axis
        normal = np.array([-axis[1], axis[0]])
        if np.linalg.norm(normal) < 1e-9:
            raise ValueError(f"array '{self.name}' lies along the z axis; it has no azimuth front")
        if normal[0] < -1e-9 or (abs(normal[0]) <= 1e-9 and normal[1] < 0):
            normal = -normal
        return float(np.rad2deg(np.arctan2(normal[1], normal[0]))) + 0.0

    @property
    def _axis(self) -> np.ndarray:
        """Unit vector ``(3,)`` of the mics' principal direction (a linear array's axis)."""
        return np.linalg.svd(self.positions - self.positions.mean(axis=0))[2][0]

    def in_front(self, azimuth_deg: Any, elevation_deg: Any = 0.0) -> Any:
        """The azimuth in ``[0, 360)`` at which a linear array reports a source at ``(azimuth_deg, elevation_deg)``:
        such an array measures only the angle between the source and its axis, so it hears the source at the
        direction in the x-y plane, within 90 degrees of :attr:`front_deg`, at that same angle from the axis (a
        source behind it at its mirror image; a source above it nearer the front). Other arrays: ``azimuth_deg``.
        Scalars give a float, arrays (broadcast together) an array."""
        az = np.asarray(azimuth_deg, dtype=np.float64) % 360.0
        if self.is_linear:
            axis = self._axis
            # written out: ``u @ axis`` rounds one direction otherwise than a row of many, and on the axis arccos
            # turns that into 1e-6 deg; this way a scalar and an array element give the same angle
            u = az_el_to_unit(az, elevation_deg)
            dot = u[..., 0] * axis[0] + u[..., 1] * axis[1] + u[..., 2] * axis[2]
            cos_axis = dot / max(float(np.hypot(axis[0], axis[1])), 1e-9)
            theta = np.rad2deg(np.arccos(np.clip(cos_axis, -1.0, 1.0)))
            axis_az = float(np.rad2deg(np.arctan2(axis[1], axis[0])))
            a, b = (axis_az + theta) % 360.0, (axis_az - theta) % 360.0
            front = self.front_deg
            az = np.where(azimuth_difference_deg(a, front) <= azimuth_difference_deg(b, front), a, b)
        az = np.where(az < 360.0, az, 0.0)  # (a tiny negative angle % 360 rounds to 360.0)
        return float(az) if az.ndim == 0 else az

    @property
    def centre(self) -> np.ndarray:
        """Mean mic position ``(3,)`` metres."""
        return self.positions.mean(axis=0)

    def tdoas_s(self, unit: np.ndarray, speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
        """Far-field TDOA of every pair for direction(s) ``unit (..., 3)``: ``(..., n_pairs)`` seconds.

        ``tdoa = t_i - t_j`` (positive when the wave reaches mic i after mic j).
        """
        u = np.asarray(unit, dtype=np.float64)
        d = self.positions[self.pairs[:, 0]] - self.positions[self.pairs[:, 1]]
        return -(u @ d.T) / speed_of_sound

    def mic_delays_s(self, unit: np.ndarray, speed_of_sound: float = SPEED_OF_SOUND) -> np.ndarray:
        """Far-field arrival time of each mic relative to the array centre, ``(..., n_mics)`` s."""
        u = np.asarray(unit, dtype=np.float64)
        return -(u @ (self.positions - self.centre).T) / speed_of_sound

    def select_channels(self, signals: np.ndarray) -> np.ndarray:
        """Take this array's mics out of a device recording ``(device_channels, samples)``.

        Returns ``(n_mics, samples)`` in mic order.
        """
        x = np.asarray(signals)
        if x.ndim != 2:
            raise ValueError(f"expected (channels, samples), got an array of shape {x.shape}")
        need = max(self.channels) + 1
        if x.shape[0] < need:
            raise ValueError(
                f"array '{self.name}' reads device channels {list(self.channels)}, but the input has only "
                f"{x.shape[0]} channel(s); expected at least {need}"
            )
        return x[list(self.channels)]

    def describe(self) -> dict:
        """Summary of derived facts (for ``farfield arrays``)."""
        return {
            "name": self.name,
            "n_mics": self.n_mics,
            "aperture_mm": round(self.aperture_m * 1000, 1),
            "min_spacing_mm": round(self.min_spacing_m * 1000, 1),
            "spatial_aliasing_hz": round(self.spatial_aliasing_hz()),
            "max_tdoa_us": round(float(self.max_tdoa_s().max()) * 1e6, 1),
            "planar": self.is_planar,
            "sample_rate": self.sample_rate,
            "device_channels": self.device_channels,
            "channels": list(self.channels),
        }

    def to_toml(self) -> str:
        """The profile as TOML text in the ``arrays/`` format."""
        lines = [f'name = "{self.name}"']
        if self.sample_rate is not None:
            lines.append(f"sample_rate = {int(self.sample_rate)}")
        if self.device_channels is not None:
            lines.append(f"device_channels = {int(self.device_channels)}")
        if self.device_pattern:
            lines.append(f'device_pattern = "{self.device_pattern}"')
        if self.source:
            lines.append(f"source = {_toml_str(self.source)}")
        if self.notes:
            lines.append(f"notes = {_toml_str(self.notes)}")
        if not self.verified:
            lines.append("verified = false")
        for p, c in zip(self.positions, self.channels):
            lines += ["", "[[mics]]", f"position = [{p[0]:.6f}, {p[1]:.6f}, {p[2]:.6f}]", f"channel = {c}"]
        return "\n".join(lines) + "\n"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# --------------------------------------------------------------------------- profiles
def list_arrays() -> list[str]:
    """Names of the built-in array profiles, sorted."""
    names = set()
    for d in data_dirs("arrays"):
        names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def parse_profile(data: dict, origin: str = "<dict>") -> ArrayGeometry:
    """Build an :class:`ArrayGeometry` from a parsed profile dictionary (see ``arrays/README.md``)."""
    if not isinstance(data, dict):
        raise ProfileError(f"{origin}: a profile must be a TOML table, got {type(data).__name__}")
    missing = _REQUIRED_KEYS - data.keys()
    if missing:
        raise ProfileError(f"{origin}: missing required key(s) {sorted(missing)}; required: {sorted(_REQUIRED_KEYS)}")
    unknown = data.keys() - _REQUIRED_KEYS - _OPTIONAL_KEYS
    if unknown:
        raise ProfileError(
            f"{origin}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_REQUIRED_KEYS | _OPTIONAL_KEYS)}"
        )
    mics = data["mics"]
    if not isinstance(mics, list) or not all(isinstance(m, dict) for m in mics):
        raise ProfileError(f"{origin}: 'mics' must be an array of tables ([[mics]] entries)")
    positions, channels = [], []
    for k, m in enumerate(mics):
        miss = _MIC_KEYS - m.keys()
        if miss:
            raise ProfileError(f"{origin}: mic #{k} is missing key(s) {sorted(miss)}; each mic needs position and "
                               "channel")
        extra = m.keys() - _MIC_KEYS - {"notes"}
        if extra:
            raise ProfileError(f"{origin}: mic #{k} has unknown key(s) {sorted(extra)}")
        pos = m["position"]
        if not isinstance(pos, list) or len(pos) != 3 or not all(isinstance(v, (int, float)) for v in pos):
            raise ProfileError(f"{origin}: mic #{k} position must be [x, y, z] in metres, got {pos!r}")
        ch = m["channel"]
        if not isinstance(ch, int) or isinstance(ch, bool):
            raise ProfileError(f"{origin}: mic #{k} channel must be an integer, got {ch!r}")
        positions.append([float(v) for v in pos])
        channels.append(ch)
    if not positions:
        raise ProfileError(f"{origin}: 'mics' is empty; needs at least 2 microphones")
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{origin}: 'name' must be a non-empty string")
    try:
        return ArrayGeometry(
            positions=np.array(positions),
            channels=tuple(channels),
            name=name,
            sample_rate=data.get("sample_rate"),
            device_channels=data.get("device_channels"),
            device_pattern=data.get("device_pattern"),
            notes=str(data.get("notes", "")),
            source=str(data.get("source", "")),
            verified=bool(data.get("verified", True)),
        )
    except ProfileError as e:
        raise ProfileError(f"{origin}: {e}") from None


def load_array(name_or_path: str | Path | ArrayGeometry) -> ArrayGeometry:
    """Load an array profile by built-in name (see :func:`list_arrays`) or from a TOML file path."""
    if isinstance(name_or_path, ArrayGeometry):
        return name_or_path
    s = str(name_or_path)
    path = Path(s)
    if not (path.suffix == ".toml" or path.exists()):
        for d in data_dirs("arrays"):
            cand = d / f"{s}.toml"
            if cand.exists():
                path = cand
                break
        else:
            raise ProfileError(f"no array profile named '{s}'; built-in profiles: {', '.join(list_arrays())}; "
                               "or give a path to a .toml file")
    if not path.exists():
        raise ProfileError(f"array profile file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: not valid TOML: {e}") from None
    return parse_profile(data, origin=str(path))


def circular_array(n_mics: int, radius_m: float, *, centre_mic: bool = False, name: str | None = None,
                   start_deg: float = 0.0) -> ArrayGeometry:
    """A uniform circular array in the x-y plane (optionally with a centre mic first)."""
    ang = np.deg2rad(start_deg + 360.0 * np.arange(n_mics) / n_mics)
    pos = np.stack([radius_m * np.cos(ang), radius_m * np.sin(ang), np.zeros(n_mics)], axis=1)
    if centre_mic:
        pos = np.concatenate([np.zeros((1, 3)), pos])
    return ArrayGeometry(pos, name=name or f"uca{len(pos)}-r{radius_m * 1000:.0f}mm")
