"""Beamformers against closed forms and references; the streaming separator and front end."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import farfield as ff
from farfield import kernels
from farfield.beamform import (apply_weights, blind_analytic_normalization, delay_and_sum_weights,
                               diffuse_coherence, estimate_covariance, gev_power_iteration, gev_weights, lcmv_weights,
                               mvdr_souden_weights, mvdr_weights, reference_normalization, solve_hermitian,
                               steering_vectors)
from farfield.frontend import Frontend, place, process
from farfield.separate import Separator
from farfield.stft import stft
from farfield.track import TrackRow
from reference import update_noise_covariance_ref

from conftest import plane_wave

FREQS = np.fft.rfftfreq(512, 1 / 16000)


def random_cov(rng, F, M, rank=None):
    A = rng.standard_normal((F, M, rank or 2 * M)) + 1j * rng.standard_normal((F, M, rank or 2 * M))
    return A @ A.conj().transpose(0, 2, 1)


def test_hermitian_solve_equals_numpy(rng):
    A = random_cov(rng, 33, 6) + 1e-3 * np.eye(6)
    B = rng.standard_normal((33, 6, 3)) + 1j * rng.standard_normal((33, 6, 3))
    np.testing.assert_allclose(solve_hermitian(A, B), np.linalg.solve(A, B), rtol=1e-8, atol=1e-10)


def test_noise_covariance_kernel_equals_reference(rng):
    M, F = 4, 65
    states = [(np.zeros((F, M, M), complex), np.zeros(F), np.zeros(F)) for _ in range(2)]
    for t in range(30):
        scale = 0.1 if t % 7 else 3.0  # occasional loud frames (speech) must barely enter the noise estimate
        X = scale * (rng.standard_normal((M, F)) + 1j * rng.standard_normal((M, F)))
        kernels.update_noise_covariance(X, *states[0], 0.95, 0.7, 1.001, 4.0)
        update_noise_covariance_ref(X, *states[1], 0.95, 0.7, 1.001, 4.0)
    for a, b in zip(*states):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_mvdr_equals_closed_form_on_random_covariances(rng):
    arr = ff.load_array("respeaker-6mic-hat")
    d = steering_vectors(arr, 40.0, 10.0, FREQS)
    R = random_cov(rng, FREQS.size, 6)
    w = mvdr_weights(d, R, diag_eps=0.0)
    Ri = np.linalg.inv(R)
    want = np.einsum("fmn,fn->fm", Ri, d) / np.einsum("fm,fmn,fn->f", d.conj(), Ri, d)[:, None]
    np.testing.assert_allclose(w, want, rtol=1e-6, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(az=st.floats(0, 360), el=st.floats(-60, 60), eps=st.floats(1e-4, 0.1))
def test_distortionless_toward_steering_direction(az, el, eps):
    arr = ff.load_array("minidsp-uma8")
    rng = np.random.default_rng(0)
    d = steering_vectors(arr, az, el, FREQS)
    R = random_cov(rng, FREQS.size, arr.n_mics)
    for w in (delay_and_sum_weights(d), mvdr_weights(d, R, diag_eps=eps),
              mvdr_weights(d, diffuse_coherence(arr, FREQS), diag_eps=eps)):
        np.testing.assert_allclose(np.einsum("fm,fm->f", w.conj(), d), 1.0, atol=1e-8)


def test_lcmv_nulls_and_unit_gain(rng):
    arr = ff.load_array("respeaker-6mic-hat")
    C = np.stack([steering_vectors(arr, a, 0.0, FREQS) for a in (30.0, 150.0, 260.0)], axis=-1)
    w = lcmv_weights(C, np.array([1.0, 0.0, 0.0]), random_cov(rng, FREQS.size, 6), diag_eps=1e-6)
    resp = np.abs(np.einsum("fm,fmk->fk", w.conj(), C))
    band = FREQS > 200
    np.testing.assert_allclose(resp[band, 0], 1.0, atol=1e-6)
    assert np.max(resp[band, 1:]) < 1e-4


def test_souden_and_gev_recover_a_rank_one_target(rng):
    M, F = 4, 40
    a = rng.standard_normal((F, M)) + 1j * rng.standard_normal((F, M))
    Rs = 5.0 * np.einsum("fm,fn->fmn", a, a.conj())
    Rn = random_cov(rng, F, M)
    w = mvdr_souden_weights(Rs, Rn, reference_mic=1, diag_eps=0.0)
    np.testing.assert_allclose(np.einsum("fm,fm->f", w.conj(), a), a[:, 1], rtol=1e-6)  # target as at mic 1
    g = blind_analytic_normalization(gev_weights(Rs, Rn, reference_mic=1, diag_eps=0.0), Rn)
    # max-SNR: GEV output SNR equals the best possible, Souden's too (both rank-one optimal)
    snr = lambda v: np.real(np.einsum("fm,fmn,fn->f", v.conj(), Rs, v) / np.einsum("fm,fmn,fn->f", v.conj(), Rn, v))
    np.testing.assert_allclose(snr(g), snr(w), rtol=1e-6)
    # phase follows the reference mic
    np.testing.assert_allclose(np.angle(np.einsum("fm,fm->f", g.conj(), a) / a[:, 1]), 0.0, atol=1e-6)


def test_gev_power_iteration_converges_to_the_exact_eigenvector(rng):
    M, F = 6, 30
    a = rng.standard_normal((F, M)) + 1j * rng.standard_normal((F, M))
    Rs = 3.0 * np.einsum("fm,fn->fmn", a, a.conj()) + 0.3 * random_cov(rng, F, M)  # full rank, clear eigengap
    Rn = random_cov(rng, F, M)
    exact = gev_weights(Rs, Rn, reference_mic=2)
    exact /= np.linalg.norm(exact, axis=1, keepdims=True)
    start = rng.standard_normal((F, M)) + 1j * rng.standard_normal((F, M))
    v = gev_power_iteration(Rs, Rn, start, iterations=200, reference_mic=2)
    np.testing.assert_allclose(v, exact, atol=1e-6)  # same vector, same phase
    one = gev_power_iteration(Rs, Rn, start, iterations=1, reference_mic=2)
    assert np.max(np.abs(one - exact)) > 1e-3  # one step from a random start is not there yet
    with pytest.raises(ValueError, match=r"init \(freq, n_mics\); got \(30, 6, 6\), \(30, 6, 6\) and \(30, 5\)"):
        gev_power_iteration(Rs, Rn, start[:, :5])
    with pytest.raises(ValueError, match="iterations must be >= 1, got 0"):
        gev_power_iteration(Rs, Rn, start, iterations=0)


def test_reference_normalization_makes_gev_the_souden_mvdr(rng):
    M, F = 5, 20
    a = rng.standard_normal((F, M)) + 1j * rng.standard_normal((F, M))
    Rs = 2.0 * np.einsum("fm,fn->fmn", a, a.conj())
    Rn = random_cov(rng, F, M)
    g = reference_normalization(gev_weights(Rs, Rn, diag_eps=0.0), Rs, reference_mic=0)
    np.testing.assert_allclose(g, mvdr_souden_weights(Rs, Rn, reference_mic=0, diag_eps=0.0), rtol=1e-6, atol=1e-9)


def test_estimate_covariance_and_apply_weights_shapes(rng):
    X = rng.standard_normal((3, 5, 7)) + 1j * rng.standard_normal((3, 5, 7))
    R = estimate_covariance(X)
    np.testing.assert_allclose(R[2], X[:, 2] @ X[:, 2].conj().T / 7)
    assert apply_weights(np.ones((5, 3)), X).shape == (5, 7)
    with pytest.raises(ValueError, match=r"\(freq, frames\)"):
        estimate_covariance(X, np.ones((5, 6)))
    with pytest.raises(ValueError, match="n_mics, freq, frames"):
        estimate_covariance(X[0])


@pytest.mark.parametrize("method", ["das", "superdirective", "mvdr", "lcmv", "mask-mvdr", "mask-gev"])
def test_separator_passes_a_plane_wave_undistorted_and_aligned(method, rng):
    arr = ff.load_array("respeaker-6mic-hat")
    x = plane_wave(arr, 30.0, 0.0, 16000, 16000, rng)
    sep = Separator(arr, 16000, method=method)
    X = stft(x)
    out = np.zeros(16000)
    sep.update_tracks([TrackRow(0.0, 1, 30.0, 0.0, 0.0), TrackRow(0.0, 2, 200.0, 0.0, 0.0)])
    for t in range(X.shape[2]):
        for tid, (start, a) in sep.process_frame(X[:, :, t]).items():
            if tid == 1:
                place(out, start, a)
    err = out[600:-600] - x[0, 600:-600]
    assert 20 * np.log10(np.std(x[0]) / np.std(err)) > 20.0  # aligned to the sample, < 10% error


def test_separator_suppresses_the_other_talker(rng):
    arr = ff.load_array("minidsp-uma8")
    s1, s2 = rng.standard_normal(32000), rng.standard_normal(32000)
    x = plane_wave(arr, 45.0, 0.0, 32000, 16000, rng, s1) + plane_wave(arr, 225.0, 0.0, 32000, 16000, rng, s2)
    X = stft(x)
    for method, want_db in (("lcmv", 20.0), ("mvdr", 10.0)):
        sep = Separator(arr, 16000, method=method)
        sep.update_tracks([TrackRow(0.0, 1, 45.0, 0.0, 0.0), TrackRow(0.0, 2, 225.0, 0.0, 0.0)])
        y = np.concatenate([sep.process_frame(X[:, :, t])[1][1] for t in range(X.shape[2])])[256:32256]
        g1 = np.dot(y, s1) / np.dot(s1, s1)
        resid = y - g1 * s1
        assert 10 * np.log10(np.sum((g1 * s1) ** 2) / np.sum(resid**2)) > want_db, method


@pytest.mark.parametrize("masked", ["mask-mvdr", "mask-gev"])
def test_masked_beams_learn_to_suppress_the_other_talker(rng, masked):
    """Two sources that take turns every 20 ms (as speech does): the masked covariances learn them, and after a
    second the mask-based MVDR / GEV suppress the other source clearly more than the superdirective beam."""
    arr = ff.load_array("minidsp-uma8")

    def bursts(seed):
        r = np.random.default_rng(seed)
        return r.standard_normal(32000) * np.repeat(r.random(100) < 0.5, 320)

    s1, s2 = bursts(1), bursts(2)
    x = plane_wave(arr, 45.0, 0.0, 32000, 16000, rng, s1) + plane_wave(arr, 225.0, 0.0, 32000, 16000, rng, s2)
    X = stft(x)
    sir = {}
    for method in ("superdirective", masked):
        sep = Separator(arr, 16000, method=method)
        sep.update_tracks([TrackRow(0.0, 1, 45.0, 0.0, 0.0), TrackRow(0.0, 2, 225.0, 0.0, 0.0)])
        y = np.concatenate([sep.process_frame(X[:, :, t])[1][1] for t in range(X.shape[2])])[256:32256][16000:]
        ref = s1[16000:]
        g = np.dot(y, ref) / np.dot(ref, ref)
        sir[method] = 10 * np.log10(np.sum((g * ref) ** 2) / np.sum((y - g * ref) ** 2))
    assert sir[masked] > sir["superdirective"] + 3.0, sir


def test_preroll_starts_stream_before_the_track():
    arr = ff.load_array("respeaker-4mic-hat")
    sep = Separator(arr, 16000, preroll_s=0.5)
    X = np.ones((4, 257), complex)
    for _ in range(40):
        assert sep.process_frame(X) == {}
    sep.update_tracks([TrackRow(0.0, 7, 10.0, 0.0, 0.0)])
    start, audio = sep.process_frame(X)[7]
    frames = sep.preroll_frames + 1
    assert audio.size == frames * 256 and start == (41 - frames) * 256 - sep.latency_samples


def test_a_revived_track_gets_no_sample_twice():
    """A stream ends keep_s after its track's last row; when the tracker revives the track a little later, the new
    stream's pre-roll starts where the old stream stopped (not over samples given already), and a track revived
    later than a pre-roll reaches gets its whole pre-roll."""
    arr = ff.load_array("respeaker-4mic-hat")
    sep = Separator(arr, 16000, preroll_s=0.5, keep_s=0.25)
    rng = np.random.default_rng(0)
    chunks = []
    for t in range(200):
        if t in (5, 30, 150):  # born; revived 0.13 s after its stream ended (keep_s after 5); revived long after
            sep.update_tracks([TrackRow(t * 0.016, 7, 10.0, 0.0, 0.0)])
        out = sep.process_frame(rng.standard_normal((4, 257)) + 1j * rng.standard_normal((4, 257)))
        if 7 in out:
            chunks.append(out[7])
    starts = [s for s, _ in chunks]
    ends = [s + a.size for s, a in chunks]
    breaks = [k for k in range(1, len(chunks)) if starts[k] != ends[k - 1]]
    assert len(breaks) == 1  # the first revival goes on where the stream stopped
    revival = next(k for k in range(1, len(chunks)) if chunks[k][1].size > 256)
    assert starts[revival] == ends[revival - 1] and chunks[revival][1].size == (30 - 22 + 1) * 256
    frames = sep.preroll_frames + 1  # the late revival: its whole pre-roll, after a gap
    assert starts[breaks[0]] == (151 - frames) * 256 - sep.latency_samples > ends[breaks[0] - 1]


def scene(rng, n=48000):
    from farfield.sim import SourceSpec, render_scene, synthetic_speech

    arr = ff.load_array("respeaker-6mic-hat")
    srcs = [SourceSpec(synthetic_speech(3.0, 16000, rng=rng, f0_hz=f0), pos, name=f"t{k}")
            for k, (f0, pos) in enumerate(((110, (4.5, 2.5, 1.4)), (210, (2.0, 3.8, 1.4))))]
    sc = render_scene(arr, srcs, 16000, room_dim=(6, 5, 3), rt60_s=0.3, array_position=(3, 2.5, 1.0), snr_db=20,
                      duration_s=n / 16000, rng=rng)
    return arr, sc


@pytest.mark.parametrize("method", ["superdirective", "mask-mvdr", "mask-gev"])
def test_blockwise_frontend_equals_offline_process(rng, method):
    arr, sc = scene(rng)
    off = process(sc.mix, 16000, arr, separation=method, block_size=1024)
    fe = Frontend(arr, 16000, separation=method)
    n = sc.mix.shape[1]
    padded = np.concatenate([sc.mix, np.zeros((6, fe.latency_samples + 256))], axis=1)
    streams, rows, s, sizes = {}, [], 0, [1, 333, 4096, 17, 2000]
    k = 0
    while s < padded.shape[1]:
        b = fe.process(padded[:, s: s + sizes[k % len(sizes)]])
        s += sizes[k % len(sizes)]
        k += 1
        rows += [r for r in b.tracks if r.time_s * 16000 < n]
        for tid, chunks in b.streams.items():
            buf = streams.setdefault(tid, np.zeros(n))
            for start, a in chunks:
                place(buf, start, a)
    assert rows == off.tracks
    assert streams.keys() == off.streams.keys() and len(streams) >= 2
    for tid in streams:
        np.testing.assert_allclose(streams[tid], off.streams[tid], atol=1e-10)
    assert off.latency_samples == 256


def test_frontend_localizer_with_its_own_frame_size(rng):
    """A localizer frame longer than the separator's gets its own analysis: the front end's tracks are those of
    ``localize`` with that frame size, and a localizer hop other than the front end's is refused."""
    arr, sc = scene(rng)
    loc = ff.localize(sc.mix, 16000, arr, frame_size=1024)
    res = process(sc.mix, 16000, arr, localizer_options={"frame_size": 1024})
    last = loc.tracks[-1].time_s
    assert [r for r in res.tracks if r.time_s <= last] == loc.tracks and len(loc.tracks) > 50
    assert res.settings["localizer_frame_size"] == 1024 and res.settings["frame_size"] == 512
    with pytest.raises(ValueError, match="hop_size"):
        Frontend(arr, 16000, localizer_options={"hop_size": 128})


