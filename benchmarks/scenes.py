"""Shared scene generation for the benchmarks: pyroomacoustics rooms with real speech and known truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

import farfield as ff
from farfield.sim import SourceSpec, render_scene

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SPEECH = sorted((DATA / "speech").glob("*.wav")) if (DATA / "speech").is_dir() else []
SAMPLE_RATE = 16000

GEOMETRIES = {"4-mic": "respeaker-usb-4mic", "6-mic": "respeaker-6mic-hat", "8-mic": "matrix-creator"}


def speech_files(rng: np.random.Generator, n: int) -> list[Path]:
    """``n`` different files of ../shared/data/speech: two talkers reading the same file (files shorter than a
    scene all start at 0) would be one coherent source heard twice, not two talkers."""
    if not SPEECH:
        raise SystemExit(f"speech data not found under {DATA / 'speech'}; the benchmarks need ../shared/data")
    if n > len(SPEECH):
        raise SystemExit(f"{n} talkers need {n} speech files, {DATA / 'speech'} has {len(SPEECH)}")
    return [SPEECH[i] for i in rng.choice(len(SPEECH), size=n, replace=False)]


def speech_signal(rng: np.random.Generator, duration_s: float, f: Path) -> np.ndarray:
    """Speech file ``f``, unit variance, looped/cut to ``duration_s`` from a random start."""
    x, sr = sf.read(str(f), dtype="float64")
    assert sr == SAMPLE_RATE
    x = x / (np.std(x) + 1e-12)
    n = int(duration_s * SAMPLE_RATE)
    start = rng.integers(0, max(1, x.size - n)) if x.size > n else 0
    return np.resize(x[start:], n)


def make_scene(array: str, n_talkers: int, rt60_s: float, snr_db: float | None, seed: int, duration_s: float = 6.0,
               min_sep_deg: float = 40.0, lead_in_s: float = 0.0):
    """Talkers 1-2.5 m from an array at 1 m height in a 7 x 6 x 3 m room, at least ``min_sep_deg`` apart, and
    spherically diffuse noise at ``snr_db`` (``None``: no noise). The talkers talk for ``duration_s`` after
    ``lead_in_s`` of noise alone (the scene lasts both; the same draws as without it, and the same noise level
    relative to the talkers: ``snr_db`` is over their ``duration_s``)."""
    rng = np.random.default_rng(seed)
    geom = ff.load_array(array)
    room = np.array([7.0, 6.0, 3.0])
    centre = np.array([3.3, 2.8, 1.0])
    azs: list[float] = []
    while len(azs) < n_talkers:
        a = rng.uniform(0, 360)
        if all(ff.geometry.azimuth_difference_deg(a, b) >= min_sep_deg for b in azs):
            azs.append(a)
    files = speech_files(rng, n_talkers)
    sources = []
    for k, a in enumerate(azs):
        d = rng.uniform(1.0, 2.5)
        pos = centre + np.array([d * np.cos(np.deg2rad(a)), d * np.sin(np.deg2rad(a)), rng.uniform(0.2, 0.7)])
        sources.append(SourceSpec(speech_signal(rng, duration_s, files[k]), tuple(np.clip(pos, 0.3, room - 0.3)),
                                  name=f"t{k}", start_s=lead_in_s))
    if snr_db is not None:  # render_scene sets the noise against the talkers' mean power over the whole scene
        snr_db += 10 * np.log10(duration_s / (duration_s + lead_in_s))
    return geom, render_scene(geom, sources, SAMPLE_RATE, room_dim=room, rt60_s=rt60_s, array_position=centre,
                              snr_db=snr_db, duration_s=duration_s + lead_in_s, rng=rng, max_order=25)


# the people in ../shared/data/speech (README): file stems per person; each person's first ENROL_S (or first file)
# is held out for enrolment, the rest is what they say in the rooms
PEOPLE = {"office_female_1": ["office_female_1"], "office_female_2": ["office_female_2"],
          "office_female_3": ["office_female_3"], "office_male_1": ["office_male_1"],
          "office_male_2": ["office_male_2"], "office_male_3": ["office_male_3"],
          "arctic_aew": ["cmu_arctic_us_aew_a0001", "cmu_arctic_us_aew_a0002", "cmu_arctic_us_aew_a0003"],
          "arctic_axb": ["cmu_arctic_us_axb_a0004", "cmu_arctic_us_axb_a0005", "cmu_arctic_us_axb_a0006"],
          "librispeech_1088": ["libri-1088-134315-0000"]}
ENROL_S = 4.0


def real_voice_bank(folder: Path) -> dict[str, np.ndarray]:
    """Write a speech bank of the real voices in ../shared/data/speech to ``folder`` (one sub-folder per person,
    for ``render_recipe_scene(..., speech=folder)``) and return each person's held-out enrolment audio (16 kHz):
    their first file when they have several, else the first ``ENROL_S`` of their one file. The rooms never play
    the enrolment audio (the files are short, so the rest repeats within a long scene)."""
    if not SPEECH:
        raise SystemExit(f"speech data not found under {DATA / 'speech'}; the benchmarks need ../shared/data")
    enrol = {}
    for person, stems in PEOPLE.items():
        clips = [sf.read(str(DATA / "speech" / f"{s}.wav"), dtype="float64")[0] for s in stems]
        if len(clips) > 1:
            enrol[person], rest = clips[0], clips[1:]
        else:
            cut = int(ENROL_S * SAMPLE_RATE)
            enrol[person], rest = clips[0][:cut], [clips[0][cut:]]
        (folder / person).mkdir(parents=True, exist_ok=True)
        for k, x in enumerate(rest):
            sf.write(str(folder / person / f"{k}.wav"), x, SAMPLE_RATE)
    return enrol
