"""Live capture (with a fake sounddevice), replay, the streaming front end's async form, and the adapters."""

import asyncio
import json
import sys
import threading
import time
import types

import numpy as np
import pytest
import soundfile as sf

import farfield as ff
from farfield.adapters import MOSHI_FRAME, MOSHI_RATE, MoshiFrames, WhisperChunker
from farfield.capture import DeviceSource, FileReplaySource, list_input_devices
from farfield.frontend import Frontend
from farfield.vad import EnergyVAD


class FakeStatus:
    def __init__(self, overflow):
        self.input_overflow = overflow

    def __bool__(self):
        return self.input_overflow


def fake_sounddevice(monkeypatch, *, name="ReSpeaker 4 Mic Array (UAC1.0)", channels=6, rate=16000,
                     n_blocks=50, signal=None, overflow_every=0, pace_s=0.0):
    """Install a fake ``sounddevice`` whose InputStream calls the callback from a thread."""
    devices = [{"name": "Built-in Output", "max_input_channels": 0, "default_samplerate": 48000.0},
               {"name": name, "max_input_channels": channels, "default_samplerate": float(rate)}]

    class Stream:
        instances = []

        def __init__(self, device, channels, samplerate, blocksize, dtype, callback):
            self.args = dict(device=device, channels=channels, samplerate=samplerate, blocksize=blocksize)
            self.callback, self.blocksize, self.channels = callback, blocksize, channels
            self._stop = threading.Event()
            self.thread = None
            self.closed = False
            Stream.instances.append(self)

        def _run(self):
            for i in range(n_blocks):
                if self._stop.is_set():
                    return
                n0 = i * self.blocksize
                data = signal(n0, self.blocksize) if signal else np.tile(
                    np.arange(1, self.channels + 1, dtype=np.float32) / 10, (self.blocksize, 1))
                status = FakeStatus(bool(overflow_every) and i % overflow_every == 0)
                self.callback(data, self.blocksize, None, status)
                if pace_s:
                    time.sleep(pace_s)

        def start(self):
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

        def stop(self):
            self._stop.set()
            if self.thread:
                self.thread.join(timeout=5)

        def close(self):
            self.closed = True

    def query_devices(device=None, kind=None):
        return devices if device is None else devices[device]

    mod = types.SimpleNamespace(query_devices=query_devices, InputStream=Stream,
                                default=types.SimpleNamespace(device=(1, 0)))
    monkeypatch.setitem(sys.modules, "sounddevice", mod)
    return Stream


def test_device_picked_by_profile_pattern_and_mic_channels_mapped(monkeypatch):
    Stream = fake_sounddevice(monkeypatch, n_blocks=10)
    with DeviceSource("respeaker-usb-4mic", block_ms=20) as src:
        time.sleep(0.2)
        blocks = [src.read(timeout=1.0) for _ in range(10)]
    s = Stream.instances[-1]
    assert s.args["device"] == 1 and s.args["channels"] == 6 and s.args["samplerate"] == 16000
    for b in blocks:
        assert b.shape == (4, 320) and b.dtype == np.float32
        np.testing.assert_allclose(b[:, 0], [0.2, 0.3, 0.4, 0.5])  # device channels 1..4, not 0 or 5
    assert src.stats.blocks_out == 10 and src.stats.overflows == 0
    assert s.closed and src.read() is None  # closed: the iteration ends


def test_resampling_48k_device_to_16k_pipeline(monkeypatch):
    sine = lambda n0, n: np.tile(np.sin(2 * np.pi * 1000 * (n0 + np.arange(n)) / 48000)[:, None], (1, 8)).astype(
        np.float32)
    fake_sounddevice(monkeypatch, name="miniDSP UMA-8", channels=8, rate=48000, n_blocks=100, signal=sine)
    with DeviceSource("minidsp-uma8", sample_rate=16000) as src:
        time.sleep(0.3)
        out = np.concatenate([src.read(timeout=1.0) for _ in range(100)], axis=1)
    assert abs(out.shape[1] - 100 * 960 / 3) < 200  # soxr keeps a short delay line
    spec = np.abs(np.fft.rfft(out[0, 2000:]))
    f = np.fft.rfftfreq(out.shape[1] - 2000, 1 / 16000)
    assert abs(f[np.argmax(spec)] - 1000) < 5


def test_overflows_are_counted_not_hidden(monkeypatch):
    fake_sounddevice(monkeypatch, n_blocks=10, overflow_every=5)
    src = DeviceSource("respeaker-usb-4mic", ring_blocks=3)
    src.start()
    time.sleep(0.3)  # the consumer is late: 10 blocks arrive, the ring holds 3
    got = [src.read(timeout=0.5) for _ in range(3)]
    src.close()
    assert all(g.shape == (4, 320) for g in got)
    st = src.stats
    assert st.blocks_in == 10 and st.overflows == 7 and st.dropped_samples == 7 * 320
    assert st.device_overflows == 2


