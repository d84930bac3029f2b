"""Where built-in data files live: the installed package data, else the source tree."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_dirs(kind: str) -> list[Path]:
    """Folders holding built-in ``kind`` files ("arrays" or "simulations"): ``farfield/_data/<kind>`` in an
    installed wheel, and ``<kind>/`` beside the package in a source checkout."""
    dirs = []
    try:
        pkg = resources.files("farfield") / "_data" / kind
        if pkg.is_dir():
            dirs.append(Path(str(pkg)))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    src = Path(__file__).resolve().parent.parent / kind
    if src.is_dir():
        dirs.append(src)
    return dirs
