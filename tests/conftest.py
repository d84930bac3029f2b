import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# no wall-clock limits in tests: hypothesis' default 200 ms deadline per example fails on a loaded machine
settings.register_profile("farfield", deadline=None)
settings.load_profile("farfield")

sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def plane_wave(array, azimuth_deg, elevation_deg, n_samples, sample_rate, rng, signal=None):
    """Far-field plane wave of white noise (or ``signal``) at every mic of ``array``: (n_mics, n_samples)."""
    import farfield as ff

    s = rng.standard_normal(n_samples) if signal is None else signal
    d = array.mic_delays_s(ff.az_el_to_unit(azimuth_deg, elevation_deg))
    n = 2 * n_samples
    S = np.fft.rfft(s, n)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    return np.fft.irfft(S[None] * np.exp(-2j * np.pi * f[None] * d[:, None]), n)[:, :n_samples]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def require_data(sub: str) -> Path:
    p = DATA / sub
    if not p.exists():
        pytest.skip(f"real recordings not available: {p} is missing (tests read ../shared/data)")
    return p
