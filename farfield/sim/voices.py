"""Speech for simulated talkers: built-in espeak-ng voices (no download) or a folder of recordings.

A :class:`Voice` is one simulated person: it says utterances of a requested length, always in the same voice.
Voices come from a :class:`SpeechBank`: ``EspeakBank`` (espeak-ng through the ``espeakng-loader`` package, many
voice variants, rates and pitches) or ``FolderBank`` (wav/flac files; with LibriSpeech-style sub-folders one
sub-folder is one speaker, otherwise each file is its own speaker). All output is mono float64 at the requested
``sample_rate``, RMS-normalised to 0.1 over its active part.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")

_WORDS = (
    "robot please bring the red box to station four stop there move left right forward back turn around "
    "pick up that part hand me the wrench where is the forklift check line two the pallet is ready load it "
    "again wait here follow me come over slowly careful yes no okay thanks what did you say repeat that "
    "the machine on the left is too loud schedule maintenance for tomorrow morning open the door close it "
    "battery level how many items are left start the conveyor shut it down call the supervisor go to the "
    "charging dock lift the crate higher lower put it on the shelf next to the blue bin today we ship "
    "twenty orders the printer needs paper the coffee machine is broken meet me at the loading bay"
).split()
_BACKCHANNELS = ("yeah", "okay", "right", "mm hmm", "sure", "uh huh", "yes", "no", "got it")
_ESPEAK_LANGS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-us-nyc",
                 "en-gb-x-gbcwmd")
_ESPEAK_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 5)) + (
    "croak", "klatt", "klatt2", "klatt3", "whisper", "Michael", "steph", "robert", "john", "linda", "quincy",
    "Andrea", "Annie", "benjamin", "grandma", "grandpa", "Mario", "david", "edward", "max", "norbert")


def _normalise(x: np.ndarray, rms: float = 0.1) -> np.ndarray:
    """Scale to ``rms`` over the active part (frames within 40 dB of the loudest 10 ms frame)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or not np.any(x):
        raise ValueError("speech source is empty or silent")
    hop = 160
    fr = np.pad(x, (0, -x.size % hop)).reshape(-1, hop)
    e = np.mean(fr**2, axis=1)
    act = e > e.max() * 1e-4
    return x * (rms / np.sqrt(np.mean(e[act])))


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return x
    fr = Fraction(rate_out, rate_in)
    return resample_poly(x, fr.numerator, fr.denominator)