def test_clean_shutdown_while_streaming(monkeypatch):
    Stream = fake_sounddevice(monkeypatch, n_blocks=10_000, pace_s=0.001)
    src = DeviceSource("respeaker-usb-4mic")
    it = iter(src)
    for _ in range(5):
        next(it)
    src.close()
    s = Stream.instances[-1]
    assert not s.thread.is_alive() and s.closed
    rest = list(it)  # the generator ends once the ring is closed and drained
    assert len(rest) <= src.ring.max_blocks
    assert src.read() is None


def test_wrong_device_and_missing_portaudio(monkeypatch):
    fake_sounddevice(monkeypatch, channels=2)
    with pytest.raises(ValueError, match="expects 6 input channels"):
        DeviceSource("respeaker-usb-4mic", device=1)
    with pytest.raises(ValueError, match="no input device name contains"):
        DeviceSource("respeaker-usb-4mic", device="nonexistent")
    with pytest.raises(ValueError, match="not an input device"):
        DeviceSource("respeaker-usb-4mic", device=0)

    monkeypatch.delitem(sys.modules, "sounddevice")
    import builtins

    real_import = builtins.__import__

    def fail(name, *a, **k):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fail)
    with pytest.raises(RuntimeError, match="PortAudio"):
        list_input_devices()


def test_devices_command_without_audio_hardware(monkeypatch):
    from typer.testing import CliRunner

    from farfield.cli import app

    import farfield.capture as cap

    def boom():
        raise RuntimeError("audio devices are not available: PortAudio library not found")

    monkeypatch.setattr(cap, "list_input_devices", boom)
    r = CliRunner().invoke(app, ["devices"])
    assert r.exit_code == 0 and "no audio input devices" in r.output


def test_devices_command_lists_matching_profiles(monkeypatch):
    from typer.testing import CliRunner

    from farfield.cli import app

    fake_sounddevice(monkeypatch)
    r = CliRunner().invoke(app, ["devices", "--json"])
    assert r.exit_code == 0 and "respeaker-usb-4mic" in r.output


def test_long_replay_loses_and_duplicates_nothing(tmp_path, rng):
    x = (rng.standard_normal((6, 16000 * 120)) * 0.1).astype(np.float32)  # 2 minutes, 6 device channels
    path = tmp_path / "rec.wav"
    sf.write(str(path), x.T, 16000, subtype="FLOAT")
    src = FileReplaySource(path, "respeaker-usb-4mic", block_ms=16)
    out = np.concatenate(list(src), axis=1)
    np.testing.assert_array_equal(out, x[1:5])
    assert src.stats.samples_out == x.shape[1] and src.stats.overflows == 0


def test_replay_resamples_like_one_shot(tmp_path, rng):
    import soxr

    x = (rng.standard_normal((16000 * 5, 8)) * 0.1).astype(np.float32)
    path = tmp_path / "rec48.wav"
    sf.write(str(path), x, 48000, subtype="FLOAT")
    out = np.concatenate(list(FileReplaySource(path, "minidsp-uma8", sample_rate=16000)), axis=1)
    want = soxr.resample(x, 48000, 16000, quality="HQ").T[list(ff.load_array("minidsp-uma8").channels)]
    assert abs(out.shape[1] - want.shape[1]) <= 2
    m = min(out.shape[1], want.shape[1])
    np.testing.assert_allclose(out[:, :m], want[:, :m], atol=1e-4)


def test_replay_realtime_paces(tmp_path, rng):
    sf.write(str(tmp_path / "r.wav"), rng.standard_normal((8000, 4)) * 0.1, 16000)
    t = time.perf_counter()
    list(FileReplaySource(tmp_path / "r.wav", "respeaker-4mic-hat", realtime=True, channels_are_mics=True))
    assert time.perf_counter() - t >= 0.45  # 0.5 s of audio


def test_astream_equals_process(rng):
    from tests_helpers import two_talker_mix

    arr, x = two_talker_mix(rng)
    blocks = [x[:, s: s + 800] for s in range(0, x.shape[1], 800)]
    a = [b for b in Frontend(arr, 16000).stream(blocks)]

    async def collect():
        return [b async for b in Frontend(arr, 16000).astream(blocks)]

    b = asyncio.run(collect())
    assert [r for blk in a for r in blk.tracks] == [r for blk in b for r in blk.tracks]
    ta = np.concatenate([blk.target[1] for blk in a])
    tb = np.concatenate([blk.target[1] for blk in b])
    np.testing.assert_array_equal(ta, tb)
    assert ta.size == sum(blk.target[1].size for blk in a) and np.any(ta)


