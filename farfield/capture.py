"""Live capture from a microphone array (sounddevice) and file replay through the same path.

Both sources yield blocks ``(n_mics, samples)`` float32 at the pipeline's ``sample_rate``, in the profile's mic
order, and keep :class:`CaptureStats`:

- :class:`DeviceSource`: opens the device at its native rate and channel count, keeps only the profile's mic
  channels (a ReSpeaker USB's processed and playback channels are ignored), resamples to the pipeline rate
  (``soxr`` streaming resampler). The audio callback only copies into a bounded :class:`BlockRing`; a full ring
  drops the *new* block and counts it (``overflows``), PortAudio's own input overflows are counted too
  (``device_overflows``), and a consumer that waited for audio counts an ``underrun``. Nothing is dropped
  silently; ``close()`` (or leaving the ``with`` block, or Ctrl-C) stops the stream cleanly.
- :class:`FileReplaySource`: reads a multichannel file block by block (or a folder of mono files) and replays it
  as fast as possible or paced to real time (``realtime=True``), through the same channel selection and
  resampling, so everything can be tested without hardware.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .geometry import ArrayGeometry, list_arrays, load_array


def _sounddevice():
    """Import sounddevice, with a clear error when PortAudio is missing."""
    try:
        import sounddevice
    except OSError as e:  # PortAudio library not found
        raise RuntimeError(f"audio devices are not available: {e} (install PortAudio, e.g. apt install "
                           "libportaudio2, or replay a file instead)") from None
    return sounddevice


@dataclass
class CaptureStats:
    """Counters of a capture or replay source."""

    blocks_in: int = 0
    blocks_out: int = 0
    samples_in: int = 0
    samples_out: int = 0
    overflows: int = 0  # blocks dropped because the ring was full
    dropped_samples: int = 0
    device_overflows: int = 0  # PortAudio reported input overflow
    underruns: int = 0  # the consumer had to wait for audio

    def as_dict(self) -> dict:
        return asdict(self)


class BlockRing:
    """Bounded thread-safe FIFO of audio blocks between an audio callback and the processing thread."""

    def __init__(self, max_blocks: int, stats: CaptureStats) -> None:
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be >= 1, got {max_blocks}")
        self._q: deque = deque()
        self.max_blocks = int(max_blocks)
        self.stats = stats
        self._cv = threading.Condition()
        self.closed = False

    def put(self, block: np.ndarray) -> bool:
        """Add a block; returns False (and counts an overflow) when full. Never blocks: safe in a callback."""
        with self._cv:
            self.stats.blocks_in += 1
            self.stats.samples_in += block.shape[1]
            if len(self._q) >= self.max_blocks:
                self.stats.overflows += 1
                self.stats.dropped_samples += block.shape[1]
                return False
            self._q.append(block)
            self._cv.notify()
            return True

    def get(self, timeout: float | None = None) -> np.ndarray | None:
        """Next block, waiting up to ``timeout`` s; ``None`` when closed and empty (or on timeout)."""
        with self._cv:
            if not self._q and not self.closed:
                self.stats.underruns += 1
                self._cv.wait_for(lambda: self._q or self.closed, timeout)
            if not self._q:
                return None
            return self._q.popleft()

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._cv.notify_all()

    def __len__(self) -> int:
        return len(self._q)


class _Resampler:
    """Streaming resampler of ``(channels, n)`` blocks (soxr), or a pass-through at equal rates."""

    def __init__(self, rate_in: int, rate_out: int, channels: int) -> None:
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self._rs = None
        if self.rate_in != self.rate_out:
            import soxr

            self._rs = soxr.ResampleStream(self.rate_in, self.rate_out, channels, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self._rs is None:
            return block
        y = self._rs.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=last)
        return np.ascontiguousarray(y.T)


class _Source:
    """Common part: channel selection, resampling, stats, iteration."""

    def __init__(self, array: ArrayGeometry | str, sample_rate: int, native_rate: int, channels: int) -> None:
        self.array = load_array(array)
        self.sample_rate = int(sample_rate)
        self.native_rate = int(native_rate)
        self.device_channels = int(channels)
        need = max(self.array.channels) + 1
        if self.device_channels < need:
            raise ValueError(f"the input has {self.device_channels} channel(s) but profile '{self.array.name}' "
                             f"reads channel(s) {list(self.array.channels)}; expected at least {need}")
        self._chan = np.asarray(self.array.channels)
        self._resample = _Resampler(self.native_rate, self.sample_rate, self.array.n_mics)
        self.stats = CaptureStats()

    def _convert(self, frames: np.ndarray, last: bool = False) -> np.ndarray:
        """``(n, device_channels)`` device frames -> ``(n_mics, m)`` float32 at the pipeline rate."""
        x = np.asarray(frames, dtype=np.float32)[:, self._chan].T
        return self._resample(x, last)

    def __iter__(self):
        while True:
            b = self.read()
            if b is None:
                return
            if b.shape[1]:
                yield b

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DeviceSource(_Source):
    """Capture from a sounddevice input.

    Args:
        array: profile (its ``device_pattern``, ``sample_rate`` and ``device_channels`` are used when given).
        device: sounddevice index or name substring; default: the first input device matching the profile's
            pattern, else the system default.
        sample_rate: the pipeline's rate (blocks come out at this rate).
        block_ms: device block length.
        ring_blocks: capacity of the ring between callback and consumer.
    """

    def __init__(self, array: ArrayGeometry | str, *, device: int | str | None = None, sample_rate: int = 16000,
                 block_ms: float = 20.0, ring_blocks: int = 100) -> None:
        sd = _sounddevice()
        geom = load_array(array)
        dev = find_device(geom, device)
        info = sd.query_devices(dev, "input")
        native = int(geom.sample_rate or info["default_samplerate"])
        channels = int(geom.device_channels or info["max_input_channels"])
        if channels > info["max_input_channels"]:
            raise ValueError(f"profile '{geom.name}' expects {channels} input channels but device "
                             f"'{info['name']}' has {info['max_input_channels']}")
        super().__init__(geom, sample_rate, native, channels)
        self.device = dev
        self.device_name = info["name"]
        self.blocksize = int(round(native * block_ms / 1000))
        self.ring = BlockRing(ring_blocks, self.stats)
        self._stream = sd.InputStream(device=dev, channels=channels, samplerate=native, blocksize=self.blocksize,
                                      dtype="float32", callback=self._callback)
        self._started = False

    def _callback(self, indata, frames, time_info, status) -> None:  # audio thread: copy and return
        if status and getattr(status, "input_overflow", False):
            self.stats.device_overflows += 1
        self.ring.put(np.array(indata[:, self._chan].T, dtype=np.float32))

    def start(self) -> None:
        if not self._started:
            self._stream.start()
            self._started = True

    def read(self, timeout: float = 1.0) -> np.ndarray | None:
        """Next block at the pipeline rate ``(n_mics, m)``; ``None`` once closed."""
        self.start()
        b = self.ring.get(timeout)
        if b is None:
            return None if self.ring.closed else np.zeros((self.array.n_mics, 0), np.float32)
        y = self._resample(b)
        self.stats.blocks_out += 1
        self.stats.samples_out += y.shape[1]
        return y

    def close(self) -> None:
        if self._started:
            self._stream.stop()
        self._stream.close()
        self._started = False
        self.ring.close()


class FileReplaySource(_Source):
    """Replay a recording as if it were live (``realtime=True`` paces it; otherwise as fast as possible)."""

    def __init__(self, path: str | Path, array: ArrayGeometry | str, *, sample_rate: int = 16000,
                 block_ms: float = 20.0, realtime: bool = False, channels_are_mics: bool = False) -> None:
        import soundfile as sf

        self.path = Path(path)
        geom = load_array(array)
        if self.path.is_dir():
            from .io import read_audio

            data, native = read_audio(self.path)
            self._data = data.T.astype(np.float32)
            self._file = None
            channels = data.shape[0]
        else:
            if not self.path.exists():
                raise FileNotFoundError(f"input not found: {self.path}")
            self._file = sf.SoundFile(str(self.path))
            native, channels = self._file.samplerate, self._file.channels
        if channels_are_mics:
            geom = ArrayGeometry(geom.positions, name=geom.name)
        super().__init__(geom, sample_rate, native, channels)
        self.realtime = bool(realtime)
        self.blocksize = int(round(native * block_ms / 1000))
        self._pos = 0
        self._t0: float | None = None
        self._done = False

    def start(self) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def read(self) -> np.ndarray | None:
        if self._done:
            return None
        self.start()
        if self._file is not None:
            frames = self._file.read(self.blocksize, dtype="float32", always_2d=True)
        else:
            frames = self._data[self._pos: self._pos + self.blocksize]
        self._pos += frames.shape[0]
        last = frames.shape[0] < self.blocksize
        if frames.shape[0]:
            self.stats.blocks_in += 1
            self.stats.samples_in += frames.shape[0]
        if self.realtime:
            wait = self._t0 + self._pos / self.native_rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        y = self._convert(frames, last=last)
        if last:
            self._done = True
        self.stats.blocks_out += 1
        self.stats.samples_out += y.shape[1]
        return y

    def close(self) -> None:
        self._done = True
        if self._file is not None:
            self._file.close()


def find_device(array: ArrayGeometry, device: int | str | None = None) -> int:
    """The sounddevice input index for ``device`` (index or name substring), else the first input device whose
    name matches the profile's ``device_pattern``, else the default input."""
    sd = _sounddevice()
    devices = sd.query_devices()
    inputs = [i for i, d in enumerate(devices) if d["max_input_channels"] > 0]
    if not inputs:
        raise RuntimeError("no audio input devices found")
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        idx = int(device)
        if idx not in inputs:
            raise ValueError(f"device {idx} is not an input device; inputs: {inputs}")
        return idx
    if isinstance(device, str):
        hits = [i for i in inputs if device.lower() in devices[i]["name"].lower()]
        if not hits:
            raise ValueError(f"no input device name contains '{device}'; inputs: "
                             f"{[devices[i]['name'] for i in inputs]}")
        return hits[0]
    if array.device_pattern:
        hits = [i for i in inputs if array.device_pattern.lower() in devices[i]["name"].lower()]
        if hits:
            return hits[0]
    default = sd.default.device[0] if isinstance(sd.default.device, (list, tuple)) else sd.default.device
    return int(default) if default is not None and int(default) in inputs else inputs[0]


def list_input_devices() -> list[dict]:
    """Input devices with channel counts, default rate and the profiles whose device pattern matches.
    Raises ``RuntimeError`` with a clear message when PortAudio or devices are missing."""
    sd = _sounddevice()
    out = []
    profiles = [load_array(n) for n in list_arrays()]
    for i, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] <= 0:
            continue
        match = [p.name for p in profiles if p.device_pattern and p.device_pattern.lower() in d["name"].lower()]
        out.append({"index": i, "name": d["name"], "channels": int(d["max_input_channels"]),
                    "default_samplerate": float(d["default_samplerate"]), "profiles": match})
    return out