class _Espeak:
    """espeak-ng through ctypes, one utterance per forked child process.

    espeak-ng keeps hidden state between utterances (its pitch-flutter index and noise generators), so the same
    text would sound slightly different depending on what was said before, and a scene would depend on the
    order scenes were rendered in. Synthesising each utterance in a freshly forked child that initialises the
    library from scratch makes every utterance a pure function of its arguments. Where ``os.fork`` does not
    exist (Windows) synthesis runs in-process and scenes are reproducible only within one process.
    """

    _lock = threading.Lock()
    _inproc: tuple | None = None  # (library, sample rate, chunk list, callback) when synthesising in-process

    @staticmethod
    def _load() -> tuple[ctypes.CDLL, int, list[np.ndarray], object]:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - a dependency
            raise ImportError("built-in voices need the 'espeakng-loader' package: pip install espeakng-loader") from e
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        # espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS=2, buflength, path, options) -> sample rate
        rate = int(lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0))
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise (returned {rate})")
        chunks: list[np.ndarray] = []
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

        def callback(wav, n, events):  # noqa: ARG001 - signature fixed by espeak
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        cb = proto(callback)
        lib.espeak_SetSynthCallback(cb)
        return lib, rate, chunks, cb

    @staticmethod
    def _speak(lib, chunks, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> np.ndarray:
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice '{voice}'")
        for param, value in ((1, rate_wpm), (3, pitch), (4, pitch_range)):  # espeakRATE, PITCH, RANGE
            lib.espeak_SetParameter(param, int(value), 0)
        lib.espeak_ng_SetRandSeed(1)
        chunks.clear()
        data = text.encode()
        err = lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0x1000, None, None)  # espeakENDPAUSE
        if err != 0:
            raise RuntimeError(f"espeak-ng synthesis failed with code {err}")
        return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)

    @classmethod
    def synth(cls, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, int]:
        """``(speech (samples,) float64, sample_rate)``."""
        args = (text, voice, rate_wpm, pitch, pitch_range)
        with cls._lock:
            if not hasattr(os, "fork"):  # pragma: no cover - Windows
                if cls._inproc is None:
                    cls._inproc = cls._load()
                lib, rate, chunks, _ = cls._inproc
                return cls._speak(lib, chunks, *args).astype(np.float64) / 32768.0, rate
            r, w = os.pipe()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only synthesises
                pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    os.close(r)
                    lib, rate, chunks, _ = cls._load()
                    pcm = cls._speak(lib, chunks, *args)
                    payload = struct.pack("<ii", 0, rate) + pcm.tobytes()
                except BaseException as e:  # report, never return into the parent's code
                    payload = struct.pack("<ii", 1, 0) + f"{type(e).__name__}: {e}".encode()
                    code = 1
                view = memoryview(payload)
                while view:
                    view = view[os.write(w, view):]
                os._exit(code)
            os.close(w)
            parts = []
            while True:
                b = os.read(r, 1 << 20)
                if not b:
                    break
                parts.append(b)
            os.close(r)
            os.waitpid(pid, 0)
        data = b"".join(parts)
        if len(data) < 8:
            raise RuntimeError("espeak-ng child process died without output")
        failed, rate = struct.unpack("<ii", data[:8])
        if failed:
            msg = data[8:].decode(errors="replace")
            raise (ValueError if msg.startswith("ValueError") else RuntimeError)(msg.split(": ", 1)[-1])
        return np.frombuffer(data[8:], dtype=np.int16).astype(np.float64) / 32768.0, rate


@dataclass(frozen=True)
class Voice:
    """One simulated person. ``say(duration_s, rng)`` returns an utterance of about that length."""

    bank: "SpeechBank"
    key: tuple
    sample_rate: int

    def say(self, duration_s: float, rng: np.random.Generator) -> np.ndarray:
        return self.bank.utterance(self.key, duration_s, self.sample_rate, rng)

    def backchannel(self, rng: np.random.Generator) -> np.ndarray:
        return self.bank.utterance(self.key, -1.0, self.sample_rate, rng)

    def describe(self) -> dict:
        return self.bank.describe(self.key)