def test_moshi_frames_exact_and_continuous(rng):
    import soxr

    x = (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32)
    m = MoshiFrames(16000)
    frames, s = [], 0
    for size in rng.integers(1, 3000, size=1000):
        frames += m.process(x[s: s + size])
        s += size
        if s >= x.size:
            break
    assert all(f.shape == (MOSHI_FRAME,) and f.dtype == np.float32 for f in frames)
    y = np.concatenate(frames)
    want = soxr.resample(x, 16000, MOSHI_RATE, quality="HQ")
    np.testing.assert_allclose(y, want[: y.size], atol=1e-4)
    assert want.size - y.size < MOSHI_FRAME + 100


def test_moshi_barge_in_only_while_device_speaks(rng):
    sil = np.zeros(8000, np.float32)
    speech = (rng.standard_normal(8000) * 0.3).astype(np.float32)
    m = MoshiFrames(16000)
    m.process(sil + 1e-4 * rng.standard_normal(8000).astype(np.float32))
    m.process(speech)
    assert m.pop_events() == []
    m.process(sil + 1e-4)
    m.set_device_speaking(True)
    m.process(speech)
    ev = m.pop_events()
    assert len(ev) == 1 and ev[0]["type"] == "barge_in" and 1.0 <= ev[0]["time_s"] <= 2.1


def test_whisper_chunker_cuts_utterances(rng):
    sr = 16000
    x = (1e-4 * rng.standard_normal(sr * 10)).astype(np.float32)
    for a, b in ((1.0, 2.5), (5.0, 6.0)):
        x[int(a * sr): int(b * sr)] += (0.2 * rng.standard_normal(int((b - a) * sr))).astype(np.float32)
    ch = WhisperChunker(sr, pad_s=0.1)
    utts = []
    for s in range(0, x.size, 700):
        utts += ch.process(x[s: s + 700])
    utts += ch.flush()
    assert len(utts) == 2
    for u, (a, b) in zip(utts, ((1.0, 2.5), (5.0, 6.0))):
        assert abs(u.start_s - (a - 0.1)) < 0.05 and abs(u.end_s - (b + 0.1)) < 0.05
        assert u.audio.dtype == np.float32 and abs(u.audio.size - (u.end_s - u.start_s) * 16000) < 2


def test_whisper_chunker_resamples_and_splits_long_speech(rng):
    sr = 48000
    x = (0.2 * rng.standard_normal(sr * 6)).astype(np.float32)
    x[:sr] *= 1e-3  # a second of near-silence to learn the floor, then 5 s of speech-level noise
    ch = WhisperChunker(sr, max_utterance_s=2.0, pad_s=0.0)
    utts = []
    for s in range(0, x.size, 4800):
        utts += ch.process(x[s: s + 4800])
    utts += ch.flush()
    assert len(utts) >= 2 and all(u.end_s - u.start_s <= 2.0 + 1e-9 for u in utts)
    assert abs(utts[0].audio.size - 2.0 * 16000) < 4


def test_energy_vad_blockwise_equals_offline(rng):
    x = (1e-4 * rng.standard_normal(48000)).astype(np.float32)
    x[10000:20000] += 0.3 * rng.standard_normal(10000).astype(np.float32)
    whole = EnergyVAD(16000).process(x)
    v = EnergyVAD(16000)
    parts = []
    for s in range(0, x.size, 333):
        parts += v.process(x[s: s + 333])
    assert parts == whole and len(whole) == 1
    with pytest.raises(ValueError, match="NaN"):
        EnergyVAD(16000).process(np.array([np.nan]))


def test_energy_vad_keeps_its_noise_floor_through_digital_silence(rng):
    """A stream gated to zeros for a while (the diarizer's leakage gate) and then back to its room noise at
    -60 dBFS: the noise is not taken for speech, since the zeros say nothing of the floor."""
    x = 1e-3 * rng.standard_normal(48000)
    x[16000:24000] = 0.0
    assert EnergyVAD(16000).process(x) + EnergyVAD(16000).flush() == []
    y = x.copy()
    y[:8000] = 0.0  # a stream that starts in digital silence (a device's first buffers) learns from its first sound
    assert EnergyVAD(16000).process(y) + EnergyVAD(16000).flush() == []
    x[32000:40000] += 0.3 * rng.standard_normal(8000)
    (seg,) = EnergyVAD(16000).process(x)
    assert abs(seg[0] - 32000) <= 320


