"""Scoring functions: DOA scores, SI-SDR and DER (against pyannote.metrics when installed)."""

import warnings

import numpy as np
import pytest

from farfield.metrics import diarization_error_rate, match_streams, score_doa, si_sdr


def test_score_doa_hand_computed_with_where_the_misses_are():
    times = np.arange(6) * 0.1
    true_az = np.array([[10.0] * 6, [100.0] * 6])
    active = np.array([[1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]], bool)
    est = [np.array([]), np.array([50.0]), np.array([11.0, 50.0]), np.array([25.0, 101.0]), np.array([]),
           np.array([12.0, 98.0])]
    sc = score_doa(times, est, true_az, active)
    # found: source 0 at 0.2 and 0.5 s, source 1 at 0.3 and 0.5 s (98 deg: 2 deg off); 11 active pairs
    assert sc.n_active == 11 and sc.n_frames == 6
    assert sc.recall == pytest.approx(4 / 11) and sc.mae_deg == pytest.approx((1 + 1 + 2 + 2) / 4)
    assert sc.false_per_frame == pytest.approx(3 / 6)  # 50 (twice) and 25 match nothing
    assert sc.acquisition_s == pytest.approx((0.2, 0.2))
    # before first found: source 0 at 0.0 and 0.1 s, source 1 at 0.1 and 0.2 s; 25 deg is 15 deg off source 0
    # (within twice the 10-deg threshold); nothing at 0.4 s
    assert (sc.missed_early, sc.missed_off, sc.missed_absent) == (4, 1, 2)
    assert sc.missed_early + sc.missed_off + sc.missed_absent == sc.n_active - round(sc.recall * sc.n_active)
    never = score_doa(times, [np.array([]) for _ in times], true_az, active)
    assert len(never.acquisition_s) == 2 and all(np.isnan(never.acquisition_s))  # active, never found
    assert never.missed_early == 11


def test_si_sdr_scale_invariant_and_known_value(rng):
    s = rng.standard_normal(16000)
    n = rng.standard_normal(16000)
    assert si_sdr(3.0 * s, s) > 100
    # equal-power orthogonal-ish noise: about 0 dB
    assert abs(si_sdr(s + n, s) - 10 * np.log10(np.dot(s, s) / np.dot(n, n))) < 0.2
    with pytest.raises(ValueError, match="same shape"):
        si_sdr(s, s[:-1])


def test_match_streams_finds_permutation(rng):
    refs = [rng.standard_normal(8000) for _ in range(3)]
    streams = [refs[2] + 0.1 * rng.standard_normal(8000), refs[0], refs[1] * 2]
    assert sorted((i, j) for i, j, _ in match_streams(streams, refs)) == [(0, 2), (1, 0), (2, 1)]


def test_der_hand_computed():
    ref = [("a", 0.0, 10.0), ("b", 10.0, 10.0)]
    assert diarization_error_rate(ref, [("x", 0.0, 10.0), ("y", 10.0, 10.0)], collar_s=0.0).der == 0.0
    d = diarization_error_rate(ref, [("x", 0.0, 20.0)], collar_s=0.0)  # one label for both: 10 s confusion
    assert abs(d.confusion - 0.5) < 1e-9 and d.missed == 0 and d.false_alarm == 0
    d = diarization_error_rate(ref, [("x", 0.0, 5.0), ("y", 10.0, 10.0), ("z", 25.0, 5.0)], collar_s=0.0)
    assert abs(d.missed - 0.25) < 1e-9 and abs(d.false_alarm - 0.25) < 1e-9
    # overlap scored: two reference speakers at once, one hypothesis speaker -> half of the overlap missed
    d = diarization_error_rate([("a", 0.0, 10.0), ("b", 0.0, 10.0)], [("x", 0.0, 10.0)], collar_s=0.0)
    assert abs(d.missed - 0.5) < 1e-9


def test_der_equals_pyannote():
    pytest.importorskip("pyannote.metrics")
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    rng = np.random.default_rng(0)

    def draw(prefix, n_spk):
        segs = []
        for k in range(n_spk):
            t = rng.uniform(0, 2)
            while t < 30:
                s, d = round(t, 2), round(rng.uniform(0.3, 4), 2)
                segs.append((f"{prefix}{k}", s, d))
                t = s + d + rng.uniform(0.2, 5)
        return segs

    for _ in range(8):
        ref, hyp = draw("r", 3), draw("h", int(rng.integers(2, 5)))
        a, b = Annotation(), Annotation()
        for i, (n, s, d) in enumerate(ref):
            a[Segment(s, s + d), i] = n
        for i, (n, s, d) in enumerate(hyp):
            b[Segment(s, s + d), i] = n
        for collar in (0.0, 0.25):  # pyannote's collar is the total width; ours is per side (as md-eval)
            with warnings.catch_warnings():  # pyannote notes that the scored extent (uem) is approximated
                warnings.simplefilter("ignore")
                want = DiarizationErrorRate(collar=2 * collar)(a, b)
            assert abs(diarization_error_rate(ref, hyp, collar_s=collar).der - want) < 1e-6