def test_process_separates_two_talkers():
    """Simulated room, two overlapping talkers, hum and diffuse noise: each stream is several dB closer to its
    talker's direct path than the reference mic is."""
    from farfield.metrics import match_streams, si_sdr
    from farfield.sim.recipe import parse_recipe
    from farfield.sim.render import render_recipe_scene
    from test_simulate import small_recipe

    rec = parse_recipe(small_recipe(duration_s=5.0, array={"profile": "respeaker-6mic-hat"},
                                    conversation={"gap_s": [-1.0, -0.5]}))
    sc = render_recipe_scene(rec, 0, 0)
    talkers = [s for s in sc.sources if s.kind == "talker"]
    res = process(sc.mix.astype(float), 16000, sc.array)
    m = match_streams(list(res.streams.values()), [t.direct for t in talkers])
    assert len(m) == 2
    for _, j, v in m:
        assert v - si_sdr(sc.mix[0], talkers[j].direct) > 4.0


def test_bad_input_is_refused(rng):
    arr = ff.load_array("respeaker-4mic-hat")
    with pytest.raises(ValueError, match="channel"):
        process(rng.standard_normal((3, 16000)), 16000, arr)
    with pytest.raises(ValueError, match="silent"):
        process(np.zeros((4, 16000)), 16000, arr)
    with pytest.raises(ValueError, match="NaN"):
        process(np.full((4, 16000), np.nan), 16000, arr)
    with pytest.raises(ValueError, match="sample_rate"):
        process(rng.standard_normal((4, 16000)), 0, arr)
    with pytest.raises(ValueError, match="unknown separation method"):
        Separator(arr, 16000, method="magic")
    with pytest.raises(ValueError, match="frame must have shape"):
        Separator(arr, 16000).process_frame(np.zeros((4, 100), complex))
    with pytest.raises(ValueError, match="reference_mic"):
        Separator(arr, 16000, reference_mic=9)
    with pytest.raises(ValueError, match="gev_normalization must be 'reference' or 'ban', got 'peak'"):
        Separator(arr, 16000, method="mask-gev", gev_normalization="peak")