def test_energy_vad_seeded_floor_hears_a_stream_that_starts_on_speech(rng):
    """A stream that starts on speech whose pauses are silenced (a track born on a talker, gated between
    words): on its own the VAD takes the speech for its floor and finds nothing; seeded with the room's floor
    it finds every burst from its start. A seed above what the stream shows is not taken."""
    x = np.zeros(32000)
    for a in range(0, 24000, 4800):
        x[a: a + 3200] = 0.3 * rng.standard_normal(3200)
    assert EnergyVAD(16000).process(x) + EnergyVAD(16000).flush() == []
    v = EnergyVAD(16000)
    v.seed_floor(1e-6)
    segs = v.process(x) + v.flush()
    assert segs == [(0, 22400)]  # the bursts, 0.1 s apart, joined by the hangover
    v = EnergyVAD(16000)
    v.process(1e-3 * rng.standard_normal(1600))
    v.seed_floor(1.0)
    assert v.floor.power < 1e-5
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="noise floor power"):
            v.seed_floor(bad)
    with pytest.raises(ValueError, match="noise floor rise"):
        EnergyVAD(16000, floor_rise_db_s=-3.0)


def test_pipecat_processor_frames():
    pytest.importorskip("pipecat")
    from pipecat.frames.frames import InputAudioRawFrame, UserAudioRawFrame
    from tests_helpers import two_talker_mix

    from farfield.adapters.pipecat import FarfieldProcessor

    arr, x = two_talker_mix(np.random.default_rng(3))
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    for output, cls in (("target", InputAudioRawFrame), ("speakers", UserAudioRawFrame)):
        proc = FarfieldProcessor(arr, 16000, output=output)
        got = []
        for s in range(0, pcm.shape[1], 320):
            frame = InputAudioRawFrame(audio=pcm[:, s: s + 320].T.tobytes(), sample_rate=16000, num_channels=6)
            got += proc.convert(frame)
        assert got and all(type(g) is cls and g.sample_rate == 16000 and g.num_channels == 1 for g in got)
        if output == "target":
            assert all(len(g.audio) == 2 * 256 * (len(g.audio) // 512) for g in got)
            assert sum(len(g.audio) for g in got) // 2 == (pcm.shape[1] // 256) * 256
        else:
            assert {g.user_id for g in got} >= {"talker-1"}
    with pytest.raises(ValueError, match="Hz"):
        proc.convert(InputAudioRawFrame(audio=pcm[:, :320].T.tobytes(), sample_rate=48000, num_channels=6))
    with pytest.raises(ValueError, match="channel"):
        proc.convert(InputAudioRawFrame(audio=pcm[:2, :320].T.tobytes(), sample_rate=16000, num_channels=2))


def test_listen_replay_writes_outputs(tmp_path, rng):
    from typer.testing import CliRunner
    from tests_helpers import two_talker_mix

    from farfield.cli import app

    arr, x = two_talker_mix(rng)
    sf.write(str(tmp_path / "mix.wav"), x.T, 16000, subtype="FLOAT")
    r = CliRunner().invoke(app, ["listen", "--array", "respeaker-6mic-hat", "--replay", str(tmp_path / "mix.wav"),
                                 "--no-realtime", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "tracks.csv").exists() and list((tmp_path / "out" / "streams").glob("*.wav"))
    t, sr = sf.read(str(tmp_path / "out" / "target.wav"))
    assert sr == 16000 and abs(t.size - x.shape[1]) <= 512
    assert "dropped blocks 0" in r.output
    r = CliRunner().invoke(app, ["listen", "--array", "respeaker-6mic-hat", "--replay", str(tmp_path / "mix.wav"),
                                 "--no-realtime", "--diarize", "--no-embeddings", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    from farfield.io import read_rttm

    assert read_rttm(tmp_path / "d" / "diarization.rttm")
    assert (tmp_path / "d" / "events.jsonl").read_text().strip()
    # the nearest talker is the target, but not in the first --startup seconds (the mix is shorter than 5 s)
    def targets(d):
        events = [json.loads(line) for line in (d / "events.jsonl").read_text().splitlines()]
        return [e["track_id"] for e in events if e["type"] == "target_changed"]

    assert targets(tmp_path / "d") == []
    r = CliRunner().invoke(app, ["listen", "--array", "respeaker-6mic-hat", "--replay", str(tmp_path / "mix.wav"),
                                 "--no-realtime", "--diarize", "--no-embeddings", "--startup", "0", "--out",
                                 str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert any(t is not None for t in targets(tmp_path / "s"))
