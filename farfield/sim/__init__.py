"""Simulated rooms with exact labels (pyroomacoustics), for tests, benchmarks and training data."""

from .noise import diffuse_noise, spherical_coherence
from .room import RenderedScene, SourceSpec, direction_from_array, render_scene
from .sources import synthetic_speech

__all__ = ["diffuse_noise", "spherical_coherence", "RenderedScene", "SourceSpec", "render_scene",
           "direction_from_array", "synthetic_speech"]