class SpeechBank(ABC):
    """Base class: a source of distinct voices; ``capacity`` is how many distinct voices it can give."""

    capacity: int = 0

    @abstractmethod
    def voices(self, n: int, sample_rate: int, rng: np.random.Generator, exclude: tuple = ()) -> list[Voice]:
        """``n`` distinct voices (as distinct as the bank allows), unlike the persons of the voices in ``exclude``
        while the bank has enough others (a warning says when it has not)."""

    @abstractmethod
    def utterance(self, key: tuple, duration_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """An utterance of about ``duration_s`` (a short backchannel when ``duration_s < 0``)."""

    @abstractmethod
    def describe(self, key: tuple) -> dict:
        """What the voice ``key`` is, for the scene's labels (JSON-ready)."""


def _others_first(order: np.ndarray, n: int, excluded: set) -> np.ndarray:
    """``order`` with the ``excluded`` entries moved to its end (the draw itself is unchanged, so scenes without a
    clash stay as they were); warns when the first ``n`` still hold one."""
    out = np.array([i for i in order if i not in excluded] + [i for i in order if i in excluded], dtype=int)
    if any(int(i) in excluded for i in out[:n]):
        warnings.warn(f"the speech bank has too few voices for {n} more unlike the {len(excluded)} in use: "
                      f"some persons are reused", stacklevel=3)
    return out


class EspeakBank(SpeechBank):
    """espeak-ng voices: English accents x voice variants x speaking rate x pitch."""

    capacity = len(_ESPEAK_VARIANTS)

    def voices(self, n: int, sample_rate: int, rng: np.random.Generator, exclude: tuple = ()) -> list[Voice]:
        # the variant is the person (its timbre); the accent alone does not make a different person
        variants = _others_first(rng.permutation(len(_ESPEAK_VARIANTS)), n,
                                 {_ESPEAK_VARIANTS.index(v.key[0].split("+")[1]) for v in exclude})
        out = []
        for i in range(n):
            lang = _ESPEAK_LANGS[int(rng.integers(len(_ESPEAK_LANGS)))]
            variant = _ESPEAK_VARIANTS[int(variants[i % len(variants)])]
            key = (f"{lang}+{variant}", int(rng.integers(130, 200)), int(rng.integers(25, 75)),
                   int(rng.integers(30, 80)))
            out.append(Voice(self, key, sample_rate))
        return out

    def utterance(self, key: tuple, duration_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        voice, rate, pitch, prange = key
        if duration_s < 0:
            text = _BACKCHANNELS[int(rng.integers(len(_BACKCHANNELS)))]
        else:
            n_words = max(1, int(round(duration_s * rate / 60.0)))
            text = " ".join(_WORDS[int(i)] for i in rng.integers(len(_WORDS), size=n_words))
        x, rate_in = _Espeak.synth(text, voice, rate, pitch, prange)
        return _normalise(_resample(x, rate_in, sample_rate))

    def describe(self, key: tuple) -> dict:
        return {"bank": "espeak", "voice": key[0], "rate_wpm": key[1], "pitch": key[2], "pitch_range": key[3]}


class FolderBank(SpeechBank):
    """Recordings in a folder. Sub-folders (e.g. LibriSpeech ``speaker/chapter/*.flac``) group files by speaker:
    the first path component below ``root`` is the speaker; files directly in ``root`` are one speaker each."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"speech folder not found: {self.root}")
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"speech folder {self.root} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
        groups: dict[str, list[Path]] = {}
        for f in files:
            rel = f.relative_to(self.root)
            groups.setdefault(rel.parts[0] if len(rel.parts) > 1 else rel.stem, []).append(f)
        self.speakers = sorted(groups)
        self.capacity = len(self.speakers)
        self.files = groups
        self._cache: dict[tuple[Path, int], np.ndarray] = {}

    def _load(self, path: Path, sample_rate: int) -> np.ndarray:
        k = (path, sample_rate)
        if k not in self._cache:
            x, sr = sf.read(str(path), dtype="float64", always_2d=True)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[k] = _normalise(_resample(x[:, 0], sr, sample_rate))
        return self._cache[k]

    def voices(self, n: int, sample_rate: int, rng: np.random.Generator, exclude: tuple = ()) -> list[Voice]:
        order = _others_first(rng.permutation(len(self.speakers)), n,
                              {self.speakers.index(v.key[0]) for v in exclude})
        if n > len(order):
            raise ValueError(f"the scene needs {n} distinct speakers but {self.root} has only {len(order)}")
        return [Voice(self, (self.speakers[int(i)],), sample_rate) for i in order[:n]]

    def utterance(self, key: tuple, duration_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        files = self.files[key[0]]
        x = self._load(files[int(rng.integers(len(files)))], sample_rate)
        want = int((rng.uniform(0.3, 0.6) if duration_s < 0 else duration_s) * sample_rate)
        if x.size <= want:
            return x.copy()
        # start where speech is (not inside a leading silence)
        start = int(rng.integers(0, x.size - want))
        seg = x[start:start + want].copy()
        fade = min(160, want // 4)
        if fade:
            ramp = np.linspace(0.0, 1.0, fade)
            seg[:fade] *= ramp
            seg[-fade:] *= ramp[::-1]
        return seg

    def describe(self, key: tuple) -> dict:
        return {"bank": "folder", "speaker": key[0], "root": str(self.root)}


def speech_bank(source: str | Path) -> SpeechBank:
    """``"espeak"`` for the built-in voices, or a folder of recordings."""
    if str(source) == "espeak":
        return EspeakBank()
    return FolderBank(source)
