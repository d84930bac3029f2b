import numpy as np
import pytest
from conftest import plane_wave
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import farfield as ff
from farfield.geometry import azimuth_difference_deg
from farfield.sim.room import diffuse_noise

SR = 16000


@settings(max_examples=30, deadline=None)
@given(delay=st.floats(-20.0, 20.0))
def test_gcc_phat_recovers_random_delays(delay):
    rng = np.random.default_rng(0)
    n = 4096
    s = rng.standard_normal(n)
    f = np.fft.rfftfreq(2 * n, 1 / SR)
    y = np.fft.irfft(np.fft.rfft(s, 2 * n) * np.exp(-2j * np.pi * f * delay / SR), 2 * n)[:n]
    tau, peak = ff.gcc_phat(y, s, SR, max_tau_s=25 / SR)
    assert abs(tau * SR - delay) < 0.05
    assert peak > 0.5


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), az=st.floats(0, 359), el=st.floats(-60, 60))
def test_srp_peak_at_true_direction_for_random_geometry(seed, az, el):
    rng = np.random.default_rng(seed)
    while True:
        pos = rng.uniform(-0.06, 0.06, (5, 3))
        if np.linalg.svd(pos - pos.mean(0), compute_uv=False)[2] > 0.02 and \
                np.min(np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(5)) > 0.01:
            break
    arr = ff.ArrayGeometry(pos)
    x = plane_wave(arr, az, el, SR // 2, SR, rng)
    grid = ff.sphere_grid(3)
    fr = ff.Localizer(arr, SR, grid=grid, max_sources=1).process(x)[-1]
    d = fr.detections[0]
    err = ff.angular_distance_deg(np.array(d.unit), ff.az_el_to_unit(az, el))
    # within grid resolution (the peak of a random array can be elongated along one direction)
    assert err <= 2 * grid.spacing_deg, (d, az, el)
    assert d.confidence > 0.9


@pytest.mark.parametrize("method", ["music", "normmusic", "srp-phat"])
def test_one_source_free_field(rng, method):
    arr = ff.load_array("respeaker-4mic-hat")
    fr = ff.Localizer(arr, SR, method=method).process(plane_wave(arr, 290, 0, SR, SR, rng))[-1]
    assert azimuth_difference_deg(fr.detections[0].azimuth_deg, 290) < 5


@pytest.mark.parametrize("method", ["srp-phat", "normmusic"])
def test_two_sources_free_field(rng, method):
    arr = ff.load_array("respeaker-6mic-hat")
    x = plane_wave(arr, 40, 10, SR, SR, rng) + plane_wave(arr, 200, 20, SR, SR, rng)
    fr = ff.Localizer(arr, SR, method=method, max_sources=2, secondary_ratio=0.3).process(x)[-1]  # ratio: MUSIC
    found = sorted(d.azimuth_deg for d in fr.detections)
    assert len(found) == 2
    assert azimuth_difference_deg(found[0], 40) < 6 and azimuth_difference_deg(found[1], 200) < 6


def band_noise(rng, lo_hz, hi_hz, n):
    from scipy.signal import butter, sosfilt
    return sosfilt(butter(6, [lo_hz, hi_hz], "bandpass", fs=SR, output="sos"), rng.standard_normal(n))


def test_source_in_few_bins_is_found_beside_a_wideband_one(rng):
    """A talker that owns only a sixth of the band is found in the bins it dominates, although the full-band
    response of the other source hides it."""
    from scipy.signal import butter, sosfilt

    arr = ff.load_array("matrix-creator")
    notch = sosfilt(butter(6, [2000, 3000], "bandstop", fs=SR, output="sos"), band_noise(rng, 300, 6000, SR))
    wide = plane_wave(arr, 60, 0, SR, SR, rng, notch)
    narrow = plane_wave(arr, 150, 0, SR, SR, rng, band_noise(rng, 2100, 2900, SR))
    fr = ff.Localizer(arr, SR, max_sources=3).process(wide + narrow)[-1]
    found = [d.azimuth_deg for d in fr.detections]
    assert len(found) == 2, found
    assert azimuth_difference_deg(found[0], 60) < 5 and azimuth_difference_deg(found[1], 150) < 5


def test_source_in_too_few_bins_is_a_weak_detection(rng):
    """A source that owns only 300 Hz of the band leaves less free weight than ``min_free_weight``: it is not a
    detection, but a weak one at its direction (none when ``weak_free_weight`` is not below ``min_free_weight``)."""
    from scipy.signal import butter, sosfilt

    arr = ff.load_array("matrix-creator")
    notch = sosfilt(butter(6, [2300, 2800], "bandstop", fs=SR, output="sos"), band_noise(rng, 300, 6000, SR))
    narrow = band_noise(rng, 2400, 2700, SR)
    x = plane_wave(arr, 60, 0, SR, SR, rng, notch) + plane_wave(arr, 150, 0, SR, SR, rng, narrow)
    fr = ff.Localizer(arr, SR, max_sources=3).process(x)[-1]
    assert [round(d.azimuth_deg) for d in fr.detections] == [60]
    assert len(fr.weak_detections) == 1 and azimuth_difference_deg(fr.weak_detections[0].azimuth_deg, 150) < 5
    off = ff.Localizer(arr, SR, max_sources=3, weak_free_weight=0.1).process(x)[-1]
    assert off.detections == fr.detections and off.weak_detections == ()
    with pytest.raises(ValueError, match="weak_free_weight"):
        ff.Localizer(arr, SR, weak_free_weight=0.0)


def test_refining_each_source_on_its_own_bins_removes_the_pull_of_the_other():
    """Two harmonic talkers 60 degrees apart on a 64 mm array: each broad peak pulls the other off; searching
    again with the other's bins masked out puts both back (frames where both are found)."""
    from farfield.sim import synthetic_speech

    arr = ff.load_array("respeaker-usb-4mic")
    errors = {False: [], True: []}
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a, b = (synthetic_speech(3.0, SR, rng=rng, f0_hz=f0) for f0 in (110, 210))
        x = plane_wave(arr, 40, 0, a.size, SR, rng, a) + plane_wave(arr, 100, 0, b.size, SR, rng, b)
        for refine in errors:
            for fr in ff.Localizer(arr, SR, max_sources=2, refine_sources=refine).process(x):
                found = [d.azimuth_deg for d in fr.detections]
                if len(found) == 2:
                    errors[refine] += [min(azimuth_difference_deg(f, t) for f in found) for t in (40, 100)]
    assert len(errors[True]) == len(errors[False]) >= 40
    assert np.mean(errors[True]) < 1.5 and np.mean(errors[True]) < 0.7 * np.mean(errors[False])


def test_refine_moves_each_source_onto_the_bins_that_fit_it_best(rng):
    """Bins alternate between two plane waves 84 degrees apart on a 64 mm array: a second source found 16 degrees
    off (pushed away from the first) is moved back onto its own bins, and the first stays where it is."""
    arr = ff.load_array("respeaker-usb-4mic")
    loc = ff.Localizer(arr, SR, grid="circle")
    k0, k1 = loc.engine.k0, loc.engine.k1
    XA, XB = (ff.stft(plane_wave(arr, az, 0, SR // 4, SR, rng), 512, 256)[:, k0:k1] for az in (258, 174))
    X = np.where((np.arange(k1 - k0) % 2 == 0)[None, :, None], XA, XB)
    phat = np.array([np.mean(X[i] * np.conj(X[j]) / np.abs(X[i] * np.conj(X[j])), axis=1) for i, j in arr.pairs])
    weight = np.ones(k1 - k0)
    az = np.degrees(np.arctan2(loc.grid.units[:, 1], loc.grid.units[:, 0])) % 360
    chosen = [int(np.argmin(np.abs(az - 258))), int(np.argmin(np.abs(az - 158)))]
    loc._refine(phat, weight, chosen, float(weight.sum()), np.abs(phat).sum(axis=0))
    assert azimuth_difference_deg(az[chosen[0]], 258) <= 1.5
    assert azimuth_difference_deg(az[chosen[1]], 174) <= 1.5


def test_bin_fit_is_one_for_the_source_direction_only(rng):
    arr = ff.load_array("respeaker-6mic-hat")
    loc = ff.Localizer(arr, SR, grid="circle")
    X = ff.stft(plane_wave(arr, 100, 0, SR // 4, SR, rng), 512, 256)[:, loc.engine.k0: loc.engine.k1]
    phat = np.array([np.mean(X[i] * np.conj(X[j]) / np.abs(X[i] * np.conj(X[j])), axis=1) for i, j in arr.pairs])
    az = np.degrees(np.arctan2(loc.grid.units[:, 1], loc.grid.units[:, 0])) % 360
    at = loc.engine.bin_fit(phat, int(np.argmin(np.abs(az - 100))))
    away = loc.engine.bin_fit(phat, int(np.argmin(np.abs(az - 220))))
    assert at.shape == (loc.engine.k1 - loc.engine.k0,)
    assert np.all(at > 0.98)
    assert np.mean(away) < 0.5 and np.all(away <= 1.0)


@pytest.mark.parametrize("name", ["respeaker-4mic-hat", "respeaker-6mic-hat", "ps-eye"])
@pytest.mark.parametrize("ratio_db", [-6.0, 0.0, 6.0, 12.0])
def test_cdr_of_a_plane_wave_in_diffuse_noise_is_their_power_ratio(rng, name, ratio_db):
    """A plane wave ``ratio_db`` above spherically diffuse noise: the coherence fit gives that ratio (the
    estimate's bias with 4 s of white noise is under 0.5 dB); towards another direction it is far lower."""
    from farfield.sim.noise import diffuse_noise

    arr = ff.load_array(name)
    loc = ff.Localizer(arr, SR, grid="circle")
    az = np.degrees(np.arctan2(loc.grid.units[:, 1], loc.grid.units[:, 0])) % 360
    g = int(np.argmin(np.abs(az - 100)))
    n = 4 * SR
    x = plane_wave(arr, float(az[g]), 0, n, SR, rng) * 10 ** (ratio_db / 20) + diffuse_noise(arr.positions, n, SR,
                                                                                              rng=rng)
    X = ff.stft(x, 512, 256)[:, loc.engine.k0: loc.engine.k1]
    R = np.ascontiguousarray([np.mean(X[i] * np.conj(X[j]), axis=1) for i, j in arr.pairs])
    diag = np.ascontiguousarray(np.mean(np.abs(X) ** 2, axis=2).astype(complex))
    assert abs(loc.engine.cdr_db(R, diag, g) - ratio_db) < 1.0
    assert loc.engine.cdr_db(R, diag, int(np.argmin(np.abs(az - 220)))) < ratio_db - 6.0


def test_nearer_talker_in_a_room_has_the_higher_cdr():
    """The same voice at 0.8 m and at 3 m from the array in a room with RT60 0.5 s, at the same level at the
    array: the detections' median ``cdr_db`` (and the track rows') is several dB higher for the near one."""
    from farfield.sim.room import calibrated_absorption, compute_rirs, convolve_rirs, mics_in_room

    arr = ff.load_array("respeaker-4mic-hat")
    room, centre = np.array([6.0, 5.0, 3.0]), np.array([3.0, 2.5, 1.0])
    e_abs, order, _ = calibrated_absorption(room, 0.5, SR)
    rng = np.random.default_rng(0)
    n = 3 * SR
    dry = rng.standard_normal(n) * ((np.arange(n) % (SR * 6 // 10)) < SR * 4 // 10)  # 0.4 s bursts, 0.2 s gaps
    med = {}
    for dist in (0.8, 3.0):
        src = centre + np.array([dist * np.cos(np.radians(40)), dist * np.sin(np.radians(40)), 0.0])
        rirs = compute_rirs(room, e_abs, order, src[None], mics_in_room(arr, centre), SR)
        x = convolve_rirs(dry, rirs[0], n)
        x /= np.sqrt(np.mean(x**2))
        res = ff.localize(x * 0.05, SR, arr)
        cdr = [d.cdr_db for fr in res.frames for d in fr.detections]
        assert len(cdr) > 20 and all(-30 <= c <= 30 for c in cdr)
        med[dist] = float(np.median(cdr))
        assert np.isfinite([r.cdr_db for r in res.tracks]).all()
    assert med[0.8] > med[3.0] + 4.0, med


@pytest.mark.parametrize("true_az, reported", [(30, 30), (150, 30), (200, 340), (340, 340), (120, 60)])
def test_linear_array_reports_the_front_half_circle(rng, true_az, reported):
    """The PS Eye is a line of mics along y: a direction and its mirror image across the y axis give the same
    delays, and the localizer reports the one in front (+x)."""
    arr = ff.load_array("ps-eye")
    assert arr.is_linear and arr.front_deg == 0.0
    loc = ff.Localizer(arr, SR)
    assert loc.grid.kind == "half-circle"
    fr = loc.process(plane_wave(arr, true_az, 0, SR // 2, SR, rng))[-1]
    assert azimuth_difference_deg(fr.detections[0].azimuth_deg, reported) < 4


def test_linear_array_is_not_pulled_to_broadside_by_diffuse_noise():
    """A 6 cm linear array hears diffuse noise as a source at broadside (every pair's delay 0): it pulled a talker
    60 deg from broadside towards it; with the diffuse field's coherence projected out of the cross-spectra (the
    default on linear arrays) the talker is found where it is."""
    from farfield.sim import synthetic_speech
    from farfield.sim.noise import diffuse_noise

    arr = ff.load_array("ps-eye")
    assert ff.Localizer(arr, SR).diffuse_projection and not ff.Localizer("respeaker-6mic-hat", SR).diffuse_projection
    errors: dict[bool, list] = {True: [], False: []}
    for seed in range(3):
        rng = np.random.default_rng(seed)
        s = synthetic_speech(3.0, SR, rng=rng, f0_hz=150)
        x = plane_wave(arr, 60, 0, s.size, SR, rng, s)
        n = diffuse_noise(arr.positions, s.size, SR, rng=rng)
        x += n * np.sqrt(np.mean(x**2) / np.mean(n**2)) * 10 ** (-5 / 20)  # SNR 5 dB
        for projection in errors:
            errors[projection] += [azimuth_difference_deg(f.detections[0].azimuth_deg, 60)
                                   for f in ff.Localizer(arr, SR, diffuse_projection=projection).process(x)
                                   if f.detections]
    assert len(errors[True]) >= 100 and np.median(errors[True]) < 6
    assert np.median(errors[False]) > 12
    with pytest.raises(ValueError, match="diffuse_projection works on SRP-PHAT"):
        ff.Localizer(arr, SR, method="music", diffuse_projection=True)


def test_refined_search_matches_full_scan(rng):
    arr = ff.load_array("matrix-creator")
    for az in (10, 100, 250):
        x = plane_wave(arr, az, 15, SR // 2, SR, rng)
        a = ff.Localizer(arr, SR, grid="half-sphere", refine=True).process(x)[-1].detections[0]
        b = ff.Localizer(arr, SR, grid="half-sphere", refine=False).process(x)[-1].detections[0]
        assert a.unit == b.unit


@pytest.mark.parametrize("name", ["respeaker-4mic-hat", "ps-eye"])  # the PS Eye with its diffuse projection
def test_blockwise_equals_offline(rng, name):
    arr = ff.load_array(name)
    x = plane_wave(arr, 70, 0, SR, SR, rng) + 0.1 * rng.standard_normal((4, SR))
    ref = ff.Localizer(arr, SR).process(x)
    loc = ff.Localizer(arr, SR)
    got, pos = [], 0
    for b in rng.integers(1, 900, 200):
        got += loc.process(x[:, pos: pos + b])
        pos += b
        if pos >= x.shape[1]:
            break
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert a.time_s == b.time_s and a.detections == b.detections


def test_silence_and_steady_noise_give_no_detections(rng):
    arr = ff.load_array("respeaker-6mic-hat")
    loc = ff.Localizer(arr, SR)
    assert all(not f.detections for f in loc.process(np.zeros((6, SR))))
    noise = 0.01 * rng.standard_normal((6, 3 * SR))
    frames = ff.Localizer(arr, SR).process(noise)
    late = frames[len(frames) // 3:]
    assert sum(len(f.detections) for f in late) <= 0.05 * len(late)


@pytest.mark.parametrize("name", ["respeaker-usb-4mic", "respeaker-4mic-hat", "matrix-voice"])
def test_steady_diffuse_noise_from_the_first_sample_gives_no_tracks(name):
    """The noise floor starts from the first full STFT frame: started from the first one, half zeros, it sat
    1.5 dB low, and on these arrays spherically diffuse noise (coherent in the low bins) gave 2-8 tracks in the
    first two seconds."""
    arr = ff.load_array(name)
    noise = 0.01 * diffuse_noise(arr.positions, 4 * SR, SR, rng=np.random.default_rng(1))
    res = ff.localize(noise, SR, arr)
    assert not any(f.detections for f in res.frames)
    assert not res.tracks


def test_localize_offline_and_errors(rng):
    arr = ff.load_array("respeaker-6mic-hat")
    x = plane_wave(arr, 120, 0, SR, SR, rng)
    res = ff.localize(x, SR, arr)
    assert res.tracks and all(azimuth_difference_deg(r.azimuth_deg, 120) < 5 for r in res.tracks)
    with pytest.raises(ValueError, match="4 channel"):
        ff.localize(x[:4], SR, arr)
    with pytest.raises(ValueError, match="transpose"):
        ff.localize(np.zeros((1000, 6)), SR, arr)
    bad = x.copy()
    bad[2, 100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ff.localize(bad, SR, arr)
    with pytest.raises(ValueError, match="empty"):
        ff.localize(np.zeros((6, 0)), SR, arr)
    with pytest.raises(ValueError, match="silent"):
        ff.localize(np.zeros((6, 1000)), SR, arr)
    with pytest.raises(ValueError, match="sample_rate"):
        ff.localize(x, 0, arr)
    with pytest.raises(ValueError, match="unknown method"):
        ff.Localizer(arr, SR, method="beamscan")
    with pytest.raises(ValueError, match="freq_range"):
        ff.Localizer(arr, SR, freq_range=(9000, 10000))
    with pytest.raises(ValueError, match="shape"):
        ff.Localizer(arr, SR).process_stft(np.zeros((6, 100, 2), complex))


def test_gcc_phat_errors():
    with pytest.raises(ValueError, match="same length"):
        ff.gcc_phat(np.ones(10), np.ones(11), SR)
    with pytest.raises(ValueError, match="silent"):
        ff.gcc_phat(np.zeros(10), np.ones(10), SR)


def test_far_fit_is_the_best_fit_of_a_clean_bin_from_far_enough():
    """``far_fit`` equals the largest ``bin_fit`` of clean plane-wave bins from the candidate directions at least
    the given angle away; on a small array it is near 1 in the low bins (every direction fits there) and near
    its spatial-aliasing frequency, low between."""
    arr = ff.load_array("respeaker-usb-4mic")
    loc = ff.Localizer(arr, SR)
    eng = loc.engine
    g = int(np.argmin(np.abs(ff.geometry.azimuth_difference_deg(eng.grid.azimuth_deg, 30.0))))
    far = eng.far_fit(g, 60.0)
    cand = np.flatnonzero(ff.geometry.angular_distance_deg(eng._far_units, eng.grid.units[g]) >= 60.0)
    taus = arr.tdoas_s(eng._far_units[cand])
    fits = [eng.bin_fit(np.exp(-1j * eng.omega[None, :] * t[:, None]), g) for t in taus]
    np.testing.assert_allclose(far, np.minimum(np.max(fits, axis=0), 0.99), atol=1e-9)
    f = eng.omega / (2 * np.pi)
    assert far[f < 500].min() > 0.9 and far[(f > 2000) & (f < 2800)].max() < 0.4 and far[f > 3600].max() > 0.95
    assert np.all(eng.far_fit(g, 181.0) == -1.0)  # no direction that far


def test_quieter_source_in_the_low_bins_is_found_on_the_loose_mask(rng):
    """On a small array the first source's mask takes every low bin (they fit every direction), so a source that
    only has low bins is lost; the loose mask (``loose_mask_deg=60``) leaves a bin to it unless the bin fits the
    first source better than a source 60 degrees or more away could, and finds it as a weak detection (not with
    the default ``loose_mask_deg=0``)."""
    arr = ff.load_array("respeaker-usb-4mic")
    x = (plane_wave(arr, 40, 0, SR, SR, rng, band_noise(rng, 1500, 6000, SR))
         + plane_wave(arr, 200, 0, SR, SR, rng, 0.5 * band_noise(rng, 300, 1000, SR)))
    fr = ff.Localizer(arr, SR, max_sources=3, loose_mask_deg=60).process(x)[-1]
    assert len(fr.detections) == 1 and azimuth_difference_deg(fr.detections[0].azimuth_deg, 40) < 5
    assert len(fr.weak_detections) == 1 and azimuth_difference_deg(fr.weak_detections[0].azimuth_deg, 200) < 10
    off = ff.Localizer(arr, SR, max_sources=3).process(x)[-1]
    assert off.detections == fr.detections and off.weak_detections == ()
    with pytest.raises(ValueError, match="loose_mask_deg"):
        ff.Localizer(arr, SR, loose_mask_deg=200)
