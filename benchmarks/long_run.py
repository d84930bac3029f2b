"""Long-run check: replay a long recording through the whole live path (file replay -> Frontend: STFT,
localizer, tracker, beams -> Moshi frames of the target) and watch memory and per-block timing.

The recording is a simulated 2-talker room looped to the requested length (default one hour). It is replayed
as fast as possible; a block counts as *late* when its processing took longer than its own duration (at real-
time speed a late block is what would overflow the capture ring). Memory (RSS) is sampled every 5 minutes of
audio (every minute in runs under 30 min): it must stay flat. ``--diarize`` adds the online diarizer (Silero VAD
and Resemblyzer embeddings when installed) and the target selector to the path.

    python benchmarks/long_run.py [--minutes 60] [--diarize] [--out benchmarks/results/long_run.txt]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from _report import emit  # noqa: E402
from farfield.adapters import MoshiFrames
from farfield.capture import CaptureStats, FileReplaySource
from farfield.frontend import Frontend
from farfield.sim.render import render_recipe_scene


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class _RealtimeRing:
    """Deliver a replay's blocks at real-time pace from a thread into a BlockRing, as a device callback would."""

    def __init__(self, src: FileReplaySource, ring_blocks: int = 100) -> None:
        import threading

        from farfield.capture import BlockRing

        self.src, self.stats = src, src.stats
        self.ring = BlockRing(ring_blocks, CaptureStats())
        self.ring_stats = self.ring.stats
        src.realtime = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for block in self.src:
            self.ring.put(block)
        self.ring.close()

    def __iter__(self):
        while True:
            b = self.ring.get(timeout=5.0)
            if b is None:
                return
            self.ring_stats.blocks_out += 1
            self.ring_stats.samples_out += b.shape[1]
            yield b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--block-ms", type=float, default=20.0)
    ap.add_argument("--realtime", action="store_true",
                    help="a producer thread delivers the blocks at real-time pace into the same bounded ring a "
                         "sound card callback uses (100 blocks); overflows there are dropped blocks")
    ap.add_argument("--diarize", action="store_true", help="also run the online diarizer and target selector")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    scene = render_recipe_scene("meeting_room", seed=3, index=0)
    sr = scene.sample_rate
    reps = int(np.ceil(args.minutes * 60 / scene.params["duration_s"]))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "long.wav"
        with sf.SoundFile(str(path), "w", sr, scene.array.n_mics, subtype="FLOAT") as f:
            for _ in range(reps):
                f.write(scene.mix.T)
        total = reps * scene.mix.shape[1]
        src = FileReplaySource(path, scene.array, block_ms=args.block_ms, channels_are_mics=True)
        if args.realtime:
            src = _RealtimeRing(src)
        extra = {}
        if args.diarize:
            from farfield.diarize import OnlineDiarizer

            extra["diarizer"] = OnlineDiarizer(sr)
        fe = Frontend(scene.array, sr, **extra)
        fe.process(scene.mix[:, : 4 * sr].astype(np.float64))  # warm-up: numba loads/compiles its kernels once
        fe.reset()
        moshi = MoshiFrames(sr)
        block_s = args.block_ms / 1000
        late, worst, n_blocks, frames, mem, out_samples = 0, 0.0, 0, 0, [], 0
        mark_min = 5 if args.minutes >= 30 else 1
        next_mark, mark = 0, mark_min * 60 * sr
        n_segments = 0
        t0 = time.perf_counter()
        for block in src:
            t = time.perf_counter()
            res = fe.process(block)
            frames += len(moshi.process(res.target[1]))
            out_samples += res.target[1].size
            n_segments += len(res.segments)
            dt = time.perf_counter() - t
            worst = max(worst, dt)
            late += dt > block_s
            n_blocks += 1
            pos = src.stats.samples_out if not args.realtime else src.ring_stats.samples_in
            if pos >= next_mark:
                mem.append((pos / sr / 60, rss_mb()))
                next_mark += mark
        wall = time.perf_counter() - t0
    stages = "diarizer (VAD, embeddings) and target selector" if args.diarize else "target"
    lines = [f"long run: {total / sr / 60:.1f} min of 6-mic audio (meeting_room scene looped), {args.block_ms:g} ms "
             f"blocks, warmed up, {'paced to real time' if args.realtime else 'as fast as possible'}, whole live path "
             f"(replay, STFT, SRP-PHAT, tracker, beams, {stages}, Moshi frames), "
             f"{os.cpu_count()} cores",
             f"processed in {wall / 60:.1f} min = {wall / (total / sr):.3f} x real time; {n_blocks} blocks, "
             f"{late} slower than real time (worst {1000 * worst:.1f} ms for a {args.block_ms:g} ms block)",
             f"capture stats: {src.stats.as_dict()}",
             *([f"real-time ring (100 blocks) between the paced producer and the processing: "
                f"{src.ring_stats.as_dict()}"] if args.realtime else []),
             f"target samples out {out_samples} for {total} in ({total - out_samples} still inside the STFT: less "
             f"than one {fe.stft.hop_size}-sample hop); Moshi frames {frames} (= {frames * 1920 / 24000:.1f} s)",
             "memory (RSS MB) by minute of audio: " + ", ".join(f"{m:.0f}: {r:.0f}" for m, r in mem),
             f"memory growth after the first {mark_min} minute{'s' if mark_min > 1 else ''}: "
             f"{mem[-1][1] - mem[min(1, len(mem) - 1)][1]:+.1f} MB",
             *([f"speaker segments: {n_segments}; diarizer track states held at the end: "
                f"{len(fe.diarizer._tracks)}"] if args.diarize else [])]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
