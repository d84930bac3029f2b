"""The streaming front end: STFT -> Localizer -> Tracker -> Separator, block by block; and ``process()``, which
runs the same object over a whole recording, so offline and live results cannot disagree.

Latency: a stream sample leaves ``frame_size - hop_size`` samples (16 ms at 16 kHz with the defaults) after it
entered, plus the wait for the rest of its block. Track rows come out at each localizer update.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._validate import check_not_silent, check_sample_rate, check_signals, finite_or_nan
from .geometry import ArrayGeometry, load_array
from .localize import Localizer
from .separate import OnlineWPE, Separator
from .stft import StreamingSTFT
from .target import LoudestTalker, TargetSelector
from .track import Tracker, TrackRow


@dataclass
class FrontendBlock:
    """What one block produced.

    tracks: rows of the localizer updates in this block; streams: audio per track
    ``{track_id: [(start_sample, samples), ...]}`` (start in input samples; a new track's first chunk includes
    its pre-roll; a track's chunks never overlap: a revived track's go on where its last stream stopped);
    target_id: the target after this block (``None`` when nobody); target: the target's audio
    ``(start_sample, samples)``, contiguous from block to block (zeros while there is no target). With a
    diarizer: segments (closed :class:`~farfield.diarize.SpeakerSegment`), events and the target speaker.
    """

    tracks: list[TrackRow]
    streams: dict[int, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    target_id: int | None = None
    target: tuple[int, np.ndarray] | None = None
    segments: list = field(default_factory=list)  # diarization: SpeakerSegments closed in this block
    events: list = field(default_factory=list)  # diarization / target / barge-in Events
    target_speaker: str | None = None


class Frontend:
    """Streaming front end. ``process(block (n_mics, samples))`` -> :class:`FrontendBlock`.

    Args:
        array: geometry, profile name or TOML path.
        sample_rate: Hz.
        frame_size, hop_size: STFT sizes of the separator, and of the localizer unless ``localizer_options`` give
            it a ``frame_size`` of its own (then a second analysis feeds it, with the same hop).
        separation: a separation method (see :mod:`farfield.separate`) or ``None`` for tracks only.
        target: the target policy (``update(rows, time_s) -> track_id``); :class:`~farfield.target.LoudestTalker`
            by default, :class:`~farfield.target.TargetSelector` by default with a diarizer.
        diarizer: an :class:`~farfield.diarize.OnlineDiarizer` run on the streams (needs ``separation``).
        dereverb: run :class:`~farfield.separate.OnlineWPE` on the frames before the beamformers (not before
            the localizer); ``wpe_options`` go to it.
        localizer_options, tracker_options, separator_options: passed on.
    """

    def __init__(self, array: ArrayGeometry | str, sample_rate: int, *, frame_size: int = 512, hop_size: int = 256,
                 separation: str | None = "superdirective", localizer_options: dict | None = None,
                 tracker_options: dict | None = None, separator_options: dict | None = None,
                 target=None, diarizer=None, dereverb: bool = False, wpe_options: dict | None = None) -> None:
        self.array = load_array(array)
        self.sample_rate = check_sample_rate(sample_rate)
        self.stft = StreamingSTFT(self.array.n_mics, frame_size, hop_size)
        loc_options = dict(localizer_options or {})
        loc_frame = int(loc_options.pop("frame_size", frame_size))
        loc_hop = int(loc_options.pop("hop_size", hop_size))
        if loc_hop != hop_size:
            raise ValueError(f"localizer_options hop_size is {loc_hop}, but it must be the front end's ({hop_size}): "
                             f"the localizer's updates steer the beams frame by frame")
        self.localizer = Localizer(self.array, self.sample_rate, frame_size=loc_frame, hop_size=hop_size,
                                   **loc_options)
        # a localizer frame of its own: the localizer analyses the blocks with its own STFT; with the same hop its
        # frame t ends where the separator's frame t ends, so updates and beams stay in step
        self._own_frames = loc_frame != frame_size
        self.tracker = Tracker(frame_period_s=self.localizer.frame_period_s, **(tracker_options or {}))
        self.separator = None if separation is None else Separator(
            self.array, self.sample_rate, frame_size=frame_size, hop_size=hop_size, method=separation,
            **(separator_options or {}))
        if diarizer is not None and separation is None:
            raise ValueError("diarization runs on the separated streams: give a separation method")
        self.diarizer = diarizer
        if target is None:
            target = TargetSelector() if diarizer is not None else LoudestTalker()
        self.target = target
        self.device_speaking = False
        self.wpe = OnlineWPE(self.array.n_mics, self.stft.n_freqs, **(wpe_options or {})) if dereverb else None
        self.reset()

    @property
    def latency_samples(self) -> int:
        return self.stft.latency_samples

    def reset(self) -> None:
        self.stft.reset()
        self.localizer.reset()
        self.tracker.reset()
        self.target.reset()
        if self.diarizer is not None:
            self.diarizer.reset()
        self.target_id: int | None = None
        if self.separator is not None:
            self.separator.reset()
        if self.wpe is not None:
            self.wpe.reset()

    def process(self, block: np.ndarray) -> FrontendBlock:
        """Feed ``(n_mics, samples)``; any block size, including 0."""
        x = check_signals(block, n_channels=self.array.n_mics, name="block", allow_empty=True)
        X = self.stft._analyse(x)
        k = X.shape[2]
        first = self.localizer.frames_processed
        ue = self.localizer.update_every
        updates = self.localizer.process(x) if self._own_frames else self.localizer.process_stft(X)
        update_frames = [i for i in range(first, first + k) if (i + 1) % ue == 0]
        rows_at: dict[int, list[TrackRow]] = {}
        all_rows: list[TrackRow] = []
        targets_at: dict[int, int | None] = {}
        for fi, upd in zip(update_frames, updates):
            rows = self.tracker.update(upd)
            rows_at[fi] = rows
            targets_at[fi] = self.target.update(rows, upd.time_s)
            all_rows += rows
        out = FrontendBlock(all_rows)
        if self.separator is None:
            out.target_id = self.target_id = targets_at[update_frames[-1]] if update_frames else self.target_id
            return out
        hop, lat = self.stft.hop_size, self.latency_samples
        target = np.zeros(k * hop)
        for t in range(k):
            if first + t in rows_at:
                self.separator.update_tracks(rows_at[first + t])
                self.target_id = targets_at[first + t]
            frame = X[:, :, t] if self.wpe is None else self.wpe.process_frame(X[:, :, t])
            for tid, chunk in self.separator.process_frame(frame).items():
                out.streams.setdefault(tid, []).append(chunk)
                if tid == self.target_id:
                    target[t * hop:(t + 1) * hop] = chunk[1][-hop:]
        out.target_id = self.target_id
        out.target = (first * hop - lat, target)
        if self.diarizer is not None:
            self.diarizer.playback_tracks = set(getattr(self.target, "playback_tracks", ()))
            out.segments, out.events = self.diarizer.process(out)
            if hasattr(self.target, "observe"):
                self.target.observe(self.diarizer.speaking_tracks())
            if self.device_speaking:
                from .diarize import Event

                out.events += [Event(e.time_s, "barge_in", e.speaker, e.track_id) for e in out.events
                               if e.type == "speech_start"]
        if hasattr(self.target, "pop_events"):
            out.events += self.target.pop_events()
        out.target_speaker = getattr(self.target, "target", None)
        return out

    def trigger(self, time_s: float, *, spoken_from_s: float | None = None,
                direction_deg: float | None = None, elevation_deg: float | None = None) -> None:
        """An external cue at ``time_s`` seconds of input: the target policy locks on whoever starts speaking
        next (a gaze, a button), or, for a wake word heard from ``spoken_from_s`` to ``time_s``, on whoever
        said it; with ``direction_deg`` (where the cue saw the person, azimuth in degrees), only on a talker
        there (:meth:`~farfield.target.TargetSelector.trigger`). ``elevation_deg`` (degrees up from the array's
        x-y plane, 0 when not given) matters on a linear array only: it hears a person above or below it at
        :meth:`~farfield.geometry.ArrayGeometry.in_front` of the two, nearer its front."""
        if not hasattr(self.target, "trigger"):
            raise TypeError(f"the target policy {type(self.target).__name__} takes no trigger; use a TargetSelector "
                            "(the default with a diarizer)")
        t = float(time_s)
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"trigger time must be a finite number of seconds >= 0, got {time_s!r}")
        if spoken_from_s is not None and not float(spoken_from_s) >= 0:  # (NaN too; the policy checks the rest)
            raise ValueError(f"a wake word's start must be a time in seconds >= 0, got {spoken_from_s!r}")
        if elevation_deg is not None and not -90.0 <= finite_or_nan(elevation_deg) <= 90.0:
            raise ValueError(f"a cue's elevation must be a finite number of degrees in [-90, 90] or None, got "
                             f"{elevation_deg!r}")
        if direction_deg is not None and self.localizer.grid.kind == "half-circle":
            # a linear array's tracks lie in front of it, at the person's angle from its axis
            with contextlib.suppress(TypeError, ValueError):  # not a number: the policy's error says so
                direction_deg = self.array.in_front(direction_deg, elevation_deg or 0.0)
        self.target.trigger(t, spoken_from_s=None if spoken_from_s is None else float(spoken_from_s),
                            direction_deg=direction_deg)

    def set_device_speaking(self, speaking: bool) -> None:
        """Tell the front end whether the device is talking (speech starting meanwhile is a barge-in)."""
        self.device_speaking = bool(speaking)


    def stream(self, source: Iterable[np.ndarray]) -> Iterator[FrontendBlock]:
        """Process every block of ``source`` (a :class:`~farfield.capture.DeviceSource`,
        :class:`~farfield.capture.FileReplaySource` or any iterable of ``(n_mics, n)`` arrays)."""
        for block in source:
            yield self.process(block)

    async def astream(self, source: Iterable[np.ndarray]) -> AsyncIterator[FrontendBlock]:
        """Async form for agent stacks: reading the (blocking) source runs in a worker thread."""
        it = iter(source)
        while True:
            block = await asyncio.to_thread(next, it, None)
            if block is None:
                return
            yield self.process(block)


def place(buffer: np.ndarray, start: int, audio: np.ndarray) -> None:
    """Write a stream chunk that starts at input sample ``start`` into ``buffer`` (parts outside are cut)."""
    a, e = max(0, start), min(buffer.size, start + audio.size)
    if e > a:
        buffer[a:e] = audio[a - start: e - start]


@dataclass
class ProcessResult:
    """Offline result: track rows, one stream per track ``{track_id: (samples,)}`` aligned with the input (zeros
    outside the stream's life), the target's audio ``(samples,)`` (the selected talker's stream, switching with
    the target; zeros while there is none), and settings/timing. With diarization: speaker segments, events, and
    target_segments (the parts of segments on the target's track while it was the target)."""

    tracks: list[TrackRow]
    streams: dict[int, np.ndarray]
    target: np.ndarray
    sample_rate: int
    latency_samples: int
    real_time_factor: float
    settings: dict
    segments: list = field(default_factory=list)
    events: list = field(default_factory=list)
    target_segments: list = field(default_factory=list)


def process(signals: np.ndarray, sample_rate: int, array: ArrayGeometry | str, *,
            separation: str = "superdirective", block_size: int = 1024,
            triggers: Sequence[float | tuple[float, float] | Cue] = (),
            **frontend_options) -> ProcessResult:
    """Localize, track and separate a whole recording ``(n_mics, samples)`` with the streaming :class:`Frontend`.

    The input is fed in blocks of ``block_size`` and followed by ``frame_size - hop_size`` zeros so the last
    samples come out; streams are cut to the input length and aligned sample-for-sample with it. ``triggers``:
    external cues, each a time (s) that comes before the person speaks (a gaze, a button), a ``(start_s,
    end_s)`` pair (a wake word heard then) or a :class:`Cue` (either, with the direction where the cue saw the
    person), given to :meth:`Frontend.trigger` before the block that holds its time (the end of a wake word), as
    a live caller would.
    """
    geom = load_array(array)
    sr = check_sample_rate(sample_rate)
    x = check_signals(signals, n_channels=geom.n_mics)
    check_not_silent(x)
    fe = Frontend(geom, sr, separation=separation, **frontend_options)
    segments, events = [], []
    n = x.shape[1]
    cues = sorted((_cue(t) for t in triggers), key=lambda c: c.time_s)
    if cues and not all(0.0 <= c.time_s <= n / sr for c in cues):
        raise ValueError(f"trigger times must lie within the recording (0 to {n / sr:.3f} s), got "
                         f"{[c.time_s for c in cues]}")
    if cues and not hasattr(fe.target, "trigger"):
        fe.trigger(cues[0].time_s)  # raises the error that explains it
    padded = np.concatenate([x, np.zeros((geom.n_mics, fe.latency_samples + fe.stft.hop_size))], axis=1)
    rows: list[TrackRow] = []
    streams: dict[int, np.ndarray] = {}
    target = np.zeros(n)
    t0 = time.perf_counter()
    for s in range(0, padded.shape[1], block_size):
        while cues and cues[0].time_s * sr < s + block_size:
            c = cues.pop(0)
            fe.trigger(c.time_s, spoken_from_s=c.spoken_from_s, direction_deg=c.direction_deg,
                       elevation_deg=c.elevation_deg)
        b = fe.process(padded[:, s: s + block_size])
        rows += [r for r in b.tracks if r.time_s * sr < n]
        segments += b.segments
        events += b.events
        for tid, chunks in b.streams.items():
            buf = streams.setdefault(tid, np.zeros(n))
            for start, audio in chunks:
                place(buf, start, audio)
        if b.target is not None:
            place(target, *b.target)
    if fe.diarizer is not None:
        more, ev = fe.diarizer.flush(n / sr)
        segments += more
        events += ev
        # a track identified as an enrolled person later: its earlier segments get the name too
        segments = [fe.diarizer.final_label(g) for g in segments]
    rtf = (time.perf_counter() - t0) / (n / sr)
    segments = [g for g in segments if g.start_s < n / sr]
    events.sort(key=lambda e: e.time_s)
    target_segs = target_segments(segments, events, n / sr)
    settings = {"separation": separation, "frame_size": fe.stft.frame_size, "hop_size": fe.stft.hop_size,
                "localizer_frame_size": fe.localizer.frame_size,
                "block_size": block_size, "dereverb": fe.wpe is not None, "localizer": fe.localizer.method,
                "grid": fe.localizer.grid.kind, "tracker_options": dict(frontend_options.get("tracker_options") or {}),
                "reference_mic": fe.separator.reference_mic if fe.separator else None,
                "target_policy": type(fe.target).__name__, "target_startup_s": getattr(fe.target, "startup_s", None)}
    return ProcessResult(rows, streams, target, sr, fe.latency_samples, rtf, settings, segments, events,
                         target_segs)


@dataclass(frozen=True)
class Cue:
    """An external cue for :func:`process`: at ``time_s`` seconds of input; ``spoken_from_s``: a wake word heard
    from then to ``time_s``; ``direction_deg``: where the cue saw the person (azimuth in the array's frame, such as
    a camera's face direction), or ``None``; ``elevation_deg``: the person's elevation (degrees up from the array's x-y
    plane), or ``None`` (0; it matters on a linear array only, see :meth:`Frontend.trigger`)."""

    time_s: float
    spoken_from_s: float | None = None
    direction_deg: float | None = None
    elevation_deg: float | None = None

    def __post_init__(self) -> None:
        for name in ("time_s", "spoken_from_s", "direction_deg", "elevation_deg"):
            value = getattr(self, name)
            if value is None and name != "time_s":
                continue
            if not np.isfinite(finite_or_nan(value)):
                raise ValueError(f"Cue: {name} must be a finite number" + ("" if name == "time_s" else " or None")
                                 + f", got {value!r}")
        if self.spoken_from_s is not None and self.spoken_from_s > self.time_s:
            raise ValueError(f"Cue: a wake word's start must come at or before its end (start <= end), got "
                             f"spoken_from_s={self.spoken_from_s!r} and time_s={self.time_s!r}")


def _cue(trigger) -> Cue:
    """A cue time ``t`` -> ``Cue(t)``; a wake word ``(start, end)`` -> ``Cue(end, start)``; a :class:`Cue` as it
    is."""
    if isinstance(trigger, Cue):
        return trigger
    if np.ndim(trigger) == 0:
        return Cue(float(trigger))
    if len(trigger) != 2 or not float(trigger[0]) <= float(trigger[1]):
        raise ValueError(f"a trigger is a time in seconds, a (start_s, end_s) wake-word span with start <= end, "
                         f"or a Cue, got {trigger!r}")
    return Cue(float(trigger[1]), float(trigger[0]))


def target_segments(segments: list, events: list, end_s: float) -> list:
    """Parts of speaker segments during which they were the target, from the ``target_changed`` events (nobody is
    the target before the first one). An event that names a track keeps that track's segments (the target is a
    talker at a place: when the diarizer gives one label to a person and a TV it confuses, only the person's
    track counts); an event without a track keeps the segments of its speaker label."""
    from .diarize import SpeakerSegment

    spans = []  # (start, end, speaker, track)
    changes = sorted([(0.0, None, None)] + [(e.time_s, e.speaker, e.track_id) for e in events
                                            if e.type == "target_changed"], key=lambda c: c[0])
    for k, (t, spk, tid) in enumerate(changes):
        spans.append((t, changes[k + 1][0] if k + 1 < len(changes) else end_s, spk, tid))
    out = []
    for g in segments:
        for a, b, spk, tid in spans:
            lo, hi = max(a, g.start_s), min(b, g.end_s)
            if (g.track_id == tid if tid is not None else spk == g.speaker) and hi > lo:
                out.append(SpeakerSegment(g.speaker, lo, hi, g.track_id))
    return out
