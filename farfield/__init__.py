"""farfield: ears for robots and voice agents.

Streaming, numba-accelerated microphone-array processing: localization (GCC-PHAT, SRP-PHAT, MUSIC),
multi-source tracking, per-talker beamforming (``farfield.frontend``), diarization and target selection
(``farfield.diarize``, ``farfield.target``), live capture (``farfield.capture``), downstream adapters
(``farfield.adapters``) and simulated rooms with exact labels (``farfield.sim``).

Conventions: waveforms ``(channels, samples)``; STFTs ``(channels, freq, frames)``; mic positions metres
``(n_mics, 3)``; azimuth degrees counter-clockwise from the array's +x axis; elevation degrees up from its
x-y plane; ``sample_rate`` always explicit.
"""

from .geometry import (
    SPEED_OF_SOUND,
    ArrayGeometry,
    ProfileError,
    angular_distance_deg,
    az_el_to_unit,
    circular_array,
    list_arrays,
    load_array,
    unit_to_az_el,
)
from .grids import DirectionGrid, circle_grid, make_grid, sphere_grid
from .localize import Detection, LocalizationFrame, LocalizationResult, Localizer, gcc_phat, localize
from .stft import StreamingISTFT, StreamingSTFT, istft, stft
from .track import STILL_TALKERS, Tracker, TrackRow
from .frontend import Cue, Frontend, process

__version__ = "0.1.0"

__all__ = [
    "SPEED_OF_SOUND", "ArrayGeometry", "ProfileError", "angular_distance_deg", "az_el_to_unit", "circular_array",
    "list_arrays", "load_array", "unit_to_az_el", "DirectionGrid", "circle_grid", "make_grid", "sphere_grid",
    "Detection", "LocalizationFrame", "LocalizationResult", "Localizer", "gcc_phat", "localize",
    "StreamingISTFT", "StreamingSTFT", "istft", "stft", "STILL_TALKERS", "Tracker", "TrackRow", "Cue",
    "Frontend", "process",
    "__version__",
]
