"""Shared by the benchmark scripts: print a result table and keep it under benchmarks/results/; read
``NAME=VALUE`` options from the command line."""

from __future__ import annotations

import argparse
import ast
import platform
from importlib import metadata
from pathlib import Path

# the packages whose versions a result depends on (the same code's figures moved with them: EXPERIMENTS.md, Diarization)
_PACKAGES = ("numpy", "scipy", "numba", "pyroomacoustics", "torch", "silero-vad", "resemblyzer", "soxr")


def environment() -> str:
    """One line: Python and the versions of the packages the results depend on (absent ones left out)."""
    found = []
    for name in _PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return f"environment: Python {platform.python_version()}, " + ", ".join(found)


def emit(lines: list[str], out: Path | None) -> None:
    """Print ``lines`` and the :func:`environment` line; also write them to ``out`` when given."""
    text = "\n".join([*lines, environment()])
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def option(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` -> ``(NAME, VALUE)``, VALUE a Python literal (``0.6``, ``False``): an argparse ``type``."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as dominance_fit=0.6, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"the value of {name} must be a Python literal (0.6, False), got "
                                         f"{value!r}") from None
