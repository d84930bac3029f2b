"""pyroomacoustics DOA set up on exactly farfield's grid and band, for side-by-side runs."""

from __future__ import annotations

import warnings

import numpy as np
import pyroomacoustics as pra
from pyroomacoustics.doa.doa import ModeVector

import farfield as ff


def pra_doa(method: str, array: ff.ArrayGeometry, grid: ff.DirectionGrid, sample_rate: int, nfft: int,
            num_src: int):
    """A pyroomacoustics DOA object ('SRP', 'NormMUSIC', ...) whose search grid is ``grid``'s points."""
    az = np.deg2rad(grid.azimuth_deg)
    colat = np.pi / 2 - np.deg2rad(grid.elevation_deg)
    if grid.kind in ("circle", "half-circle"):  # pyroomacoustics' 2-D mode: the same azimuths, mics on the plane
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pra.doa.algorithms[method](array.positions[:, :2].T, sample_rate, nfft, c=ff.SPEED_OF_SOUND,
                                              num_src=num_src, dim=2, azimuth=az)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doa = pra.doa.algorithms[method](array.positions.T, sample_rate, nfft, c=ff.SPEED_OF_SOUND,
                                         num_src=num_src, dim=3, n_grid=16)
    doa.grid = pra.doa.GridSphere(spherical_points=np.vstack([az, colat]))
    doa.mode_vec = ModeVector(doa.L, doa.fs, doa.nfft, doa.c, doa.grid)
    return doa


def pra_locate(doa, X: np.ndarray, freq_range) -> np.ndarray:
    """Azimuths (deg) found by ``doa`` from STFT snapshots ``X (M, F, S)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doa.locate_sources(X, freq_range=list(freq_range))
    return np.rad2deg(np.atleast_1d(doa.azimuth_recon)) % 360
