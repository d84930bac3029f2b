"""Tracker behaviour on synthetic detections."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import farfield as ff
from farfield.localize import Detection, LocalizationFrame

DT = 0.032


def frame(t, azs, rng=None, noise_deg=1.0):
    dets = []
    for a in azs:
        if rng is not None:
            a = a + rng.normal(0, noise_deg)
        u = ff.az_el_to_unit(a, 0.0)
        dets.append(Detection(float(a % 360), 0.0, -30.0, 0.8, tuple(map(float, u))))
    return LocalizationFrame(t, -30.0, -60.0, tuple(dets))


def run(tracker, schedule):
    rows = []
    for k, azs in enumerate(schedule):
        rows.append(tracker.update(frame(k * DT, azs, np.random.default_rng(k))))
    return rows



def weak_frame(t, strong, weak):
    """A LocalizationFrame with detections at azimuths ``strong`` and weak detections at ``weak``."""
    f, w = frame(t, strong), frame(t, weak)
    return LocalizationFrame(t, -30.0, -60.0, f.detections, w.detections)

def test_id_persists_through_pause_and_dies_cleanly():
    tr = ff.Tracker(frame_period_s=DT, forget_s=4.0)
    n_on, n_pause = 60, int(2.0 / DT)
    sched = [[45.0]] * n_on + [[]] * n_pause + [[47.0]] * n_on + [[]] * int(6.0 / DT)
    rows = run(tr, sched)
    ids_first = {r.track_id for r in rows[n_on - 1]}
    ids_second = {r.track_id for r in rows[n_on + n_pause + n_on - 1]}
    assert ids_first == ids_second == {1}
    # not reported during the pause (after the hangover), nothing at all left after forget_s
    assert rows[n_on + n_pause - 1] == []
    assert rows[-1] == [] and tr.tracks == []


def test_two_crossing_talkers_keep_their_ids():
    tr = ff.Tracker(frame_period_s=DT)
    n = 150
    a = np.linspace(0, 120, n)  # moves counter-clockwise at ~25 deg/s
    b = np.linspace(120, 0, n)  # moves the other way
    rows = run(tr, [[x, y] for x, y in zip(a, b)])
    early = {r.track_id: r.azimuth_deg for r in rows[20]}
    late = {r.track_id: r.azimuth_deg for r in rows[-1]}
    assert len(early) == 2 and set(early) == set(late)
    ida = min(early, key=lambda i: abs(early[i] - a[20]))
    assert abs(late[ida] - a[-1]) < 10, (early, late)


def test_moving_talker_is_followed():
    tr = ff.Tracker(frame_period_s=DT)
    az = (np.arange(200) * 1.5) % 360  # 47 deg/s, wraps through 0
    rows = run(tr, [[a] for a in az])
    assert {r.track_id for rr in rows[10:] for r in rr} == {1}
    assert abs(((rows[-1][0].azimuth_deg - az[-1]) + 180) % 360 - 180) < 5


@pytest.mark.parametrize("options", [{"measurement_noise_deg": 12.0}, ff.STILL_TALKERS])
@pytest.mark.parametrize("seed", range(4))
def test_scattered_detections_of_one_talker_keep_one_steady_track(seed, options):
    """Detections of a still talker scattered by 8 deg (a quieter talker's in a reverberant room), with
    measurement_noise_deg 12 (alone, and in farfield.STILL_TALKERS): one track, close to the talker. With the default
    4 the filter chases the scatter, and a detection outside the gate starts a second track in three of these four
    runs."""
    tr = ff.Tracker(frame_period_s=DT, **options)
    rng = np.random.default_rng(seed)
    rows = [tr.update(frame(k * DT, [100.0], rng, noise_deg=8.0)) for k in range(150)]
    later = [r for rr in rows[30:] for r in rr]
    assert {r.track_id for r in later} == {1} and len(later) == 120
    err = np.array([(r.azimuth_deg - 100.0 + 180.0) % 360.0 - 180.0 for r in later])
    assert np.sqrt(np.mean(err**2)) < 3.0


def test_sporadic_detections_make_no_track():
    tr = ff.Tracker(frame_period_s=DT)
    rng = np.random.default_rng(0)
    sched = [[rng.uniform(0, 360)] if rng.random() < 0.3 else [] for _ in range(300)]
    rows = run(tr, sched)
    assert sum(len(r) for r in rows) < 10


def test_one_stray_detection_does_not_revive_a_dormant_track():
    tr = ff.Tracker(frame_period_s=DT)
    n_on, n_pause = 40, int(2.0 / DT)  # 40 hits: not established, 0.5 s hangover
    stray = [[]] * 10 + [[46.0]] + [[]] * 10
    rows = run(tr, [[45.0]] * n_on + [[]] * n_pause + stray + [[46.0]] * 2 + [[]] * 3)
    assert rows[n_on - 1] and rows[n_on + n_pause - 1] == []
    assert all(r == [] for r in rows[n_on + n_pause: n_on + n_pause + len(stray)])  # the stray hit: still dormant
    assert [r.track_id for r in rows[n_on + n_pause + len(stray) + 1]] == [1]  # two hits: back, same id


def test_a_revived_track_does_not_fly_on_to_another_talker():
    """A talker pauses, a few detections revive their track off to one side (a reflection, or a mix with another
    source), then someone else speaks 25 deg further on: the revived track must not carry the jump on as
    velocity and take the other person (a dormant talker stands still)."""
    tr = ff.Tracker(frame_period_s=DT)
    n_on, n_pause = 80, int(3.0 / DT)  # established, then dormant
    sched = [[100.0]] * n_on + [[]] * n_pause + [[127.0]] * 3 + [[]] * 8 + [[152.0]] * 60
    rows = run(tr, sched)
    first = {r.track_id for r in rows[n_on - 1]}
    assert first == {1}
    assert all(r.azimuth_deg < 135.0 for rr in rows for r in rr if r.track_id == 1), \
        [(k, round(r.azimuth_deg)) for k, rr in enumerate(rows) for r in rr if r.track_id == 1][-5:]
    assert any(r.track_id != 1 and abs(r.azimuth_deg - 152.0) < 5 for r in rows[-1])  # the other person: own track


def test_a_young_track_hit_now_and_then_has_a_short_hangover():
    def reported_after_last_hit(schedule):
        rows = run(ff.Tracker(frame_period_s=DT), schedule + [[]] * 30)
        return sum(1 for r in rows[len(schedule):] if r) * DT

    steady = reported_after_last_hit([[45.0]] * 15)
    sporadic = reported_after_last_hit([[45.0]] * 4 + ([[]] * 5 + [[45.0]]) * 2)
    assert steady == pytest.approx(0.5, abs=DT)  # the full hangover_s
    assert sporadic < 0.4


def test_weak_detections_keep_an_active_track_but_never_start_or_revive_one():
    """A talker masked by a louder one is seen only as weak detections: its track stays reported past the
    hangover; weak detections alone make no track, and do not wake a dormant one."""
    tr = ff.Tracker(frame_period_s=DT)
    n_on, n_weak = 40, int(3.0 / DT)  # 3 s of weak detections only: longer than any hangover
    rows = [tr.update(weak_frame(k * DT, [100.0] + ([40.0] if k < n_on else []), [] if k < n_on else [40.0]))
            for k in range(n_on + n_weak)]
    assert {r.track_id for r in rows[n_on - 1]} == {1, 2}
    assert {round(r.azimuth_deg) for r in rows[-1]} == {100, 40}
    # ... but a row kept only by a weak detection is not a detection (the diarizer's speech gate reads it)
    assert {(r.track_id, r.detected) for r in rows[-1]} == {(1, True), (2, False)}
    # weak detections alone: no track
    tr = ff.Tracker(frame_period_s=DT)
    assert not any(tr.update(weak_frame(k * DT, [], [200.0])) for k in range(60))
    assert tr.tracks == []
    # a dormant track is not revived by them
    tr = ff.Tracker(frame_period_s=DT)
    for k in range(n_on):
        tr.update(weak_frame(k * DT, [200.0], []))
    for k in range(n_on, n_on + int(2.0 / DT)):
        tr.update(weak_frame(k * DT, [], []))
    assert [t["state"] for t in tr.tracks] == ["dormant"]
    rows = [tr.update(weak_frame(k * DT, [], [200.0])) for k in range(n_on + 100, n_on + 130)]
    assert not any(rows) and [t["state"] for t in tr.tracks] == ["dormant"]


def test_weak_detections_farther_than_weak_gate_neither_keep_nor_pull_a_track():
    """Weak detections 12 deg from an active track (more than weak_gate_deg, less than the gate) do not move it
    and do not keep it past its hangover; 5 deg away they keep it (and it follows them)."""
    for offset, kept in ((12.0, False), (5.0, True)):
        tr = ff.Tracker(frame_period_s=DT, weak_gate_deg=8.0)
        for k in range(40):
            tr.update(weak_frame(k * DT, [100.0], []))
        rows = [tr.update(weak_frame(k * DT, [], [100.0 + offset])) for k in range(40, 40 + int(3.0 / DT))]
        assert bool(rows[-1]) == kept
        assert all(-0.5 < r.azimuth_deg - 100.0 < (offset + 1.0 if kept else 0.5) for rr in rows for r in rr)


def test_tracker_errors():
    with pytest.raises(ValueError, match="frame_period_s"):
        ff.Tracker(frame_period_s=0)
    with pytest.raises(ValueError, match="weak_gate_deg"):
        ff.Tracker(frame_period_s=DT, weak_gate_deg=0.0)
    with pytest.raises(ValueError, match="hangover"):
        ff.Tracker(frame_period_s=DT, hangover_s=5, forget_s=1)
    with pytest.raises(ValueError, match="revive_hits"):
        ff.Tracker(frame_period_s=DT, revive_hits=0)
    with pytest.raises(ValueError, match="full_hangover_rate"):
        ff.Tracker(frame_period_s=DT, full_hangover_rate=1.5)
    tr = ff.Tracker(frame_period_s=DT)
    with pytest.raises(TypeError, match="LocalizationFrame"):
        tr.update([0.0, []])
    tr.update(frame(1.0, []))
    with pytest.raises(ValueError, match="time order"):
        tr.update(frame(0.5, []))


@pytest.mark.parametrize("planar", [False, True])
def test_per_axis_kalman_equals_the_full_filter(planar):
    """The tracker keeps the covariance as kron(A, I3) with A 2x2; it must do what the 6x6 matrices do."""
    from farfield.track import _Track
    from reference import kalman_correct_ref, kalman_predict_ref

    def normalise(x):  # the tracker's re-normalisation onto the sphere, on the reference state
        if planar:
            x[2] = x[5] = 0.0
        x[:3] /= np.linalg.norm(x[:3])
        x[3:] -= x[:3] * (x[:3] @ x[3:])
        return x

    def check(t, x, P):
        np.testing.assert_allclose(t.P, P, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(np.concatenate([t.u, t.v]), x, rtol=1e-9, atol=1e-12)

    rng = np.random.default_rng(3)
    tr = ff.Tracker(frame_period_s=0.032, planar=planar)
    u0 = rng.normal(size=3)
    if planar:
        u0[2] = 0.0
    u0 /= np.linalg.norm(u0)
    t = _Track(u0, 0.0, -30.0, 0.0, 0.5, tr.r)
    x, P = np.concatenate([u0, np.zeros(3)]), t.P.copy()
    for step in range(40):
        x, P = kalman_predict_ref(x, P, tr.dt, tr.q)
        x = normalise(x)
        tr._predict(t)
        check(t, x, P)
        if step % 3 != 2:  # some updates coast
            z = np.array(t.u) + rng.normal(scale=0.05, size=3)
            if planar:
                z[2] = 0.0
            z /= np.linalg.norm(z)
            x, P = kalman_correct_ref(x, P, z, tr.r)
            x = normalise(x)
            tr._correct(t, z)
            check(t, x, P)


@settings(max_examples=150, deadline=None)
@given(n_tracks=st.integers(1, 5), n_dets=st.integers(1, 4), n_weak=st.integers(0, 2), seed=st.integers(0, 2**31 - 1))
def test_assignment_matches_the_reference(n_tracks, n_dets, n_weak, seed):
    """Gated Hungarian association (and its shortcut for one track or one detection) against plain loops; the
    last ``n_weak`` detections are weak."""
    from farfield.track import _Track
    from reference import gated_assignment_ref

    rng = np.random.default_rng(seed)
    tr = ff.Tracker(frame_period_s=0.032)
    centre = rng.normal(size=3)  # tracks and detections near each other, so that gates and choices matter
    units = centre + rng.normal(scale=0.3, size=(n_tracks, 3))
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    Z = centre + rng.normal(scale=0.3, size=(n_dets, 3))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    tr._tracks = [_Track(u, 0.0, -30.0, 0.0, 0.5, rng.uniform(1e-4, 0.05)) for u in units]
    for t in tr._tracks:
        t.state = str(rng.choice(["tentative", "active", "dormant"]))
    n_strong = max(n_dets - n_weak, 0)
    want = gated_assignment_ref(units, [t.state for t in tr._tracks], [tr._sigma(t) for t in tr._tracks], Z,
                                tr.gate, tr.birth_gate, tr.revive_gate, tr.gate_growth, n_strong, tr.weak_gate)
    assert sorted(tr._assign(Z, n_strong)) == want
