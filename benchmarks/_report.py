"""Shared by the benchmark scripts: print a result table and keep it under benchmarks/results/."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path | None) -> None:
    """Print ``lines``; also write them to ``out`` when given."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