def test_online_wpe_kernel_equals_reference(rng):
    from farfield.separate import OnlineWPE
    from reference import online_wpe_ref

    M, F, T = 3, 9, 40
    X = rng.standard_normal((M, F, T)) + 1j * rng.standard_normal((M, F, T))
    w = OnlineWPE(M, F, taps=3, delay=2, alpha=0.98)
    got = np.stack([w.process_frame(X[:, :, t]) for t in range(T)], axis=-1)
    np.testing.assert_allclose(got, online_wpe_ref(X, 3, 2, 0.98), rtol=1e-7, atol=1e-9)


def _beam_toward_60(arr, x: np.ndarray, other_az: tuple = (), **options) -> np.ndarray:
    """The stream of a track at azimuth 60 deg (with more tracks at ``other_az``), aligned with ``x (n_mics,
    samples)``."""
    X = stft(x)
    sep = Separator(arr, 16000, **options)
    sep.update_tracks([TrackRow(0.0, k + 1, az, 0.0, 0.0) for k, az in enumerate((60.0, *other_az))])
    return np.concatenate([sep.process_frame(X[:, :, t])[1][1] for t in range(X.shape[2])])[256:x.shape[1] + 256]


def test_postfilter_lowers_noise_and_keeps_speech(rng):
    """A talker plane wave in diffuse noise: with the post-filter's noise term the noise-only part drops by more than
    4 dB while the speech part keeps most of its level (the late-reverberation term is off: it would take a steady
    burst's own past for reverberation, see the next test)."""
    from farfield.sim.noise import diffuse_noise

    arr = ff.load_array("minidsp-uma8")
    n = 48000
    s = np.zeros(n)
    s[24000:40000] = rng.standard_normal(16000)
    x = plane_wave(arr, 60.0, 0.0, n, 16000, rng, s) + 0.3 * diffuse_noise(arr.positions, n, 16000, rng=rng)
    outs = {pf: _beam_toward_60(arr, x, postfilter=pf, postfilter_rt60_s=0.0) for pf in (False, True)}
    noise_drop = 10 * np.log10(np.mean(outs[False][12000:22000] ** 2) / np.mean(outs[True][12000:22000] ** 2))
    speech_drop = 10 * np.log10(np.mean(outs[False][26000:38000] ** 2) / np.mean(outs[True][26000:38000] ** 2))
    assert noise_drop > 4.0 and speech_drop < 2.0


