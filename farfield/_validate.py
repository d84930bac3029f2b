"""Input checks shared by the public entry points. Every message says what was found and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np


def finite_or_nan(value: Any) -> float:
    """``float(value)``, or NaN when it is not a number (for checks that then say what they got)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def check_sample_rate(sample_rate: Any, *, expected: int | None = None) -> int:
    """Return ``sample_rate`` as int; raise if it is not a positive whole number (or not ``expected``)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float)):
        raise TypeError(f"sample_rate must be a number in Hz, got {type(sample_rate).__name__}")
    if sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise ValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate}")
    sr = int(sample_rate)
    if expected is not None and sr != expected:
        raise ValueError(f"sample_rate is {sr} Hz but this object was set up for {expected} Hz")
    if sr < 4000:
        raise ValueError(f"sample_rate {sr} Hz is too low for speech processing; expected at least 4000 Hz")
    return sr


def check_settings(owner: str, low: float = 0.0, high: float = np.inf, **settings: Any) -> None:
    """Raise if any of ``settings`` (name=value) is not a finite number within ``[low, high]``."""
    for name, value in settings.items():
        ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
        if not ok or not np.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{owner}: {name} must be a finite number from {low:g} to {high:g}, got {value!r}")


def check_signals(signals: Any, *, n_channels: int | None = None, name: str = "signals",
                  allow_empty: bool = False, dtype: type = np.float64) -> np.ndarray:
    """Validate a waveform ``(channels, samples)``; return it as a C-contiguous float array.

    Raises on the wrong number of dimensions, the wrong channel count, NaN/inf, and (unless
    ``allow_empty``) zero samples.
    """
    x = np.asarray(signals)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real-valued numeric array, got dtype {x.dtype}")
    if x.ndim != 2:
        hint = " (a mono signal needs shape (1, samples))" if x.ndim == 1 else ""
        raise ValueError(f"{name} must have shape (channels, samples), got shape {x.shape}{hint}")
    if n_channels is not None and x.shape[0] != n_channels:
        hint = ""
        if x.shape[1] == n_channels:
            hint = "; it looks like (samples, channels): transpose it"
        raise ValueError(f"{name} has {x.shape[0]} channel(s), expected {n_channels} (one per microphone){hint}")
    if x.shape[1] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 samples); expected at least one block of audio")
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        return np.ascontiguousarray(x.astype(dtype) / max(abs(info.min), info.max))
    x = np.ascontiguousarray(x, dtype=dtype)  # first: the check below is faster on contiguous memory
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{name} contains NaN or inf (first at channel {bad[0]}, sample {bad[1]})")
    return x


def check_not_silent(x: np.ndarray, *, name: str = "signals") -> None:
    """Raise if every sample of ``x`` is zero (an offline call on silence has nothing to find)."""
    if not np.any(x):
        raise ValueError(f"{name} is silent: all {x.shape[-1]} samples are zero on every channel; "
                         "check the input device, gain and channel mapping")
