"""Scene recipes: TOML files that describe *distributions* of scenes (documented in ``simulations/README.md``).

A value in a recipe is one of:

- a number, string or boolean: used as is;
- a two-number list ``[lo, hi]``: drawn uniformly (integers inclusive for integer keys such as ``count``);
- ``{choice = [a, b, ...]}``: one of the listed values, equally likely.

``load_recipe`` checks every key against the schema below and raises :class:`RecipeError` naming the file, the
key and what was expected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._data import data_dirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class RecipeError(ValueError):
    """A recipe file that cannot be used; the message names the file and the key."""


# Schema: key -> (kind, default). kinds: "num" (float or range), "int" (int or range), "str", "bool",
# "size" (three numbers or ranges), "xy" (two numbers). A default of ... means required.
_TOP = {"name": ("str", ...), "description": ("str", ""), "sample_rate": ("int", 16000),
        "duration_s": ("num", 20.0), "label_hop_s": ("num", 0.05)}
_ROOM = {"size_m": ("size", ...), "rt60_s": ("num", ...), "rir": ("str", "ism"), "max_order": ("int", 40)}
_ARRAY = {"profile": ("str", ...), "height_m": ("num", 1.0), "yaw_deg": ("num", [0.0, 360.0]),
          "wall_margin_m": ("num", 0.5), "position_m": ("xy", None)}
_TALKERS = {"count": ("int", ...), "distance_m": ("num", [0.8, 3.0]), "height_m": ("num", [1.2, 1.8]),
            "min_separation_deg": ("num", 20.0), "walking_prob": ("num", 0.0), "walk_speed_mps": ("num", [0.3, 1.0]),
            "level_db": ("num", [-3.0, 3.0]), "speech": ("str", "espeak")}
_CONVERSATION = {"first_turn_s": ("num", [0.2, 1.0]), "turn_s": ("num", [1.0, 4.0]), "gap_s": ("num", [-0.3, 1.0]),
                 "backchannel_prob": ("num", 0.15), "long_pause_prob": ("num", 0.1),
                 "long_pause_s": ("num", [2.0, 4.0])}
_MIX = {"snr_db": ("num", 10.0), "level_dbfs": ("num", [-32.0, -22.0]), "mic_self_noise_dbfs": ("num", -90.0),
        "gain_mismatch_db": ("num", 0.0), "clip_dbfs": ("num", 0.0)}
_OUTPUT = {"noise_images": ("bool", False), "subtype": ("str", "FLOAT")}
_NOISE_COMMON = {"type": ("str", ...), "count": ("int", 1), "level_db": ("num", 0.0), "distance_m": ("num", [2.0, 8.0]),
                 "height_m": ("num", [0.3, 2.0]), "position_m": ("size", None)}
NOISE_TYPES = {
    "diffuse": {"colour": ("str", "pink")},
    "babble": {"voices": ("int", [6, 10])},
    "machine_hum": {"mains_hz": ("num", 50.0)},
    "rotating_machine": {"rpm": ("num", [900.0, 3000.0]), "blades": ("int", [4, 9])},
    "impulsive": {"rate_hz": ("num", [0.5, 3.0]), "periodic": ("bool", False)},
    "pneumatic": {"rate_hz": ("num", [0.1, 0.5])},
    "conveyor": {"roller_hz": ("num", [4.0, 12.0])},
    "robot_self_noise": {},
    "recording": {"path": ("str", ...)},
    "background_talkers": {},
    "tv": {"sir_db": ("num", [0.0, 10.0])},
    "radio": {"sir_db": ("num", [0.0, 10.0])},
}
"""Noise source types and their own keys. ``diffuse`` and ``babble`` are spatially diffuse (no position);
``tv`` and ``radio`` are playback of speech at a fixed place, levelled by ``sir_db`` against the talkers and
labelled as playback; all others are point sources whose mix is levelled by the scene's ``snr_db``."""
DIFFUSE_TYPES = ("diffuse", "babble")
PLAYBACK_TYPES = ("tv", "radio")
_SECTIONS = {"room": _ROOM, "array": _ARRAY, "talkers": _TALKERS, "conversation": _CONVERSATION, "mix": _MIX,
             "output": _OUTPUT}


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: ``spec`` holds every section with defaults filled in; ``source`` is its path."""

    name: str
    spec: dict
    source: str

    def draw(self, rng: np.random.Generator, section: str, key: str, index: int | None = None) -> Any:
        """Draw one value of ``section.key`` (``section`` "" for top level; ``noise`` with ``index``)."""
        if section == "noise":
            table = self.spec["noise"][index]
        else:
            table = self.spec if section == "" else self.spec[section]
        return draw_value(table[key], rng)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_value(where: str, kind: str, value: Any) -> Any:
    def bad(expected: str) -> RecipeError:
        return RecipeError(f"{where}: expected {expected}, found {value!r}")

    if isinstance(value, dict):
        if set(value) != {"choice"} or not isinstance(value["choice"], list) or not value["choice"]:
            raise bad("{choice = [...]} with a non-empty list")
        return {"choice": [_check_value(where, kind, v) for v in value["choice"]]}
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif kind in ("num", "int"):
        if isinstance(value, list):
            if len(value) != 2 or not all(_is_num(v) for v in value):
                raise bad("a number or a [lo, hi] range")
            if value[0] > value[1]:
                raise bad("a range with lo <= hi")
            if kind == "int" and not all(float(v).is_integer() for v in value):
                raise bad("integers")
        elif not _is_num(value):
            raise bad("a number or a [lo, hi] range")
        elif kind == "int" and not float(value).is_integer():
            raise bad("an integer")
        cast = int if kind == "int" else float
        return [cast(v) for v in value] if isinstance(value, list) else cast(value)
    elif kind == "size":
        if not isinstance(value, list) or len(value) != 3:
            raise bad("three values [x, y, z] (each a number or a [lo, hi] range)")
        return [_check_value(f"{where}[{k}]", "num", v) for k, v in enumerate(value)]
    elif kind == "xy":
        if not isinstance(value, list) or len(value) != 2 or not all(_is_num(v) for v in value):
            raise bad("two numbers [x, y]")
        return [float(v) for v in value]
    return value


def _check_table(where: str, table: Any, schema: dict) -> dict:
    if not isinstance(table, dict):
        raise RecipeError(f"{where}: expected a table, found {table!r}")
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(schema)}")
    out = {}
    for key, (kind, default) in schema.items():
        if key in table:
            out[key] = _check_value(f"{where}.{key}" if where else key, kind, table[key])
        elif default is ...:
            raise RecipeError(f"{where or 'recipe'}: missing required key '{key}'")
        else:
            out[key] = default
    return out


def _lo(v: Any) -> float:
    if isinstance(v, dict):
        return min(_lo(c) for c in v["choice"])
    return float(v[0]) if isinstance(v, list) else float(v)


def _hi(v: Any) -> float:
    if isinstance(v, dict):
        return max(_hi(c) for c in v["choice"])
    return float(v[1]) if isinstance(v, list) else float(v)


def parse_recipe(data: dict, source: str = "<recipe>") -> Recipe:
    """Validate a recipe given as a dict (as read from TOML)."""
    try:
        top = _check_table("", {k: v for k, v in data.items() if k not in _SECTIONS and k != "noise"}, _TOP)
        spec = dict(top)
        for sec, schema in _SECTIONS.items():
            spec[sec] = _check_table(sec, data.get(sec, {}), schema)
        noises = data.get("noise", [])
        if not isinstance(noises, list):
            raise RecipeError("noise: expected [[noise]] tables")
        spec["noise"] = []
        for i, n in enumerate(noises):
            where = f"noise[{i}]"
            if not isinstance(n, dict) or "type" not in n:
                raise RecipeError(f"{where}: missing required key 'type'")
            if n["type"] not in NOISE_TYPES:
                raise RecipeError(f"{where}.type: unknown noise type {n['type']!r}; expected one of "
                                  f"{sorted(NOISE_TYPES)}")
            spec["noise"].append(_check_table(where, n, {**_NOISE_COMMON, **NOISE_TYPES[n["type"]]}))
        _check_consistency(spec)
    except RecipeError as e:
        raise RecipeError(f"{source}: {e}") from None
    return Recipe(spec["name"], spec, source)


def _check_consistency(spec: dict) -> None:
    """Geometry and range checks that do not need a draw."""
    room, arr, tk = spec["room"], spec["array"], spec["talkers"]
    for k, v in enumerate(room["size_m"]):
        if _lo(v) < 1.0:
            raise RecipeError(f"room.size_m[{k}]: a room side of {_lo(v)} m is too small (at least 1 m)")
    if _lo(room["rt60_s"]) <= 0:
        raise RecipeError(f"room.rt60_s: must be > 0, found {room['rt60_s']!r}")
    if room["rir"] not in ("ism", "hybrid"):
        raise RecipeError(f"room.rir: expected 'ism' or 'hybrid', found {room['rir']!r}")
    min_h = _lo(room["size_m"][2])
    for key, value in (("array.height_m", arr["height_m"]), ("talkers.height_m", tk["height_m"])):
        if _lo(value) <= 0 or _hi(value) >= min_h:
            raise RecipeError(f"{key}: heights {value!r} m must lie inside the room (0, {min_h}) m")
    min_side = min(_lo(room["size_m"][0]), _lo(room["size_m"][1]))
    if 2 * _hi(arr["wall_margin_m"]) >= min_side:
        raise RecipeError(f"array.wall_margin_m: {arr['wall_margin_m']!r} m leaves no floor space in a {min_side} m "
                          "wide room")
    if _lo(tk["count"]) < 1:
        raise RecipeError("talkers.count: at least 1 talker is needed (the SNR is defined against the talkers)")
    diag = float(np.hypot(_hi(room["size_m"][0]), _hi(room["size_m"][1])))
    if _lo(tk["distance_m"]) <= 0 or _lo(tk["distance_m"]) >= diag:
        raise RecipeError(f"talkers.distance_m: {tk['distance_m']!r} m cannot fit in a room whose floor diagonal is "
                          f"{diag:.1f} m")
    for key in ("walking_prob", "backchannel_prob", "long_pause_prob"):
        sec = "talkers" if key == "walking_prob" else "conversation"
        v = spec[sec][key]
        if _lo(v) < 0 or _hi(v) > 1:
            raise RecipeError(f"{sec}.{key}: a probability in [0, 1] is expected, found {v!r}")
    if _lo(spec["duration_s"]) <= 0:
        raise RecipeError(f"duration_s: must be > 0, found {spec['duration_s']!r}")
    if spec["output"]["subtype"] not in ("FLOAT", "PCM_16", "PCM_24"):
        raise RecipeError(f"output.subtype: expected FLOAT, PCM_16 or PCM_24, found {spec['output']['subtype']!r}")
    for i, n in enumerate(spec["noise"]):
        if n["position_m"] is not None:
            for k, (p, side) in enumerate(zip(n["position_m"], room["size_m"])):
                if _lo(p) <= 0 or _hi(p) >= _lo(side):
                    raise RecipeError(f"noise[{i}].position_m: coordinate {k} = {p!r} m is outside the room "
                                      f"(0, {_lo(side)}) m")
        if n["type"] == "recording" and not Path(n["path"]).expanduser().exists():
            raise RecipeError(f"noise[{i}].path: file not found: {n['path']}")


def list_recipes() -> list[str]:
    """Names of the built-in scene recipes."""
    return sorted({p.stem for d in data_dirs("simulations") for p in d.glob("*.toml")})


def load_recipe(name_or_path: str | Path | Recipe) -> Recipe:
    """Load a built-in recipe by name (see :func:`list_recipes`) or a TOML file."""
    if isinstance(name_or_path, Recipe):
        return name_or_path
    path = Path(name_or_path)
    if not path.exists():
        for d in data_dirs("simulations"):
            if (d / f"{name_or_path}.toml").exists():
                path = d / f"{name_or_path}.toml"
                break
        else:
            raise RecipeError(f"no recipe file or built-in recipe named '{name_or_path}'; built-in: {list_recipes()}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None
    return parse_recipe(data, str(path))


def draw_value(value: Any, rng: np.random.Generator) -> Any:
    """Draw a concrete value from a recipe value (see the module docstring)."""
    if isinstance(value, dict):
        return draw_value(value["choice"][int(rng.integers(len(value["choice"])))], rng)
    if isinstance(value, list) and len(value) == 2 and all(_is_num(v) for v in value):
        lo, hi = value
        if isinstance(lo, int) and isinstance(hi, int):
            return int(rng.integers(lo, hi + 1))
        return float(rng.uniform(lo, hi))
    if isinstance(value, list):
        return [draw_value(v, rng) for v in value]
    return value