def test_postfilter_suppresses_late_reverberation(rng):
    """A burst with an exponentially decaying tail (RT60 0.6 s): the post-filter's late-reverberation term cuts the
    tail after the burst ends by at least 3 dB more than the burst itself; ``postfilter_rt60_s=0`` turns it off."""
    arr = ff.load_array("minidsp-uma8")
    n, sr = 48000, 16000
    s = np.zeros(n)
    s[16000:24000] = rng.standard_normal(8000)
    h = rng.standard_normal(9600) * np.exp(-3 * np.log(10) / 0.6 * np.arange(9600) / sr)
    h[0] = 20.0  # direct sound above the tail
    x = plane_wave(arr, 60.0, 0.0, n, sr, rng, np.convolve(s, h)[:n]) + 1e-4 * rng.standard_normal((arr.n_mics, n))
    outs = {rt60: _beam_toward_60(arr, x, postfilter=True, postfilter_rt60_s=rt60) for rt60 in (0.0, 0.8)}

    def drop(a: int, b: int) -> float:
        return 10 * np.log10(np.mean(outs[0.0][a:b] ** 2) / np.mean(outs[0.8][a:b] ** 2))

    burst, tail = drop(18000, 23000), drop(24800, 28800)  # the burst's steady part; 50-300 ms after it ends
    assert tail > burst + 3.0, (burst, tail)
    with pytest.raises(ValueError,
                       match=r"Separator: postfilter_rt60_s must be a finite number from 0 to inf, got -0.5"):
        Separator(arr, sr, postfilter=True, postfilter_rt60_s=-0.5)


def test_postfilter_removes_crosstalk(rng):
    """Two talkers (60 and 200 deg) taking turns: with the crosstalk term the stream toward 60 deg drops further
    while only the other talker speaks than while its own talker does; ``postfilter_leakage=0`` turns it off."""
    arr = ff.load_array("minidsp-uma8")
    n, sr = 48000, 16000
    a, b = np.zeros(n), np.zeros(n)
    a[4000:20000] = rng.standard_normal(16000)
    b[24000:44000] = rng.standard_normal(20000)
    x = (plane_wave(arr, 60.0, 0.0, n, sr, rng, a) + plane_wave(arr, 200.0, 0.0, n, sr, rng, b)
         + 1e-4 * rng.standard_normal((arr.n_mics, n)))
    outs = {eta: _beam_toward_60(arr, x, (200.0,), postfilter=True, postfilter_leakage=eta, postfilter_rt60_s=0.0)
            for eta in (0.0, 0.5)}

    def drop(lo: int, hi: int) -> float:
        return 10 * np.log10(np.mean(outs[0.0][lo:hi] ** 2) / np.mean(outs[0.5][lo:hi] ** 2))

    own, other = drop(6000, 18000), drop(26000, 42000)
    assert other > own + 3.0, (own, other)
    with pytest.raises(ValueError,
                       match=r"Separator: postfilter_leakage must be a finite number from 0 to inf, got -1.0"):
        Separator(arr, sr, postfilter=True, postfilter_leakage=-1.0)
