"""Diarization, voice activity, target selection and events."""

import numpy as np
import pytest

from farfield.diarize import OnlineDiarizer
from farfield.geometry import azimuth_difference_deg, load_array
from farfield.frontend import Frontend, FrontendBlock, process
from farfield.playback import PlaybackZones
from farfield.target import LoudestTalker, TargetSelector
from farfield.track import TrackRow
from farfield.vad import make_vad


def rows(t, *spec):
    """TrackRows at time t from (track_id, azimuth, power_db)."""
    return [TrackRow(t, tid, az, 0.0, p) for tid, az, p in spec]


def run_cue(sel, n_updates, cue_at, scene, **cue):
    """Feed ``sel`` ``n_updates`` updates at 30 per second, with a cue (``sel.trigger(t, **cue)``) at update
    ``cue_at``; ``scene(t) -> (speaking tracks, rows)``. Returns the last target track that was not ``None``."""
    track = None
    for k in range(n_updates):
        t = k / 30
        if k == cue_at:
            sel.trigger(t, **cue)
        speaking, now = scene(t)
        sel.observe(speaking, t)
        track = sel.update(now, t) or track
    return track


def test_playback_zone_is_never_the_target():
    sel = TargetSelector()
    target = None
    for k in range(1800):  # 60 s at 30 updates/s
        t = k / 30
        tv = {1: "tv"}  # the TV talks all the time from 90 deg
        person = (t % 6) < 2.0  # a person talks a third of the time from 200 deg, quieter
        active = {**tv, **({2: "alice"} if person else {})}
        sel.observe(active)
        r = rows(t, (1, 90.0, -20.0), *(((2, 200.0, -30.0),) if person else ()))
        target = sel.update(r, t)
        if t > 30.5:  # playback_min_s
            assert sel.target != "tv"
    assert sel.is_playback(90.0, 59.9) and not sel.is_playback(200.0, 59.9)
    assert target in (2, None)


def test_nobody_is_the_target_by_level_alone_in_the_first_seconds():
    """A TV talks from start-up: in the first ``startup_s`` (5 s) nobody is the target by level (the playback rules
    cannot judge it yet), by then the TV is a zone, and a person who speaks later is the target. A sector or a cue's
    lock chooses at once; ``startup_s=0`` chooses by level at once."""
    def run(sel, cue=False):
        seen = []
        for k in range(300):  # 10 s at 30 updates/s: the TV at 90 deg all the time, a person at 200 deg from 3 s
            t = k / 30
            if cue and k == 80:
                sel.trigger(t)
            person = t >= 3.0 and (t % 3) < 2.0
            sel.observe({1: "tv", **({2: "alice"} if person else {})}, t)
            seen.append((t, sel.update(rows(t, (1, 90.0, -20.0), *(((2, 200.0, -30.0),) if person else ())), t)))
        return seen

    seen = run(TargetSelector())
    assert all(track is None for t, track in seen if t < 5.0)
    assert {track for t, track in seen if t >= 6.0} == {2} and 1 not in {track for _, track in seen}
    assert run(TargetSelector(startup_s=0.0))[0][1] == 1  # the TV, before anything can tell it from a person
    assert {track for t, track in run(TargetSelector(sector=(200.0, 20.0))) if 3.1 < t < 5.0} == {2}
    assert {track for t, track in run(TargetSelector(), cue=True) if 3.1 < t < 5.0} == {2}
    with pytest.raises(ValueError, match="startup_s must be a finite number"):
        TargetSelector(startup_s=-1.0)


def test_a_voice_heard_nearly_all_the_time_is_not_chosen_by_level_before_the_full_playback_rules():
    """A TV talks alone from start-up (nothing else is heard, so the early playback rule cannot mark it): after the
    start-up wait it is still not the target while it is reported in most updates, until ``playback_min_s``; a
    nearer (louder) person who takes turns is. ``startup_s=0`` turns this off too."""
    def run(sel, person_from_s=None):
        seen = []
        for k in range(480):  # 16 s at 30 updates/s
            t = k / 30
            person = person_from_s is not None and t >= person_from_s and (t % 3) < 1.0
            sel.observe({1: "tv", **({2: "alice"} if person else {})}, t)
            seen.append((t, sel.update(rows(t, (1, 90.0, -20.0), *(((2, 200.0, -10.0),) if person else ())), t)))
        return seen

    alone = run(TargetSelector())
    assert all(track is None for t, track in alone if t < 15.0) and alone[-1][1] == 1  # after 15 s: as a person
    assert all(track == 1 for t, track in run(TargetSelector(startup_s=0.0)))
    turns = TargetSelector(playback_overlap=1e6, playback_slot_fraction=1.0)  # the TV never becomes a zone here
    assert {track for t, track in run(turns, person_from_s=6.0) if 6.5 < t < 7.0} == {2}


def test_a_track_pulled_onto_a_tv_is_playback_at_once():
    """A new track born beside a TV and pulled onto it (on a small array the two merge into one peak) is playback
    as soon as its direction is in the zone, before its smoothed direction (about a second) gets there."""
    sel = TargetSelector(sector=(110.0, 40.0))
    for k in range(1500):  # 50 s: the TV at 90 deg talks all the time, a person at 200 deg a third of it
        t = k / 30
        person = (t % 6) < 2.0
        sel.observe({1: "tv", **({2: "alice"} if person else {})}, t)
        sel.update(rows(t, (1, 90.0, -20.0), *(((2, 200.0, -30.0),) if person else ())), t)
    assert sel.is_playback(90.0, t) and sel.target is None
    targets = []
    for k in range(15):  # a new track at 130 deg slides onto the TV in half a second
        t = (1500 + k) / 30
        az = 130.0 - 40.0 * k / 14
        sel.observe({1: "tv", 3: "bob"}, t)
        track = sel.update(rows(t, (1, 90.0, -20.0), (3, az, -25.0)), t)
        targets.append((sel.is_playback(az, t), track))
    assert [track for in_zone, track in targets] == [None if in_zone else 3 for in_zone, _ in targets]
    assert targets[0][0] is False and targets[-1][0] is True and 3 in sel.playback_tracks


def test_before_playback_min_s_zones_need_5_s_and_stricter_tests():
    """From 5 s of history to ``playback_min_s`` (15 s) the update rule is judged with a detection rate above 0.6
    (0.45 after) and an overlap ratio of at least 0.3 (0.15 after): a TV heard in every update while a person talks
    now and then is a zone from 5 s on; a source heard in half of the updates only from 15 s on; a person who
    holds the floor in turns with another (never heard together) at no time."""
    sel = TargetSelector()
    turns = TargetSelector()
    for k in range(600):  # 20 s at 30 updates/s
        t = k / 30
        heard = [(1, 90.0, -20.0)] + ([(2, 200.0, -30.0)] if (t % 6) < 2.0 else [])
        sel.observe({r[0]: None for r in heard}, t)
        sel.update(rows(t, *heard), t)
        chatty = (t % 10) < 7.0
        turns.observe({1: "a"} if chatty else {2: "b"}, t)
        turns.update(rows(t, (1, 90.0, -20.0)) if chatty else rows(t, (2, 250.0, -20.0)), t)
        assert turns.playback_zones(t) == []
        if t < 4.9:
            assert sel.playback_zones(t) == []
        elif t > 5.1:
            assert sel.is_playback(90.0, t) and not sel.is_playback(200.0, t)
    half = TargetSelector()
    for k in range(600):
        t = k / 30
        # 1 in half of the updates, 2 in the other half and in every second update of the first (ratio 1/3)
        heard = ([(1, 90.0, -20.0)] if k % 10 < 5 else []) + ([(2, 200.0, -30.0)] if k % 10 >= 5 or k % 2 == 0
                                                               else [])
        half.observe({r[0]: None for r in heard}, t)
        half.update(rows(t, *heard), t)
        assert half.is_playback(90.0, t) == (t >= 15.0), t


def test_playback_zones_alone_mark_a_tv_with_memory_bounded_by_the_window():
    """``PlaybackZones`` on its own (as the selector feeds it): a TV at 90 deg heard in every update while a person
    at 200 deg talks a third of the time is the only zone from 5 s on (the 5-deg bins of its plateau of detection
    rate, within ``width_deg`` of it); over 5 minutes the statistics hold no more than the 60-s window (updates and
    1-s slots)."""
    pz = PlaybackZones()
    for k in range(9000):  # 300 s at 30 updates/s
        t = k / 30
        heard = [(1, 90.0, -20.0)] + ([(2, 200.0, -30.0)] if (t % 6) < 2.0 else [])
        pz.record(rows(t, *heard), t)
        if 5.1 < t and k % 300 == 0:
            zones = pz.zones(t)
            assert 90.0 in zones and all(abs(z - 90.0) <= pz.width_deg for z in zones), (t, zones)
            assert pz.contains(97.0, zones) and not pz.contains(200.0, zones) and not pz.contains(120.0, zones)
    assert pz.zones() == pz.zones(8999 / 30)  # by default, at the last update's time
    assert len(pz._history) <= 60 * 30 + 1 and len(pz._slots) <= 60


def test_a_talker_who_holds_the_floor_is_not_playback():
    """Two people take turns, one talking 70 % of the time; they are heard one at a time (turn taking), so the
    chatty one is no playback zone, unlike a TV heard while others talk."""
    sel = TargetSelector()
    for k in range(1800):
        t = k / 30
        chatty = (t % 10) < 7.0
        sel.observe({1: "a"} if chatty else {2: "b"})
        sel.update(rows(t, (1, 90.0, -20.0)) if chatty else rows(t, (2, 250.0, -20.0)), t)
    assert sel.playback_zones(59.9) == []


@pytest.mark.parametrize("slot_fraction", [0.8, 1.0])
def test_a_tv_lost_while_a_louder_person_talks_is_still_playback(slot_fraction):
    """A small array loses the TV at 90 deg whenever a louder person at 200 deg talks, but catches it in a gap
    between their words each second: the two are never detected in the same update, so only the 1-s slot
    occupancy marks the TV (``playback_slot_fraction=1.0`` turns that off)."""
    sel = TargetSelector(playback_slot_fraction=slot_fraction)
    for k in range(1800):
        t = k / 30
        person = (t % 6) < 3.0
        tv_heard = not person or k % 30 == 15
        heard = [*(((1, 90.0, -25.0),) if tv_heard else ()), *(((2, 200.0, -15.0),) if person and k % 30 != 15 else ())]
        sel.observe({r[0]: None for r in heard}, t)
        sel.update(rows(t, *heard), t)
    assert sel.is_playback(90.0, 59.9) == (slot_fraction < 1.0)
    assert not sel.is_playback(200.0, 59.9)


@pytest.mark.parametrize("masked", [0.1, 0.0])
def test_a_person_talking_on_alone_is_not_playback(masked):
    """One person talks nearly all the time (heard in 29 of every 30 updates, nothing else is): they fill every
    1-s slot, but when they are missing nothing else is heard, unlike a TV masked by talkers, so the slot rule
    leaves them alone (``playback_masked=0`` turns that guard off)."""
    sel = TargetSelector(playback_masked=masked)
    for k in range(1800):
        t = k / 30
        heard = [] if k % 30 == 0 else [(1, 90.0, -20.0)]
        sel.observe({r[0]: None for r in heard}, t)
        sel.update(rows(t, *heard), t)
    assert sel.is_playback(90.0, 59.9) == (masked == 0.0)


@pytest.mark.parametrize("others_min", [0.1, 0.0])
def test_a_person_whose_reflection_is_heard_now_and_then_is_not_playback(monkeypatch, others_min):
    """One person talks nearly all the time from 90 deg and a wall reflection of their voice at 150 deg is
    detected with them in 1 of 60 updates: the TV test (heard on while another direction is heard) would pass on
    those few updates, so it needs another direction in 10 % of the updates first."""
    monkeypatch.setattr("farfield.playback._OTHERS_MIN", others_min)
    sel = TargetSelector()
    for k in range(1800):
        t = k / 30
        heard = [] if k % 30 == 0 else [(1, 90.0, -20.0)] + ([(2, 150.0, -30.0)] if k % 60 == 7 else [])
        sel.observe({r[0]: None for r in heard}, t)
        sel.update(rows(t, *heard), t)
    assert sel.is_playback(90.0, 59.9) == (others_min == 0.0)


def test_a_tv_whose_tests_pass_one_bin_off_its_peak_is_playback():
    """The TV is heard in every update, at 93, 102 or 84 deg: its detection rate peaks at 95-100 deg. A person at
    113 deg (a fifth of the time, always with the TV) is "another direction" for the 90-deg bin but not for 95 or
    100 (under 20 deg away), so the overlap tests pass only one bin off the peak. That still makes a zone."""
    sel = TargetSelector()
    for k in range(1800):
        t = k / 30
        tv_az = 93.0 if k % 10 < 6 else 102.0 if k % 10 < 9 else 84.0
        heard = [(1, tv_az, -20.0)] + ([(2, 113.0, -25.0)] if (t % 5) < 1.0 else [])
        sel.observe({r[0]: None for r in heard}, t)
        sel.update(rows(t, *heard), t)
    assert sel.is_playback(93.0, 59.9) and sel.is_playback(102.0, 59.9)
    assert not sel.is_playback(113.0, 59.9)


def test_a_tv_between_two_talkers_20_to_30_deg_away_is_playback():
    """A louder TV at 337-343 deg, heard in 7 of 10 updates, with a talker on each side (318 and 4 deg, 22 and 24
    deg from its centre) taking turns. Each talker is "another direction" for the TV's central bin, so the update
    rule makes it a zone there, and the TV is never the target once that is judged (from 15 s); a talker is, and
    the talkers are not zones. (With 30 deg as "another direction", no talker was another direction for the TV's
    bins 335-345; only the slot rule, judged from 30 s, found the TV, at 330 and 350, and until then the louder TV
    was the target.)"""
    sel = TargetSelector()
    chosen = []
    for k in range(1800):
        t = k / 30
        phase = t % 8
        heard = ([(1, 337.0 + 2 * (k % 4), -15.0)] if k % 10 < 7 else []) + (
            [(2, 318.0, -25.0)] if phase < 3.0 else [(3, 4.0, -25.0)] if 4.0 <= phase < 7.0 else [])
        sel.observe({r[0]: None for r in heard}, t)
        track = sel.update(rows(t, *heard), t)
        if t > 16.0:
            chosen.append(track)
    assert 340.0 in sel.playback_zones(59.9)
    assert not sel.is_playback(318.0, 59.9) and not sel.is_playback(4.0, 59.9)
    assert 1 not in chosen and set(chosen) & {2, 3}


def test_one_label_on_a_tv_and_a_person_still_rejects_the_tv():
    """The embeddings cannot tell the TV from a person and give both one label: the TV's track is rejected by
    its direction and the person's track becomes the target."""
    sel = TargetSelector()
    for k in range(1800):
        t = k / 30
        person = (t % 6) < 2.0
        sel.observe({1: "spk1", **({2: "spk1"} if person else {})})
        track = sel.update(rows(t, (1, 90.0, -20.0), *(((2, 200.0, -30.0),) if person else ())), t)
        if t > 30.5 and person and (t % 6) > 0.5:
            assert track == 2 and sel.target == "spk1"
    assert sel.is_playback(90.0, 59.9) and not sel.is_playback(200.0, 59.9)


def test_sector_and_enrolled_policies_beat_loudness():
    sel = TargetSelector(sector=(0.0, 30.0))
    sel.observe({1: "a", 2: "b"})
    for k in range(20):
        sel.update(rows(k / 30, (1, 10.0, -40.0), (2, 180.0, -20.0)), k / 30)
    assert sel.target == "a"
    sel = TargetSelector(enrolled="b", sector=(0.0, 30.0))
    sel.observe({1: "a", 2: "b"})
    for k in range(20):
        sel.update(rows(k / 30, (1, 10.0, -40.0), (2, 180.0, -20.0)), k / 30)
    assert sel.target == "b"


def test_exclusive_target_goes_at_once_when_its_track_speaks_outside_the_policy():
    """The target's track speaks in the sector for 0.3 s (too little to say where its most central talker is), pauses,
    and speaks again from 0.6 s, 40 deg away and outside the sector, not labelled yet (the tracker gave it to someone
    else): that is not a pause, so the target goes at once, not keep_s later."""
    sel = TargetSelector(sector=(0.0, 20.0))
    targets = []
    for k in range(60):
        t = k / 30
        speaking = {1: None} if t < 0.3 or t >= 0.6 else {}
        sel.observe(speaking, t)
        targets.append(sel.update(rows(t, (1, 0.0 if t < 0.6 else 40.0, -30.0)), t))
    assert set(targets[1:18]) == {1}  # through the pause
    assert set(targets[18:]) == {None}


def test_sector_prefers_its_most_central_talker_over_one_at_its_edge():
    """Two talkers in a sector of +-20 deg: the one facing the device (100 deg) and one at its edge (117 deg, the
    tracker pulls a neighbour a few degrees inwards). The edge talker is not the target while the central one has
    spoken within ``nearest_memory_s``, even speaking alone and louder; the central one is, also on a new track id
    a few degrees off; once the central one has been silent about that long, the edge talker is the target."""
    sel = TargetSelector(sector=(100.0, 20.0), nearest_memory_s=10.0)
    seen = []
    for k in range(30 * 26):
        t = k / 30
        if t < 3.0:
            spec = ((1, 100.0, -30.0),)  # the central talker
        elif 3.5 <= t < 6.0 or t >= 16.0:
            spec = ((2, 117.0, -20.0),)  # the edge talker, louder
        elif 7.0 <= t < 9.0:
            spec = ((3, 104.0, -30.0),)  # the central talker again, on a new track id
        else:
            spec = ()
        sel.observe({tid: None for tid, _, _ in spec}, t)
        seen.append((t, sel.update(rows(t, *spec), t)))
    assert {track for t, track in seen if 1.0 < t < 3.0} == {1}
    # the central talker's last half second of speech (what places a talker) ended at 9 s
    assert 2 not in {track for t, track in seen if t < 18.4}
    assert {track for t, track in seen if 7.1 < t < 9.0} == {3}
    assert {track for t, track in seen if t > 19.5} == {2}


def test_sector_tells_two_talkers_on_one_track_apart_by_where_they_speak():
    """The tracker carries the person facing the device (100 deg) and a neighbour at the sector's edge (117 deg)
    on one track, in turns: the track is the target while the central person speaks on it, not while the
    neighbour does."""
    sel = TargetSelector(sector=(100.0, 20.0))
    seen = []
    for k in range(30 * 10):
        t = k / 30
        az = 100.0 if t < 3.0 or 7.0 <= t < 9.0 else 117.0 if 3.5 <= t < 6.0 else None
        spec = ((1, az, -30.0 if az == 100.0 else -20.0),) if az is not None else ()
        sel.observe({tid: None for tid, _, _ in spec}, t)
        seen.append((t, sel.update(rows(t, *spec), t)))
    assert {track for t, track in seen if 1.0 < t < 3.0} == {1}
    assert {track for t, track in seen if 3.6 < t < 6.0} == {None}
    assert {track for t, track in seen if 7.1 < t < 9.0} == {1}


def test_enrolled_target_is_dropped_when_its_track_carries_another_voice():
    """The target's track is handed to someone else (the diarizer labels the new voice there): the target goes at
    once, not after keep_s as in a pause; when the enrolled person speaks on it again, it is the target again."""
    sel = TargetSelector(enrolled="alice", keep_s=2.0)
    for k in range(30):
        sel.observe({1: "alice"}, k / 30)
        sel.update(rows(k / 30, (1, 10.0, -30.0)), k / 30)
    assert sel.target == "alice"
    sel.observe({}, 1.0)
    sel.update(rows(1.0, (1, 10.0, -30.0)), 1.0)
    assert sel.target == "alice"  # a pause: kept
    sel.observe({1: "bob"}, 1.1)
    sel.update(rows(1.1, (1, 12.0, -30.0)), 1.1)
    assert sel.target is None and sel.pop_events()[-1].detail["previous"] == "alice"
    sel.observe({1: "alice"}, 1.5)
    sel.update(rows(1.5, (1, 10.0, -30.0)), 1.5)
    assert sel.target == "alice"


@pytest.mark.parametrize("rule", [True, False])
def test_enrolled_target_goes_when_its_track_is_handed_on_within_one_run(monkeypatch, rule):
    """The enrolled person speaks from 141 deg and stops; with no pause in the track's voice activity the tracker
    hands the track to a talker 20 deg beside them, and the diarizer's segment, labelled from its start, goes on
    with their name: the track is not the target once it speaks more than 10 deg from where the run began (the
    mean of its first second), and is again in the person's next run. Without the rule (``_moved_in_run`` off) the
    other talker stays the target."""
    if not rule:
        monkeypatch.setattr(TargetSelector, "_moved_in_run", lambda self, track, row: False)
    sel = TargetSelector(enrolled="alice")
    targets = []
    for k in range(150):  # 5 s at 30 updates/s, one run of speech
        t = k / 30
        az = 141.0 if t < 2.0 else 121.0
        sel.observe({1: "alice"}, t)
        targets.append((t, sel.update(rows(t, (1, az, -30.0)), t)))
    sel.observe({}, 5.0)
    sel.update(rows(5.0, (1, 121.0, -30.0)), 5.0)
    for k in range(30):  # the person's next run, from their place
        t = 5.5 + k / 30
        sel.observe({1: "alice"}, t)
        targets.append((t, sel.update(rows(t, (1, 141.0, -30.0)), t)))
    assert all(track == 1 for t, track in targets if t < 2.0)
    assert all((track is None) == rule for t, track in targets if 2.5 <= t < 5.0)
    assert all(track == 1 for t, track in targets if t >= 5.5)


def test_trigger_locks_on_first_speaker_until_timeout():
    sel = TargetSelector(nearest=True, lock_timeout_s=1.0, startup_s=0.0)
    sel.trigger(0.0)
    sel.observe({1: "quiet"})
    sel.update(rows(0.1, (1, 0.0, -40.0)), 0.1)
    assert sel.target == "quiet"
    for k in range(30):  # the locked person goes on alone past trigger_settle_s (1 s)
        sel.observe({1: "quiet"})
        sel.update(rows(0.15 + k / 30, (1, 0.0, -40.0)), 0.15 + k / 30)
    sel.observe({1: "quiet", 2: "loud"})
    for k in range(30):  # a louder person joins: the lock holds
        sel.update(rows(1.2 + k / 30, (1, 0.0, -40.0), (2, 90.0, -10.0)), 1.2 + k / 30)
    assert sel.target == "quiet"
    sel.observe({2: "loud"})
    sel.update(rows(2.25, (2, 90.0, -10.0)), 2.25)  # the locked person pauses: still the target
    assert sel.target == "quiet"
    sel.observe({2: "loud"})
    for k in range(60):  # the locked person stops: after the timeout the loud one takes over
        sel.update(rows(2.3 + k / 30, (2, 90.0, -10.0)), 2.3 + k / 30)
    assert sel.target == "loud"
    ev = sel.pop_events()
    assert [e.speaker for e in ev] == ["quiet", "loud"] and all(e.type == "target_changed" for e in ev)


@pytest.mark.parametrize("wake_word", [False, True])
def test_trigger_lock_settles_on_a_louder_voice_that_answers_the_cue(wake_word):
    """After a cue, a quiet track (a wall reflection) answers first and a louder one (the addressee) 0.3 s later:
    the lock moves to the louder one within trigger_settle_s, not after it, and never to a track that was talking
    before the cue. After a wake word (its speaker is the one who started with it) the first lock stays."""
    def run(loud_from):
        sel = TargetSelector(trigger_settle_s=1.0)
        for k in range(30):  # a TV talks before the cue (and after it, louder than everyone)
            sel.observe({9: "tv"}, k / 30)
            sel.update(rows(k / 30, (9, 270.0, 0.0)), k / 30)
        if wake_word:
            sel.trigger(1.0, spoken_from_s=1.0)
        else:
            sel.trigger(1.0)
        for k in range(30, 120):
            t = k / 30
            speaking = {9: "tv", 1: None, **({2: None} if t >= loud_from else {})}
            sel.observe(speaking, t)
            track = sel.update(rows(t, (9, 270.0, 0.0), (1, 0.0, -40.0),
                                    *(((2, 90.0, -20.0),) if t >= loud_from else ())), t)
        return sel.locked, track

    assert run(1.3) == (True, 1 if wake_word else 2)
    assert run(2.3) == (True, 1)  # the louder voice came after the settling second: the lock holds


def test_trigger_settles_for_half_a_second_by_default():
    """By default a louder voice that answers the cue takes the lock only within 0.5 s of the first answer: a
    reflection's track born 0.3 s before the addressee's hands the lock over, a second talker who answers 0.8 s
    after the first does not (with the old 1 s it took the lock)."""
    def run(loud_from, **kw):
        sel = TargetSelector(require_trigger=True, **kw)
        sel.trigger(1.0)
        track = None
        for k in range(30, 120):
            t = k / 30
            speaking = {1: None, **({2: None} if t >= loud_from else {})}
            sel.observe(speaking, t)
            track = sel.update(rows(t, (1, 0.0, -40.0), *(((2, 90.0, -20.0),) if t >= loud_from else ())), t) or track
        return track

    assert run(1.3) == 2
    assert run(1.8) == 1
    assert run(1.8, trigger_settle_s=1.0) == 2


def test_trigger_lock_does_not_settle_on_a_track_heard_all_along():
    """The tracker reports a TV all along, but the diarizer has not heard it speak for 2 s before the cue (its
    beam was gated); the addressee answers the cue, quietly, and the TV's speech resumes, louder, 0.3 s later:
    the lock stays with the addressee."""
    sel = TargetSelector(trigger_settle_s=1.0, require_trigger=True)
    track = None
    for k in range(270):
        t = k / 30
        if k == 240:  # 8.0 s
            sel.trigger(8.0)
        person, tv_speaks = t >= 8.2, t < 6.0 or t >= 8.5
        sel.observe({**({1: None} if person else {}), **({9: "tv"} if tv_speaks else {})}, t)
        track = sel.update(rows(t, (9, 270.0, 0.0), *(((1, 0.0, -40.0),) if person else ())), t) or track
    assert sel.locked and track == 1


def test_trigger_skips_a_track_that_was_already_talking():
    """A TV talks before and after the wake word; the person who starts after it is locked on, though quieter."""
    sel = TargetSelector(nearest=True)
    for k in range(30):
        sel.observe({1: "spk1"}, k / 30)
        sel.update(rows(k / 30, (1, 90.0, -10.0)), k / 30)
    sel.trigger(1.0)
    for k in range(30, 90):
        t = k / 30
        person = t >= 1.5
        sel.observe({1: "spk1", **({2: "spk1"} if person else {})}, t)
        track = sel.update(rows(t, (1, 90.0, -10.0), *(((2, 200.0, -30.0),) if person else ())), t)
    assert sel.locked and track == 2


def test_exclusive_policies_leave_no_target_while_the_chosen_person_is_silent():
    """Enrolled "alice" talks, then only "bob" talks: by default (exclusive) bob never becomes the target; with
    exclusive=False the policies only rank and bob takes over."""
    def run(**kw):
        sel, seen = TargetSelector(enrolled="alice", keep_s=1.0, startup_s=0.0, **kw), []
        for k in range(120):
            t = k / 30
            alice = t < 1.0
            sel.observe({1: "alice"} if alice else {2: "bob"}, t)
            sel.update(rows(t, (1, 0.0, -30.0), (2, 90.0, -10.0)), t)
            seen.append(sel.target)
        return seen
    seen = run()
    assert seen[10] == "alice" and "bob" not in seen and seen[-1] is None
    assert run(exclusive=False)[-1] == "bob"


def test_nearest_alone_ignores_a_farther_bystander_and_follows_the_near_talker_to_a_new_track():
    """The near talker (louder) speaks, then a farther one speaks alone: no target rather than the bystander;
    then the near talker comes back on a new track id from about the same direction: the target again."""
    def run(**kw):
        sel, seen = TargetSelector(keep_s=0.5, startup_s=0.0, **kw), []
        for k in range(180):
            t = k / 30
            spk = {1: "near"} if t < 2 else ({2: "far"} if t < 4 else {3: "near"})
            sel.observe(spk, t)
            rs = {1: (1, 30.0, -20.0), 2: (2, 200.0, -32.0), 3: (3, 36.0, -21.0)}
            seen.append(sel.update(rows(t, *(rs[tid] for tid in spk)), t))
        return seen
    seen = run()
    assert seen[30] == 1 and 2 not in seen and seen[100] is None and seen[-1] == 3
    assert 2 in run(exclusive=False)


def test_nearest_weighs_the_direct_to_reverberant_ratio_against_level():
    """A near talker with a quiet voice (-24 dB, coherent-to-diffuse ratio -2 dB) and a farther, louder one (-21 dB,
    -10 dB) take turns. With the ratio weighed in, the near one is the nearest and the louder one a bystander; by
    level alone (weight 0) it is the other way round."""
    def run(weight):
        sel, seen = TargetSelector(keep_s=0.5, startup_s=0.0, nearest_cdr_weight=weight), {}
        for k in range(240):
            t = k / 30
            near_talks = (t % 4) < 2
            tid, az, p, cdr = (1, 30.0, -24.0, -2.0) if near_talks else (2, 200.0, -21.0, -10.0)
            sel.observe({tid: None}, t)
            seen.setdefault(tid, []).append(sel.update([TrackRow(t, tid, az, 0.0, p, True, cdr)], t))
        return {tid: v[-1] for tid, v in seen.items()}
    assert run(1.0) == {1: 1, 2: None}
    assert run(0.0) == {1: None, 2: 2}
    with pytest.raises(ValueError, match="nearest_cdr_weight"):
        TargetSelector(nearest_cdr_weight=-1.0)


def test_a_track_keeps_its_label_while_its_new_segment_is_labelled():
    """alice's track pauses and starts again: the new segment is unlabelled for its first 0.8 s, but the track
    last carried alice, so she is the target from her first words."""
    sel = TargetSelector(enrolled="alice", keep_s=0.5)
    sel.observe({1: "alice"}, 0.0)
    sel.update(rows(0.0, (1, 0.0, -30.0)), 0.0)
    for k in range(30):  # 1 s pause: the target is dropped after keep_s
        sel.observe({}, 0.1 + k / 30)
        sel.update(rows(0.1 + k / 30, (1, 0.0, -30.0)), 0.1 + k / 30)
    assert sel.target is None
    sel.observe({1: None}, 1.2)
    assert sel.update(rows(1.2, (1, 0.0, -30.0)), 1.2) == 1
    # a longer pause, in which the tracker stops reporting the silent track (dormant) and another track talks;
    # the tracker then revives track 1 with its id: it still carries alice
    for k in range(120):
        sel.observe({2: "spk1"} if k < 60 else {}, 1.3 + k / 30)
        sel.update(rows(1.3 + k / 30, (2, 90.0, -30.0)), 1.3 + k / 30)
    assert sel.target is None
    sel.observe({1: None}, 5.4)
    assert sel.update(rows(5.4, (1, 0.0, -30.0)), 5.4) == 1
    # a track neither reported nor heard for longer than any revival is forgotten
    for k in range(400):
        sel.observe({}, 5.5 + k / 30)
        sel.update(rows(5.5 + k / 30, (2, 90.0, -30.0)), 5.5 + k / 30)
    assert 1 not in sel._track_label and 1 not in sel._track_dir


def test_a_track_that_moved_to_another_place_does_not_carry_its_old_label():
    """alice's track pauses and comes back 35 deg away (the tracker handed it to someone else): its new segment
    is not hers until it is labelled; back where she spoke, it is."""
    sel = TargetSelector(enrolled="alice", keep_s=0.5)
    sel.observe({1: "alice"}, 0.0)
    sel.update(rows(0.0, (1, 0.0, -30.0)), 0.0)
    for k in range(30):
        sel.observe({}, 0.1 + k / 30)
        sel.update(rows(0.1 + k / 30, (1, 0.0, -30.0)), 0.1 + k / 30)
    sel.observe({1: None}, 1.2)
    assert sel.update(rows(1.2, (1, 35.0, -30.0)), 1.2) is None
    sel.observe({1: "spk2"}, 2.0)
    assert sel.update(rows(2.0, (1, 35.0, -30.0)), 2.0) is None
    for k in range(30):
        sel.observe({}, 2.1 + k / 30)
        sel.update(rows(2.1 + k / 30, (1, 35.0, -30.0)), 2.1 + k / 30)
    sel.observe({1: "alice"}, 3.2)
    assert sel.update(rows(3.2, (1, 2.0, -30.0)), 3.2) == 1


def test_require_trigger_has_no_target_outside_a_lock():
    """The target ends with the lock (its track silent for lock_timeout_s), not keep_s later: the tracker may give
    the track to someone else (here it speaks again 0.5 s after the timeout, 30 deg away, unlabelled yet)."""
    sel = TargetSelector(require_trigger=True, lock_timeout_s=1.0)
    targets = []
    for k in range(240):
        t = k / 30
        if k == 60:
            sel.trigger(t)
        person = 2.5 <= t < 3.5
        other = 5.0 <= t < 5.5
        sel.observe({1: "spk1", **({2: "spk2"} if person else {2: None} if other else {})}, t)
        az = 230.0 if other else 200.0
        targets.append(sel.update(rows(t, (1, 90.0, -10.0), *(((2, az, -30.0),) if person or other else ())), t))
    assert set(targets[:75]) == {None}  # the TV-like track 1 talks all along: never the target
    assert set(targets[78:134]) == {2}  # locked on whoever started after the cue, through their silence
    assert set(targets[136:]) == {None}  # the lock timed out at 4.5 s (1 s silent): nobody from then on
    ends = [e.time_s for e in sel.pop_events() if e.type == "target_changed" and e.track_id is None]
    assert ends and ends[-1] < 4.55


def test_trigger_skips_a_tv_that_paused_just_before_the_cue():
    """The localizer loses a TV for a moment right at the cue and it "starts" again before the person does: it was
    heard within trigger_quiet_s before the cue, so the lock goes to the person."""
    def run(quiet_s):
        sel = TargetSelector(trigger_quiet_s=quiet_s)
        for k in range(120):
            t = k / 30
            tv = not (0.8 <= t < 1.1)  # the TV's track is silent from 0.8 s to 1.1 s
            person = t >= 1.5
            sel.observe({**({1: "spk1"} if tv else {}), **({2: "spk2"} if person else {})}, t)
            if k == 30:
                sel.trigger(t)
            track = sel.update(rows(t, (1, 90.0, -10.0), *(((2, 200.0, -30.0),) if person else ())), t)
        return track
    assert run(1.5) == 2
    assert run(0.0) == 1  # without the rule the TV's restart wins


def test_trigger_skips_a_tv_the_localizer_detected_before_the_cue(monkeypatch):
    """A TV's voice activity pauses from 0.2 s and only resumes 0.3 s after the cue at 2.0 s (the VAD's onsets lag),
    while the localizer detects the TV's track all along: it was making sound, so the lock goes to the person who
    answers at 2.5 s. Without the detection rule, or when the tracker only coasted the TV's track through that time
    (rows without a detection), the TV's resumed speech takes the lock."""
    def run(detected=True):
        def scene(t):
            person, tv_heard = t >= 2.5, not 0.2 <= t < 2.3
            tv = TrackRow(t, 1, 270.0, 0.0, -20.0, detected or tv_heard)
            return ({**({1: None} if tv_heard else {}), **({2: None} if person else {})},
                    [tv, *rows(t, *(((2, 90.0, -30.0),) if person else ()))])
        return run_cue(TargetSelector(require_trigger=True, trigger_settle_s=0.0), 120, 60, scene)
    assert run() == 2
    assert run(detected=False) == 1
    monkeypatch.setattr("farfield.target._SOUNDING_HITS", 10**6)
    assert run() == 1


def test_trigger_skips_a_tv_that_resumed_just_before_the_cue(monkeypatch):
    """A TV falls silent at 0.2 s (its track dies) and resumes 0.35 s before the cue at 2.0 s: the localizer
    detects it twice (its new track's first updates), then not again until the cue (the block that holds the cue
    is not in yet), and its voice activity starts only at 2.3 s. Two detections before the cue show it was
    sounding already, so the person who answers at 2.5 s gets the lock; at three the TV would take it."""
    def run():
        def scene(t):
            person = t >= 2.5
            tv = ([TrackRow(t, 3, 270.0, 0.0, -20.0, t < 1.72)] if t >= 1.65 else
                  [TrackRow(t, 1, 270.0, 0.0, -20.0)] if t < 0.2 else [])
            return ({**({tv[0].track_id: None} if tv and (t < 0.2 or t >= 2.3) else {}),
                     **({2: None} if person else {})},
                    [*tv, *rows(t, *(((2, 90.0, -30.0),) if person else ()))])
        return run_cue(TargetSelector(require_trigger=True, trigger_settle_s=0.0), 120, 60, scene)
    assert run() == 2
    monkeypatch.setattr("farfield.target._SOUNDING_HITS", 3)
    assert run() == 3


def test_trigger_skips_a_new_track_where_a_talking_one_was(monkeypatch):
    """A source at 280 deg talks before the cue; the tracker then re-identifies it (its track ends, a new one is
    born 2 deg away and speaks first after the cue). The person who answers at 90 deg gets the lock; with the
    direction rule off (a new track is never busy) the reborn track would take it."""
    def run():
        def scene(t):
            ghost = (1, 280.0, -20.0) if t < 1.0 else (3, 282.0, -20.0)
            person = t >= 1.5
            return ({ghost[0]: None, **({2: None} if person else {})},
                    rows(t, ghost, *(((2, 90.0, -30.0),) if person else ())))
        return run_cue(TargetSelector(require_trigger=True, trigger_settle_s=0.0), 90, 30, scene)
    assert run() == 2
    monkeypatch.setattr("farfield.target._BUSY_DEG", -1.0)
    assert run() == 3


def test_trigger_does_not_lock_on_the_echo_of_a_voice_that_was_talking(monkeypatch):
    """A person at 90 deg talks until just before the cue at 1.0 s and again from 1.2 s; at 1.3 s a new track at 200
    deg starts, 3 dB under them (a wall reflection of their voice): it does not take the lock, nor does one 2 dB over
    them. A voice 12 dB under them (someone else), or 4 dB over them, does; so does one 3 dB under a voice that talks
    on through the cue (a TV not known as one yet), and with the rule off the echo would."""
    def run(echo_db, pause=True):
        def scene(t):
            new, first = t >= 1.3, not (pause and 0.9 <= t < 1.2)
            return ({**({1: None} if first else {}), **({2: None} if new else {})},
                    rows(t, (1, 90.0, -20.0), *(((2, 200.0, -20.0 + echo_db),) if new else ())))
        return run_cue(TargetSelector(require_trigger=True), 90, 30, scene)
    assert run(-3.0) is None and run(2.0) is None
    assert run(-12.0) == 2 and run(4.0) == 2 and run(-3.0, pause=False) == 2
    monkeypatch.setattr("farfield.target._ECHO_DB", (0.0, 0.0))
    assert run(-3.0) == 2


def test_wake_word_locks_on_whoever_said_it():
    """A TV talks all along; a person says the wake word from 0.8 s to 1.6 s (their track is seen speaking from
    1.0 s, the detector fires at 1.7 s). Given the wake word's start, the lock goes to them; as a plain cue at
    1.7 s it cannot (they were talking already)."""
    def run(**cue):
        sel = TargetSelector(require_trigger=True)
        track = None
        for k in range(90):
            t = k / 30
            person = 1.0 <= t < 2.5
            if k == 51:  # 1.7 s
                sel.trigger(1.7, **cue)
            sel.observe({1: "spk1", **({2: "spk2"} if person else {})}, t)
            track = sel.update(rows(t, (1, 90.0, -10.0), *(((2, 200.0, -30.0),) if person else ())), t) or track
        return track
    assert run(spoken_from_s=0.8) == 2
    assert run() is None
    with pytest.raises(ValueError, match="spoken_from_s"):
        TargetSelector().trigger(1.0, spoken_from_s=1.5)


def test_wake_word_locks_on_the_loudest_voice_that_started_with_it():
    """A person says the wake word from 0.8 s to 1.6 s: a wall reflection's track (150 deg, 6 dB under them) is
    seen speaking from 0.9 s, their own track (90 deg) from 1.0 s; the detector fires at 1.7 s. The lock goes to the
    louder, though the reflection's onset was stamped first."""
    def scene(t):
        echo, person = 0.9 <= t < 2.5, 1.0 <= t < 2.5
        return ({**({5: None} if echo else {}), **({2: None} if person else {})},
                rows(t, *(((5, 150.0, -30.0),) if echo else ()), *(((2, 90.0, -24.0),) if person else ())))
    sel = TargetSelector(require_trigger=True)
    assert run_cue(sel, 90, 51, scene, spoken_from_s=0.8) == 2 and sel.locked  # the call at 1.7 s


def test_wake_word_locks_on_its_speaker_after_a_pause_before_the_call():
    """A person says the wake word from 1.0 s (their track is seen speaking 1.2-1.5 s, then the VAD pauses); the
    detector fires at 1.6 s; at 1.8 s another voice starts (a TV presenter after a pause, not heard for 2 s). The
    lock goes to the one who said the wake word, not to the first voice heard after the call."""
    def scene(t):
        person, tv = 1.2 <= t < 1.5 or t >= 2.5, t >= 1.8
        return ({**({1: None} if person else {}), **({2: None} if tv else {})},
                rows(t, *(((1, 0.0, -30.0),) if person else ()), *(((2, 90.0, -20.0),) if tv else ())))
    sel = TargetSelector(require_trigger=True)
    assert run_cue(sel, 120, 48, scene, spoken_from_s=1.0) == 1 and sel.locked  # the call at 1.6 s


def test_wake_word_is_not_locked_on_a_voice_that_starts_after_it():
    """The person who says the wake word (0.5-1.1 s) was talking shortly before it, so their track is held back (it
    may be a TV); another talker answers them at 1.5 s. That talker did not say the wake word: no lock, where a cue's
    window (trigger_window_s) would have taken them. A voice detected within wake_word_lag_s of the wake word's end
    still takes the lock (the VAD stamps onsets late)."""
    def run(answer_from, **options):
        sel = TargetSelector(require_trigger=True, **options)
        track = None
        for k in range(120):
            t = k / 30
            if k == 33:  # 1.1 s
                sel.trigger(1.1, spoken_from_s=0.5)
            person, other = t < 0.3 or 0.5 <= t < 2.0, t >= answer_from
            sel.observe({**({1: None} if person else {}), **({2: None} if other else {})}, t)
            track = sel.update(rows(t, *(((1, 0.0, -30.0),) if person else ()),
                                    *(((2, 120.0, -25.0),) if other else ())), t) or track
        return track
    assert run(1.5) is None
    assert run(1.5, wake_word_lag_s=1.5) == 2  # the cue's window: the wrong voice
    assert run(1.2) == 2  # detected 0.1 s after the end: may have said it
    with pytest.raises(ValueError, match="wake_word_lag_s"):
        TargetSelector(wake_word_lag_s=-0.1)


def test_trigger_ignores_a_voice_detected_after_the_window():
    """Nobody answers the cue within trigger_window_s; a voice that starts 2 s later takes no lock."""
    def run(window_s):
        sel = TargetSelector(require_trigger=True, trigger_window_s=window_s)
        sel.trigger(0.0)
        track = None
        for k in range(120):
            t = k / 30
            voice = t >= 2.0
            sel.observe({2: "spk2"} if voice else {}, t)
            track = sel.update(rows(t, *(((2, 200.0, -30.0),) if voice else ())), t) or track
        return track
    assert run(1.5) is None
    assert run(4.0) == 2


def answer_cue(sel, first, later, later_from_s=1.3):
    """Feed ``sel`` updates at 30 per second from 1 s to 4 s: ``first`` (track_id, azimuth, power_db) speaks from
    the start, ``later`` from ``later_from_s``; returns the last target track that was not ``None``."""
    track = None
    for k in range(30, 120):
        t = k / 30
        now = [first] + ([later] if t >= later_from_s else [])
        sel.observe({r[0]: None for r in now}, t)
        track = sel.update(rows(t, *now), t) or track
    return track


@pytest.mark.parametrize("wake_word", [False, True])
def test_a_cue_with_a_direction_locks_only_on_a_talker_there(wake_word):
    """After a cue, a bystander at 200 deg starts first and louder, the addressee at 30 deg 0.3 s later: a cue that
    says where it saw the person (30 deg, a camera) locks on the addressee, and settling never moves the lock to the
    bystander; without the direction the first voice takes it (the wake word's speaker: whoever began with it)."""
    def run(direction):
        sel = TargetSelector(require_trigger=True)
        if wake_word:  # said from 1.0 to 1.3 s (both voices start while it is said)
            sel.trigger(1.3, spoken_from_s=1.0, direction_deg=direction)
        else:
            sel.trigger(1.0, direction_deg=direction)
        return answer_cue(sel, (2, 200.0, -10.0), (1, 30.0, -30.0))

    assert run(None) == 2
    assert run(30.0) == 1
    assert run(-335.0) == 1  # the same direction, another turn of the circle
    assert run(110.0) is None  # nobody speaks where the cue saw the person: no lock, no target


def test_a_cue_with_a_direction_settles_only_nearer_to_it():
    """The addressee (30 deg) answers a cue first, quietly; a louder talker 15 deg beside them (inside the cue's
    20 deg) 0.3 s later: without a direction the lock settles on the louder voice, with the addressee's direction it
    stays; a louder voice nearer the direction than the first lock (a reflection's track born first) takes it."""
    def run(direction, first_az=30.0, loud_az=45.0):
        sel = TargetSelector(require_trigger=True, trigger_settle_s=1.0)
        sel.trigger(1.0, direction_deg=direction)
        return answer_cue(sel, (1, first_az, -40.0), (2, loud_az, -20.0))

    assert run(None) == 2
    assert run(30.0) == 1
    assert run(30.0, first_az=45.0, loud_az=30.0) == 2


def test_a_directed_lock_is_not_the_target_while_its_track_speaks_elsewhere():
    """The tracker hands the locked track to a talker 18 deg beside the addressee (30 deg): while it speaks from
    there it is not the target (at once, not after keep_s); back where the cue saw the person, it is again."""
    sel = TargetSelector(require_trigger=True)
    sel.trigger(1.0, direction_deg=30.0)
    targets = []
    for k in range(30, 150):
        t = k / 30
        az = 48.0 if 2.5 <= t < 3.5 else 31.0
        sel.observe({1: None}, t)
        targets.append((t, sel.update(rows(t, (1, az, -30.0)), t)))
    assert all(track == 1 for t, track in targets if 1.1 <= t < 2.5)
    assert all(track is None for t, track in targets if 2.5 <= t < 3.5)
    assert all(track == 1 for t, track in targets if t >= 3.5)
    assert sel.locked


@pytest.mark.parametrize("wake_word", [False, True])
def test_a_lock_is_not_the_target_while_its_track_speaks_away_from_where_the_person_took_it(wake_word):
    """A cue without a direction: the addressee takes the lock speaking from 30 deg; the tracker then hands the
    locked track to a talker 18 deg beside them, who speaks in a run of their own: not the target while it speaks
    from there (at once, not after keep_s), and the lock stays; back where the addressee took it, it is again."""
    sel, targets = _locked_track_handed_over(wake_word, pauses=True)  # three runs of speech on the track
    first = 1.4 if wake_word else 1.1
    assert all(track == 1 for t, track in targets if first <= t < 2.5)
    assert all(track is None for t, track in targets if 2.5 <= t < 3.5)
    assert all(track == 1 for t, track in targets if t >= 3.7)
    assert sel.locked


def _locked_track_handed_over(wake_word: bool, pauses: bool) -> tuple:
    """A lock taken by a track speaking from 31 deg after a cue at 1.0 s (or a wake word said from 1.0 to 1.33 s),
    the track at 48 deg from 2.5 to 3.5 s and back at 31 after; with ``pauses``, its voice activity pauses at 2.3-2.5
    and 3.5-3.7 s, else it runs on. Returns the selector and ``[(time_s, target track), ...]``."""
    sel = TargetSelector(require_trigger=True)
    if not wake_word:
        sel.trigger(1.0)
    targets = []
    for k in range(30, 150):
        t = k / 30
        if wake_word and k == 40:
            sel.trigger(t, spoken_from_s=1.0)
        az = 48.0 if 2.5 <= t < 3.5 else 31.0
        speaking = not pauses or not (2.3 <= t < 2.5 or 3.5 <= t < 3.7)
        sel.observe({1: None} if speaking else {}, t)
        targets.append((t, sel.update(rows(t, (1, az, -30.0)), t)))
    return sel, targets


@pytest.mark.parametrize("wake_word", [False, True])
def test_a_lock_is_not_the_target_when_its_track_is_handed_on_within_its_first_run(wake_word):
    """The addressee takes the lock speaking from 30 deg; with no pause in the track's voice activity the tracker
    hands the track to a TV 18 deg beside them (a person stops, the TV plays on): where the person is was learnt from
    the start of that run, so the track is not the target while it speaks from the TV's place, and is again when the
    person speaks from theirs."""
    sel, targets = _locked_track_handed_over(wake_word, pauses=False)  # one run of speech throughout
    first = 1.4 if wake_word else 1.1
    assert all(track == 1 for t, track in targets if first <= t < 2.5)
    assert all(track is None for t, track in targets if 2.9 <= t < 3.5)
    assert all(track == 1 for t, track in targets if t >= 3.9)
    assert sel.locked


def test_trigger_direction_must_be_a_finite_azimuth():
    sel = TargetSelector(require_trigger=True)
    sel.trigger(0.0, direction_deg=30.0)
    for bad in (float("nan"), float("inf"), "ahead"):
        with pytest.raises(ValueError, match="direction_deg must be a finite azimuth"):
            sel.trigger(1.0, direction_deg=bad)
    with pytest.raises(ValueError, match="cue_width_deg must be a finite number"):
        TargetSelector(cue_width_deg=-5.0)


def test_frontend_gives_a_linear_arrays_cue_the_direction_its_tracks_have():
    """The PS Eye's tracks lie in front of it (its grid is the half circle): a person a camera sees behind it is
    heard at the mirror image, so that is where the cue's lock looks."""
    arr = load_array("ps-eye")
    fe = Frontend(arr, 16000, diarizer=OnlineDiarizer(16000, embeddings=False, vad="energy"))
    fe.trigger(1.0, direction_deg=arr.front_deg + 160.0)
    assert azimuth_difference_deg(fe.target._cue_dir, arr.front_deg + 20.0) < 1e-9
    # a person seen 80 deg from the front and 40 deg up is 41.0 deg from the axis: heard 49.0 deg from the front
    fe.trigger(2.0, direction_deg=arr.front_deg + 80.0, elevation_deg=40.0)
    assert azimuth_difference_deg(fe.target._cue_dir, arr.front_deg + 49.0) < 0.1
    with pytest.raises(ValueError, match="direction_deg must be a finite azimuth"):
        fe.trigger(1.0, direction_deg="behind")
    with pytest.raises(ValueError, match="elevation must be a finite number of degrees in"):
        fe.trigger(1.0, direction_deg=10.0, elevation_deg=95.0)


def test_cue_validation_and_cli_parsing():
    from farfield import Cue
    from farfield.cli import _parse_cue

    assert _parse_cue("2.5") == Cue(2.5)
    assert _parse_cue("2.5@90") == Cue(2.5, direction_deg=90.0)
    assert _parse_cue("1-1.6@-30") == Cue(1.6, 1.0, -30.0)
    assert _parse_cue("2.5@") == Cue(2.5)  # an empty direction: none given
    assert _parse_cue("1-1.6@-30/25") == Cue(1.6, 1.0, -30.0, 25.0)
    for bad in ("x", "1-2-3", "2.5@left", "2.5@90/up", "2.5@90/10/5"):
        with pytest.raises(ValueError, match="--trigger expects"):
            _parse_cue(bad)
    with pytest.raises(ValueError, match="must come at or before its end"):
        _parse_cue("3-2")
    with pytest.raises(ValueError, match="direction_deg must be a finite number or None"):
        Cue(1.0, direction_deg=float("nan"))
    with pytest.raises(ValueError, match="elevation_deg must be a finite number or None"):
        Cue(1.0, direction_deg=10.0, elevation_deg=float("inf"))
    with pytest.raises(ValueError, match="time_s must be a finite number"):
        Cue(float("inf"))


def test_unlabelled_track_can_be_the_target_and_its_label_is_announced():
    sel = TargetSelector(startup_s=0.0)
    sel.observe({3: None})
    assert sel.update(rows(0.0, (3, 45.0, -20.0)), 0.0) == 3 and sel.target is None
    sel.observe({3: "spk2"})
    assert sel.update(rows(0.5, (3, 45.0, -20.0)), 0.5) == 3 and sel.target == "spk2"
    ev = sel.pop_events()
    assert [(e.speaker, e.track_id) for e in ev] == [(None, 3), ("spk2", 3)]
    assert ev[1].detail["previous"] is None and ev[1].detail["previous_track"] == 3


def test_loudest_talker_hysteresis():
    pol = LoudestTalker(switch_margin_db=3.0, hold_s=0.5)
    assert pol.update(rows(0.0, (1, 0.0, -20.0)), 0.0) == 1
    assert pol.update(rows(0.1, (1, 0.0, -20.0), (2, 90.0, -18.0)), 0.1) == 1  # only 2 dB louder
    for k in range(20):
        pol.update(rows(0.2 + k / 30, (1, 0.0, -20.0), (2, 90.0, -10.0)), 0.2 + k / 30)
    assert pol.target == 2


def spatial_scene(rng):
    from tests_helpers import two_talker_mix

    return two_talker_mix(rng, seconds=4.0)


def test_diarization_without_embeddings_labels_tracks_and_orders_events(rng):
    arr, x = spatial_scene(rng)
    res = process(x, 16000, arr, diarizer=OnlineDiarizer(16000, embeddings=False, vad="energy"),
                  target=TargetSelector(startup_s=0.0))  # a 4 s scene: no start-up wait
    assert res.segments and {g.speaker for g in res.segments} <= {f"spk{t}" for t in res.streams}
    times = [e.time_s for e in res.events]
    assert times == sorted(times)
    for spk in {g.speaker for g in res.segments}:
        kinds = [e.type for e in res.events if e.speaker == spk and e.type in ("speech_start", "speech_end")]
        assert kinds[0] == "speech_start"
    assert any(e.type == "target_changed" for e in res.events)
    for g in res.target_segments:
        assert any(s.speaker == g.speaker and s.start_s <= g.start_s and g.end_s <= s.end_s for s in res.segments)
    assert np.any(res.target)


def test_process_trigger_locks_on_the_talker_who_starts_after_the_cue(rng):
    """A nearer source talks throughout (a TV); a second talker starts at 2 s; after a cue at 1.8 s the target
    moves to the second talker and stays there (the lock), though the TV is louder."""
    from farfield.sim import SourceSpec, render_scene, synthetic_speech

    arr = load_array("respeaker-6mic-hat")
    tv = synthetic_speech(5.0, 16000, rng=rng, f0_hz=110)
    person = synthetic_speech(5.0, 16000, rng=rng, f0_hz=210)
    person[:32000] = 0.0
    srcs = [SourceSpec(tv, (4.3, 2.5, 1.4), name="tv"), SourceSpec(person, (2.0, 3.8, 1.4), name="person")]
    sc = render_scene(arr, srcs, 16000, room_dim=(6, 5, 3), rt60_s=0.3, array_position=(3, 2.5, 1.0), snr_db=25,
                      duration_s=5.0, rng=rng)
    person_az = float(np.degrees(np.arctan2(3.8 - 2.5, 2.0 - 3.0)))

    def target_azimuths(**kw):
        res = process(sc.mix, 16000, arr, diarizer=OnlineDiarizer(16000, embeddings=False, vad="energy"), **kw)
        az = {}
        for r in res.tracks:
            az.setdefault(r.track_id, r.azimuth_deg)
        return [az[e.track_id] for e in res.events if e.type == "target_changed" and e.time_s > 1.8
                and e.track_id is not None]

    with_cue = target_azimuths(triggers=[1.8])
    assert with_cue and all(azimuth_difference_deg(a, person_az) < 15 for a in with_cue)
    from farfield import Cue
    seen = target_azimuths(triggers=[Cue(1.8, direction_deg=person_az + 5)])  # a camera saw the person there
    assert seen and all(azimuth_difference_deg(a, person_az) < 15 for a in seen)
    # a cue that saw someone where nobody speaks: no lock, so a wake-word device has no target
    assert target_azimuths(triggers=[Cue(1.8, direction_deg=person_az + 90)],
                           target=TargetSelector(require_trigger=True)) == []
    wake_word = target_azimuths(triggers=[(2.0, 2.6)])  # the person's first 0.6 s are a wake word
    assert wake_word and all(azimuth_difference_deg(a, person_az) < 15 for a in wake_word)
    with pytest.raises(ValueError, match="wake-word span"):
        process(sc.mix, 16000, arr, diarizer=OnlineDiarizer(16000, embeddings=False, vad="energy"),
                triggers=[(2.6, 2.0)])
    with pytest.raises(ValueError, match="within the recording"):
        process(sc.mix, 16000, arr, diarizer=OnlineDiarizer(16000, embeddings=False, vad="energy"), triggers=[9.0])
    with pytest.raises(TypeError, match="takes no trigger"):
        process(sc.mix, 16000, arr, triggers=[1.0])


def test_barge_in_while_device_speaks(rng):
    arr, x = spatial_scene(rng)
    fe = Frontend(arr, 16000, diarizer=OnlineDiarizer(16000, embeddings=False, vad="energy"))
    fe.set_device_speaking(True)
    events = []
    for s in range(0, x.shape[1], 1024):
        events += fe.process(x[:, s: s + 1024]).events
    starts = [e for e in events if e.type == "speech_start"]
    barge = [e for e in events if e.type == "barge_in"]
    assert barge and len(barge) == len(starts)


def test_block_from_a_single_channel_track():
    """The diarizer only needs FrontendBlock-shaped input: a mono stream on one track works (the baseline)."""
    d = OnlineDiarizer(16000, embeddings=False, vad="energy")
    rng = np.random.default_rng(0)
    x = 1e-4 * rng.standard_normal(48000)
    x[16000:32000] += 0.3 * rng.standard_normal(16000)
    segs = []
    for s in range(0, 48000, 1600):
        b = FrontendBlock(rows(s / 16000, (0, 0.0, -20.0)), {0: [(s, x[s: s + 1600])]})
        segs += d.process(b)[0]
    segs += d.flush(3.0)[0]
    assert len(segs) == 1 and abs(segs[0].start_s - 1.0) < 0.05 and abs(segs[0].end_s - 2.0) < 0.05


def test_a_reborn_stream_keeps_its_sample_times():
    """A separator stream that stops and comes back within ``forget_after_s`` starts again with a pre-roll that
    reaches back over audio already fed: the segment times stay those of the input (they drifted late by the
    pre-roll's overlap at every rebirth before)."""
    rng = np.random.default_rng(1)
    x = 1e-4 * rng.standard_normal(64000)
    x[40000:52000] += 0.3 * rng.standard_normal(12000)  # speech 2.5-3.25 s
    d = OnlineDiarizer(16000, embeddings=False, vad="energy")
    segs = []
    for s in range(0, 64000, 1600):
        if 16000 <= s < 22400:
            chunks = []  # the stream stops for 0.4 s ...
        elif s == 22400:
            chunks = [(s - 8000, x[s - 8000: s + 1600])]  # ... and comes back with 0.5 s of pre-roll
        else:
            chunks = [(s, x[s: s + 1600])]
        segs += d.process(FrontendBlock(rows(s / 16000, (0, 0.0, -20.0)), {0: chunks} if chunks else {}))[0]
    segs += d.flush(4.0)[0]
    assert len(segs) == 1 and abs(segs[0].start_s - 2.5) < 0.05 and abs(segs[0].end_s - 3.25) < 0.05


def test_a_track_the_localizer_does_not_detect_hears_only_leakage():
    """Two tracks carry the same speech at the same level (one beam leaks the other's talker); only the track
    the localizer detects gets speech, the coasting one stays silent (and both do with the gate off)."""
    rng = np.random.default_rng(0)
    x = 1e-4 * rng.standard_normal(48000)
    x[16000:32000] += 0.3 * rng.standard_normal(16000)

    def tracks_with_speech(**kw):
        d = OnlineDiarizer(16000, embeddings=False, vad="energy", **kw)
        segs = []
        for s in range(0, 48000, 1600):
            t = s / 16000
            b = FrontendBlock([TrackRow(t, 1, 0.0, 0.0, -20.0), TrackRow(t, 2, 90.0, 0.0, -20.0, detected=False)],
                              {1: [(s, x[s: s + 1600])], 2: [(s, x[s: s + 1600])]})
            segs += d.process(b)[0]
        segs += d.flush(3.0)[0]
        return {g.track_id for g in segs}

    assert tracks_with_speech() == {1}
    assert tracks_with_speech(detection_hold_s=None) == {1, 2}


def test_a_machines_louder_beam_does_not_silence_a_talker_with_dominance_speech_only():
    """Track 1 is a machine whose beam is 6 dB louder than talker 2's all along (steady, so its VAD never hears
    speech): by default the leakage gate takes the talker's stream for leakage; compared only with streams that
    carry speech, the talker's words are found."""
    rng = np.random.default_rng(5)
    machine = 0.6 * rng.standard_normal(48000)
    talker = 1e-4 * rng.standard_normal(48000)
    talker[16000:32000] += 0.3 * rng.standard_normal(16000)

    def talker_segments(**kw) -> list:
        d = OnlineDiarizer(16000, embeddings=False, vad="energy", **kw)
        segs = []
        for s in range(0, 48000, 1600):
            segs += d.process(FrontendBlock(rows(s / 16000, (1, 0.0, -20.0), (2, 90.0, -20.0)),
                                            {1: [(s, machine[s: s + 1600])], 2: [(s, talker[s: s + 1600])]}))[0]
        return [(round(g.start_s, 2), round(g.end_s, 2)) for g in segs + d.flush(3.0)[0] if g.track_id == 2]

    assert talker_segments() == []
    assert talker_segments(dominance_speech_only=True) == [(1.0, 2.0)]


def _bursts(rng, n: int, first: int, last: int) -> np.ndarray:
    """Speech-like bursts (0.2 s on, 0.1 s off) of white noise at -10 dBFS from sample ``first`` to ``last``."""
    on = (np.arange(n) % 4800 < 3200) & (np.arange(n) >= first) & (np.arange(n) < last)
    return 0.3 * rng.standard_normal(n) * on


def _energy_segments(beams: dict, at, n: int) -> list:
    """Segments of an energy-VAD diarizer without embeddings fed ``beams`` ``{track: (samples,)}`` in 0.1 s blocks;
    ``at(sample) -> (rows, streaming)``: the ``(track, azimuth, power_db)`` rows of the block that starts there,
    and the tracks that have a stream in it."""
    d = OnlineDiarizer(16000, embeddings=False, vad="energy")
    segs = []
    for s in range(0, n, 1600):
        spec, streaming = at(s)
        streams = {k: [(s, beams[k][s: s + 1600])] for k in streaming}
        segs += d.process(FrontendBlock(rows(s / 16000, *spec), streams))[0]
    return segs + d.flush(n / 16000)[0]


def test_a_beam_that_holds_another_talkers_leakage_gets_no_segment():
    """Talker 1 speaks in bursts over a quiet room; track 2's beam holds the same bursts 6 dB lower (its
    sidelobe) over its own quiet floor: the leakage gate gives only track 1 speech (the energy VAD of track 2
    keeps its floor through the gated blocks, so its room noise between them is not speech)."""
    rng = np.random.default_rng(7)
    voice = _bursts(rng, 48000, 16000, 40000)
    beams = {1: voice + 1e-3 * rng.standard_normal(48000), 2: 0.5 * voice + 1e-3 * rng.standard_normal(48000)}
    segs = _energy_segments(beams, lambda s: ([(1, 0.0, -20.0), (2, 90.0, -20.0)], (1, 2)), 48000)
    assert {g.track_id for g in segs} == {1}
    assert min(g.start_s for g in segs) == pytest.approx(1.0, abs=0.05)


def test_a_track_born_on_speech_gets_its_energy_vad_floor_from_the_room():
    """Track 2 is born at 1 s on a talker's first word, and the localizer loses it between words (its pauses
    reach the VAD as zeros): its own first frames are speech, so its floor comes from the quietest the other
    streams were (track 1, a beam of the room's noise since 0 s), and its words are found from the first."""
    rng = np.random.default_rng(8)
    n = 48000
    voice = _bursts(rng, n, 16000, 40000)
    beams = {1: 1e-3 * rng.standard_normal(n), 2: voice + 1e-3 * rng.standard_normal(n)}
    segs = _energy_segments(beams, lambda s: ([(1, 0.0, -20.0)] + ([(2, 90.0, -20.0)] if voice[s] != 0 else []),
                                              (1, 2) if s >= 16000 else (1,)), n)
    mine = [g for g in segs if g.track_id == 2]
    assert mine and min(g.start_s for g in mine) == pytest.approx(1.0, abs=0.05)
    assert max(g.end_s for g in mine) == pytest.approx(2.4, abs=0.1)
    assert not [g for g in segs if g.track_id == 1]


def _one_track_segments(power_db=lambda t: -20.0, **kw) -> list:
    """Segments of one track, detected until 1.95 s, whose beam carries speech-like noise from 1.0 to 2.5 s (after
    1.95 s: another talker's leakage); ``power_db(t)``: the track rows' power."""
    rng = np.random.default_rng(2)
    x = 1e-4 * rng.standard_normal(48000)
    x[16000:40000] += 0.3 * rng.standard_normal(24000)
    d = OnlineDiarizer(16000, embeddings=False, vad="energy", **kw)
    segs = []
    for s in range(0, 48000, 1600):
        t = s / 16000
        b = FrontendBlock([TrackRow(t, 1, 0.0, 0.0, power_db(t), detected=t < 1.95)], {1: [(s, x[s: s + 1600])]})
        segs += d.process(b)[0]
    return segs + d.flush(3.0)[0]


def test_a_segment_ends_at_the_last_detection_of_its_track():
    """The localizer stops detecting a talker at 1.9 s while their beam goes on carrying speech (another talker's
    leakage) to 2.5 s: the segment ends at the last detection, not ``detection_hold_s`` later when the gate
    closes; with the gate off the VAD's end stays."""
    (g,) = _one_track_segments()
    assert abs(g.start_s - 1.0) < 0.05 and abs(g.end_s - 1.9) < 1e-3
    (g,) = _one_track_segments(detection_hold_s=None)
    assert abs(g.end_s - 2.5) < 0.05


def test_a_segment_ends_where_its_tracks_detections_start_to_fade():
    """Detected until 1.9 s, but from 1.6 s the track's power falls at 30 dB/s, as the localizer's average fades
    after a talker stops: the segment ends at 1.6 s. A slower fall (10 dB/s: a talker getting quieter) keeps the
    end at the last detection, and so does ``end_fall_db_s=None``."""
    def end(fall_db_s: float, **kw) -> float:
        (g,) = _one_track_segments(lambda t: -20.0 - fall_db_s * max(0.0, t - 1.6), **kw)
        return g.end_s

    assert abs(end(30.0) - 1.6) < 1e-3
    assert abs(end(10.0) - 1.9) < 1e-3
    assert abs(end(30.0, end_fall_db_s=None) - 1.9) < 1e-3
    with pytest.raises(ValueError, match=r"end_fall_db_s must be .* got -1"):
        OnlineDiarizer(16000, embeddings=False, end_fall_db_s=-1)


def _handed_over_segments(azimuth=lambda t: 0.0 if t < 2.0 else 25.0, other: bool = True, **kw) -> list:
    """Track 1's segments: its beam carries speech-like noise without a pause from 0.5 to 4.0 s, and its rows (10
    per second) are at ``azimuth(t)`` deg. Track 2, at 25 deg, speaks from 0.1 to 0.4 s when ``other``."""
    rng = np.random.default_rng(3)
    x = 1e-4 * rng.standard_normal(80000)
    x[8000:64000] += 0.3 * rng.standard_normal(56000)
    y = 1e-4 * rng.standard_normal(80000)
    if other:
        y[1600:6400] += 0.3 * rng.standard_normal(4800)
    d = OnlineDiarizer(16000, embeddings=False, vad="energy", **kw)
    segs = []
    for s in range(0, 80000, 1600):
        t = s / 16000
        segs += d.process(FrontendBlock(rows(t, (1, azimuth(t), -20.0), (2, 25.0, -20.0)),
                                        {1: [(s, x[s: s + 1600])], 2: [(s, y[s: s + 1600])]}))[0]
    return [(round(g.start_s, 3), round(g.end_s, 3), g.speaker) for g in segs + d.flush(5.0)[0] if g.track_id == 1]


def test_a_segment_is_split_where_its_track_is_handed_to_someone_else():
    """The tracker moves a talking track 25 deg at 2.0 s, to where someone else spoke a moment ago, with no pause in
    its voice activity (that person took over): the segment is split there, and the part after it is a segment of
    its own; with the rule off it is one segment. Nor is it split where nobody else was heard (a talker who walks),
    or when its directions wobble by 6 deg either way."""
    assert _handed_over_segments() == [(0.5, 2.0, "spk1"), (2.0, 4.0, "spk1")]
    assert _handed_over_segments(split_moved_deg=None) == [(0.5, 4.0, "spk1")]
    assert _handed_over_segments(other=False) == [(0.5, 4.0, "spk1")]
    assert _handed_over_segments(lambda t: 6.0 * (-1) ** round(10 * t)) == [(0.5, 4.0, "spk1")]
    with pytest.raises(ValueError, match=r"split_moved_deg must be .* got -1"):
        OnlineDiarizer(16000, embeddings=False, split_moved_deg=-1)


def test_the_split_rule_keeps_half_a_second_of_directions_in_a_long_segment():
    """20 s of speech without a pause on one track: the split rule holds the last half second of its directions
    (10 rows a second here), and nothing with the rule off."""
    rng = np.random.default_rng(6)
    x = 1e-4 * rng.standard_normal(336000)
    x[8000:] += 0.3 * rng.standard_normal(328000)
    for split, most in ((10.0, 6), (None, 0)):
        d = OnlineDiarizer(16000, embeddings=False, vad="energy", split_moved_deg=split)
        held = []
        for s in range(0, x.size, 1600):
            d.process(FrontendBlock(rows(s / 16000, (1, 0.0, -20.0)), {1: [(s, x[s: s + 1600])]}))
            held.append(len(d._tracks[1].directions))
        assert d.speaking_tracks() == {1: "spk1"} and max(held[30:]) <= most and min(held[30:]) >= most - 2


def test_vad_split_closes_the_open_segment_and_opens_a_new_one():
    rng = np.random.default_rng(4)
    v = make_vad(16000, "energy")
    with pytest.raises(ValueError, match="no segment is open"):
        v.split(100)
    v.process(1e-4 * rng.standard_normal(8000))
    assert v.process(0.3 * rng.standard_normal(16000)) == []
    assert v.segment_start == 8000
    with pytest.raises(ValueError, match="not after the open segment's start 8000"):
        v.split(8000)
    assert v.split(16000) == [(8000, 16000)]
    assert v.speaking and v.segment_start == 16000
    assert v.split(17000) == []  # the closed part is shorter than min_speech_s
    assert v.process(1e-4 * rng.standard_normal(16000)) == [(17000, 24000)]


def test_silero_vad_finds_speech_between_silences(rng):
    """Silero VAD, block by block, on an espeak utterance between 1 s silences (faint noise): its segments start
    and end within a hangover of the words, none in the silences."""
    pytest.importorskip("torch")
    pytest.importorskip("silero_vad")
    from farfield.sim.render import speech_segments
    from farfield.sim.voices import EspeakBank
    from farfield.vad import SileroVAD

    speech = EspeakBank().voices(1, 16000, rng)[0].say(2.0, rng)
    words = speech_segments(speech, 16000, 1.0, "x")
    x = np.concatenate([np.zeros(16000), speech, np.zeros(16000)]) + 1e-4 * rng.standard_normal(speech.size + 32000)
    vad = SileroVAD(16000)
    found = [seg for k in range(0, x.size, 256) for seg in vad.process(x[k:k + 256])] + vad.flush()
    assert len(found) >= 1
    start, end = found[0][0] / 16000, found[-1][1] / 16000
    assert abs(start - words[0].start_s) < 0.3 and abs(end - (words[-1].start_s + words[-1].duration_s)) < 0.4


def test_silero_vads_keep_their_own_state(rng):
    """Each SileroVAD's model is a copy with its own recurrent state: two run interleaved give, chunk by chunk,
    the probabilities of a freshly loaded model run on each stream alone."""
    pytest.importorskip("torch")
    import torch
    from silero_vad import load_silero_vad

    from farfield.sim.voices import EspeakBank
    from farfield.vad import SileroVAD

    a, b = (v.say(1.0, rng)[:8192].astype(np.float32) for v in EspeakBank().voices(2, 16000, rng))
    vads = SileroVAD(16000), SileroVAD(16000)
    assert vads[0].model is not vads[1].model
    with torch.no_grad():
        mixed = [[float(vad.model(torch.from_numpy(x[k:k + 512].copy()), 16000)) for vad, x in zip(vads, (a, b))]
                 for k in range(0, 8192, 512)]
        alone = []
        for x in (a, b):
            fresh = load_silero_vad()
            alone.append([float(fresh(torch.from_numpy(x[k:k + 512].copy()), 16000)) for k in range(0, 8192, 512)])
    np.testing.assert_allclose(np.array(mixed).T, np.array(alone), atol=1e-6)
    assert np.ptp(alone[0]) > 0.1  # the probabilities move with the speech, so a shared state would show


def test_bad_input():
    d = OnlineDiarizer(16000, embeddings=False)
    with pytest.raises(ValueError, match="embeddings=True"):
        d.enroll("a", np.ones(16000), 16000)
    with pytest.raises(ValueError, match="separation"):
        Frontend("respeaker-4mic-hat", 16000, separation=None, diarizer=d)
    with pytest.raises(ValueError, match="unknown VAD"):
        make_vad(16000, "magic")
    with pytest.raises(ValueError, match="sample_rate"):
        OnlineDiarizer(0, embeddings=False)
    with pytest.raises(ValueError, match=r"OnlineDiarizer: forget_after_s must be .* got -1"):
        OnlineDiarizer(16000, embeddings=False, forget_after_s=-1)
    with pytest.raises(ValueError, match=r"identify_floor must be a finite number from -1 to 1, got nan"):
        OnlineDiarizer(16000, embeddings=False, identify_floor=float("nan"))
    with pytest.raises(ValueError, match=r"identify_place_deg must be a finite number from 0 to 180, got 200"):
        OnlineDiarizer(16000, embeddings=False, identify_place_deg=200)
    with pytest.raises(ValueError, match=r"TargetSelector: playback_fraction must be .* to 1, got 45"):
        TargetSelector(playback_fraction=45)
    with pytest.raises(ValueError, match=r"PlaybackZones: fraction must be .* to 1, got 45"):
        PlaybackZones(fraction=45)
    with pytest.raises(ValueError, match=r"PlaybackZones: width_deg must be .* to 180, got nan"):
        PlaybackZones(width_deg=float("nan"))
    with pytest.raises(ValueError, match=r"TargetSelector: trigger_settle_s must be .* got -0.5"):
        TargetSelector(trigger_settle_s=-0.5)
    with pytest.raises(ValueError, match="TargetSelector: nearest_memory_s"):
        TargetSelector(nearest_memory_s=float("inf"))
    with pytest.raises(ValueError, match=r"sector must be \(centre_az_deg, half_width_deg\)"):
        TargetSelector(sector=(0.0, 0.0))


def test_enrollment_names_a_known_voice():
    pytest.importorskip("torch")
    pytest.importorskip("resemblyzer")
    from farfield.sim.voices import EspeakBank

    rng = np.random.default_rng(0)
    bank = EspeakBank()
    a, b = bank.voices(2, 16000, rng)
    d = OnlineDiarizer(16000, vad="energy")
    with pytest.raises(ValueError, match="at least 1 s"):
        d.enroll("alice", np.ones(8000), 16000)
    with pytest.raises(ValueError, match="without spaces"):
        d.enroll("alice smith", a.say(3.0, rng), 16000)
    d.enroll("alice", np.concatenate([a.say(3.0, rng), a.say(3.0, rng)]), 16000)
    d.enroll("bob", np.concatenate([b.say(3.0, rng), b.say(3.0, rng)]), 16000)
    labels = []
    for voice, tid in ((a, 1), (b, 2), (a, 3)):  # alice comes back later on another track
        x = np.concatenate([1e-4 * rng.standard_normal(8000), voice.say(2.5, rng), 1e-4 * rng.standard_normal(16000)])
        start = int(1e6 * tid)
        for s in range(0, x.size, 1600):
            b_ = FrontendBlock(rows((start + s) / 16000, (tid, 0.0, -20.0)), {tid: [(start + s, x[s: s + 1600])]})
            labels += [g.speaker for g in d.process(b_)[0]]
    assert labels == ["alice", "bob", "alice"]


class _StubEncoder:
    """Embeddings without a network: the enrolment (``ENROLMENT`` samples long) gets ``e0``, any other audio a
    vector at cosine ``cos`` to it."""

    ENROLMENT = 48001

    def __init__(self, cos: float) -> None:
        basis = np.eye(256, dtype=np.float32)
        self.e0 = basis[0]
        self.v = (cos * basis[0] + np.sqrt(1 - cos**2) * basis[1]).astype(np.float32)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.e0 if audio.size == self.ENROLMENT else self.v


@pytest.mark.parametrize("cos, threshold, named", [(0.72, None, False), (0.72, 0.7, True), (0.78, None, True)])
def test_a_segment_names_an_enrolled_person_on_its_own_only_above_the_enrolled_threshold(cos, threshold, named):
    """One track, one voice, nobody to compare it with: its segment gets the enrolled name only when its cosine to
    the enrolment reaches ``enrolled_threshold`` (0.75 by default: a segment at 0.72 is not named, though it was at
    the 0.7 of before)."""
    rng = np.random.default_rng(3)
    options = {} if threshold is None else {"enrolled_threshold": threshold}
    d = OnlineDiarizer(16000, vad="energy", encoder=_StubEncoder(cos), **options)
    d.enroll("alice", rng.standard_normal(_StubEncoder.ENROLMENT), 16000)
    x = np.concatenate([1e-4 * rng.standard_normal(8000), 0.3 * rng.standard_normal(24000),
                        1e-4 * rng.standard_normal(16000)])
    segs = []
    for s in range(0, x.size, 1600):
        segs += d.process(FrontendBlock(rows(s / 16000, (1, 0.0, -20.0)), {1: [(s, x[s: s + 1600])]}))[0]
    assert len(segs) == 1 and (segs[0].speaker == "alice") == named


def _play_turns(d: OnlineDiarizer, turns: list, rng) -> tuple[list, list, list]:
    """Feed ``d`` turns ``(voice, track_id)`` of 2 s of speech and 1 s of quiet on tracks 1 (0 deg) and 2 (120 deg),
    both beams running all along. Returns (segments, events, per block: (turn, speaking_tracks(), whether a
    speaker_identified event came by then))."""
    segs, events, seen = [], [], []
    t, identified = 0, False
    for turn, (voice, tid) in enumerate(turns):
        x = np.concatenate([voice.say(2.0, rng), 1e-4 * rng.standard_normal(16000)])
        quiet = 1e-4 * rng.standard_normal(x.size)
        for s in range(0, x.size, 1600):
            blk = FrontendBlock(rows((t + s) / 16000, (1, 0.0, -20.0), (2, 120.0, -20.0)),
                                {k: [(t + s, (x if k == tid else quiet)[s: s + 1600])] for k in (1, 2)})
            out = d.process(blk)
            segs += out[0]
            events += out[1]
            identified = identified or any(e.type == "speaker_identified" for e in out[1])
            seen.append((turn, d.speaking_tracks(), identified))
        t += x.size
    return segs, events, seen


def _alice_enrolled(**options) -> tuple:
    """An energy-VAD diarizer with alice enrolled and direct matching off (enrolled_threshold 0.99, as when a
    close-talk enrolment and a far beam are no closer than two people): ``(diarizer, alice, bob, rng)``."""
    pytest.importorskip("torch")
    pytest.importorskip("resemblyzer")
    from farfield.sim.voices import EspeakBank

    rng = np.random.default_rng(1)
    a, b = EspeakBank().voices(2, 16000, rng)
    d = OnlineDiarizer(16000, vad="energy", enrolled_threshold=0.99, **options)
    d.enroll("alice", np.concatenate([a.say(3.0, rng), a.say(3.0, rng)]), 16000)
    return d, a, b, rng


def test_enrolled_person_is_identified_by_the_track_closest_to_their_voice():
    """Direct matching off (enrolled_threshold 0.99, as when a close-talk enrolment and a far beam are no closer
    than two people): alice's track is still identified as the track clearly closest to her enrolment, and
    final_label names its segments from before the identification too."""
    d, a, b, rng = _alice_enrolled()
    segs, events, seen = _play_turns(d, [(a, 1), (b, 2)] * 3, rng)  # alice on track 1 and bob on track 2
    heard = [now[1] for _, now, identified in seen if identified and 1 in now]
    ident = [e for e in events if e.type == "speaker_identified"]
    assert [(e.speaker, e.track_id) for e in ident] == [("alice", 1)]
    assert heard and set(heard) == {"alice"}  # once identified, the track carries her name from the first words
    final = [d.final_label(g) for g in segs]
    assert {g.speaker for g in final if g.track_id == 1} == {"alice"}
    assert "alice" not in {g.speaker for g in final if g.track_id == 2}
    assert any(g.speaker != "alice" for g in segs if g.track_id == 1)  # labelled before the identification


def test_another_voice_on_an_identified_track_does_not_get_the_name():
    """The tracker hands alice's identified track to bob (two talkers closer than the beam): his segment there is
    labelled by his own voice, in speaking_tracks and in final_label; alice's next segment is hers again."""
    # clean espeak voices of two people are at cosine 0.47-0.60 to each other's enrolment, one person's at 0.8-0.9
    d, a, b, rng = _alice_enrolled(identify_floor=0.7)
    # alice on track 1 and bob on track 2 take turns until track 1 is identified; then bob speaks on track 1
    segs, events, seen = _play_turns(d, [(a, 1), (b, 2)] * 3 + [(b, 1), (a, 1)], rng)
    heard = [(turn, now[1]) for turn, now, _ in seen if turn >= 6 and 1 in now]
    assert [(e.speaker, e.track_id) for e in events if e.type == "speaker_identified"] == [("alice", 1)]
    bob_there, alice_back = [g for g in segs if g.track_id == 1][-2:]
    assert bob_there.speaker != "alice" and d.final_label(bob_there).speaker != "alice"
    assert alice_back.speaker == "alice"
    # bob's first words on the identified track carry the name (nothing is known of them yet), not the rest
    assert {lab for turn, lab in heard if turn == 6} == {"alice", bob_there.speaker}
    assert heard[-1] == (7, "alice")


def test_an_identified_person_back_on_a_new_track_keeps_the_name_from_the_first_words():
    """alice is identified on track 1 (0 deg); after a pause the tracker gives her a new track 3 at 5 deg: it is
    identified at once by direction (her name in speaking_tracks from the first block of speech), while bob's new
    track 4 at 125 deg and a playback track 5 at 8 deg are not."""
    d, a, b, rng = _alice_enrolled()
    segs, events, _ = _play_turns(d, [(a, 1), (b, 2)] * 3, rng)
    assert [(e.speaker, e.track_id) for e in events if e.type == "speaker_identified"] == [("alice", 1)]
    t = int(round(max(g.end_s for g in segs) * 16000))
    d.playback_tracks = {5}
    heard = {}
    for voice, tid, az in ((a, 5, 8.0), (a, 3, 5.0), (b, 4, 125.0)):
        x = np.concatenate([voice.say(2.0, rng), 1e-4 * rng.standard_normal(16000)])
        for s in range(0, x.size, 1600):
            out = d.process(FrontendBlock(rows((t + s) / 16000, (tid, az, -20.0)), {tid: [(t + s, x[s: s + 1600])]}))
            events += out[1]
            now = d.speaking_tracks()
            if tid in now:
                heard.setdefault(tid, []).append(now[tid])
        t += x.size + 24000  # the track dies in the pause (forget_after_s)
    carried = [e for e in events if e.detail.get("by") == "direction"]
    assert [(e.speaker, e.track_id, e.detail["previous_track"]) for e in carried] == [("alice", 3, 1)]
    assert set(heard[3]) == {"alice"}  # from the first block of speech on
    assert "alice" not in heard[4] and "alice" not in heard[5]
    assert d.identified == {3: "alice"}


def test_an_identified_track_speaking_elsewhere_is_not_named_before_its_label():
    """alice's identified track 1 (0 deg) is handed to bob 40 deg away: his first words there do not carry her
    name in speaking_tracks (her own first words where she was heard do)."""
    d, a, b, rng = _alice_enrolled(identify_floor=0.7)
    segs, events, _ = _play_turns(d, [(a, 1), (b, 2)] * 3, rng)
    assert d.identified == {1: "alice"}
    t = int(round(max(g.end_s for g in segs) * 16000))
    first = {}
    for voice, az in ((b, 40.0), (a, 3.0)):
        x = np.concatenate([voice.say(2.0, rng), 1e-4 * rng.standard_normal(16000)])
        for s in range(0, x.size, 1600):
            d.process(FrontendBlock(rows((t + s) / 16000, (1, az, -20.0)), {1: [(t + s, x[s: s + 1600])]}))
            if 1 in d.speaking_tracks() and az not in first:
                first[az] = d.speaking_tracks()[1]
        t += x.size
    assert first == {40.0: None, 3.0: "alice"}


def _speak_on_track_1(d: OnlineDiarizer, turns: list, rng) -> tuple[list, dict]:
    """Feed ``d`` turns ``(voice, azimuth)`` of 2 s of speech and 1 s of quiet, all on track 1, from where its
    stream stands, then 2 s of quiet. Returns (per turn the segments that start in it, per turn the labels
    speaking_tracks() gave track 1 in it)."""
    segs, first, starts = [], {}, []
    t = d._tracks[1].start_sample + d._tracks[1].vad.samples_fed
    for k, (voice, az) in enumerate(turns + [(None, turns[-1][1])]):
        starts.append(t / 16000)
        x = voice.say(2.0, rng) if voice is not None else np.zeros(0)
        x = np.concatenate([x, 1e-4 * rng.standard_normal(16000 if voice is not None else 32000)])
        for s in range(0, x.size, 1600):
            segs += d.process(FrontendBlock(rows((t + s) / 16000, (1, az, -20.0)), {1: [(t + s, x[s: s + 1600])]}))[0]
            if 1 in d.speaking_tracks():
                first.setdefault(k, []).append(d.speaking_tracks()[1])
        t += x.size
    return [[g for g in segs if a <= g.start_s < b] for a, b in zip(starts, starts[1:])], first


def test_another_voice_beside_an_identified_person_does_not_get_their_name():
    """alice's identified track 1 (0 deg) is handed to bob 12 deg away (two talkers closer than the array's beam),
    where his voice is not checked by its cosine (identify_floor -1): he is away from where the voices most like
    alice's come from, so neither his first words nor his segment there carry her name; alice's next words where
    she spoke do."""
    d, a, b, rng = _alice_enrolled(identify_floor=-1.0)
    segs, events, _ = _play_turns(d, [(a, 1), (b, 2)] * 3, rng)
    assert d.identified == {1: "alice"}
    got, first = _speak_on_track_1(d, [(b, 12.0), (a, 1.0)], rng)
    assert got[0] and all(g.speaker != "alice" for g in got[0])
    assert "alice" not in first[0]
    assert got[1] and all(g.speaker == "alice" for g in got[1]) and set(first[1]) == {"alice"}
    # with the place rule off, bob's segment there would be hers
    d, a, b, rng = _alice_enrolled(identify_floor=-1.0, identify_place_deg=None)
    segs, events, _ = _play_turns(d, [(a, 1), (b, 2)] * 3, rng)
    got, _ = _speak_on_track_1(d, [(b, 12.0)], rng)
    assert got[0] and all(g.speaker == "alice" for g in got[0])


def test_a_voice_that_takes_over_an_identified_track_without_a_pause_does_not_get_the_name():
    """bob speaks on track 3 at 15 deg; then alice's identified track 1 (0 deg) talks on without a pause as bob takes
    it over (the tracker hands it to him): her part of the run keeps her name, his part is a segment of its own
    without it. With the split off, one segment carries her name to the end."""
    def feed(d, t, tracks: dict) -> list:
        """Blocks from input sample ``t`` on: ``{track: (azimuth(s), audio)}``; returns the segments."""
        n = max(x.size for _, x in tracks.values())
        segs = []
        for s in range(0, n, 1600):
            now = rows((t + s) / 16000, *[(k, az(s), -20.0) for k, (az, _) in tracks.items()])
            segs += d.process(FrontendBlock(now, {k: [(t + s, x[s: s + 1600])] for k, (_, x) in tracks.items()}))[0]
        return segs

    for split in (10.0, None):
        d, a, b, rng = _alice_enrolled(split_moved_deg=split)
        _play_turns(d, [(a, 1), (b, 2)] * 3, rng)
        assert d.identified == {1: "alice"}
        t = d._tracks[1].start_sample + d._tracks[1].vad.samples_fed
        his = np.concatenate([1e-4 * rng.standard_normal(8000), b.say(2.0, rng), 1e-4 * rng.standard_normal(8000)])
        feed(d, t, {1: (lambda s: 0.0, 1e-4 * rng.standard_normal(his.size)), 3: (lambda s: 15.0, his)})
        t += his.size
        her = a.say(2.0, rng)
        loud = np.flatnonzero(np.abs(her) > 0.05 * np.abs(her).max())
        her = her[: loud[-1] + 1]  # her words up to the last one: bob starts as she stops
        x = np.concatenate([her, b.say(2.0, rng), 1e-4 * rng.standard_normal(16000)])
        quiet = 1e-4 * rng.standard_normal(x.size)
        segs = feed(d, t, {1: (lambda s: 0.0 if s < her.size else 15.0, x), 3: (lambda s: 15.0, quiet)})
        named = [(g.speaker, g.start_s - t / 16000, g.end_s - t / 16000) for g in segs if g.track_id == 1]
        turn = her.size / 16000
        if split is None:
            assert len(named) == 1 and named[0][0] == "alice" and named[0][2] > turn + 1.0
        else:
            assert named[0][0] == "alice" and abs(named[0][2] - turn) <= 0.1
            assert named[1:] and all(n[0] != "alice" and n[1] >= turn - 0.1 for n in named[1:])


def test_an_identified_person_who_moved_is_named_again_at_the_new_place():
    """alice, identified at 0 deg, moves 30 deg and talks on there: her first segment there may be refused (her
    place is still where she spoke before; here its first 0.8 s are), but once her voice has been heard there, it
    is her place."""
    d, a, b, rng = _alice_enrolled()
    segs, events, _ = _play_turns(d, [(a, 1), (b, 2)] * 3, rng)
    assert d.identified == {1: "alice"}
    got, _ = _speak_on_track_1(d, [(a, 30.0)] * 5, rng)
    assert got[2] and got[3] and all(g.speaker == "alice" for turn in got[2:4] for g in turn)


def test_one_voice_alone_is_not_identified_as_an_enrolled_person():
    """A TV talks before anyone else: with no other track to compare it with, it is not "clearly the closest"
    to alice's enrolment, however low the floor."""
    pytest.importorskip("torch")
    pytest.importorskip("resemblyzer")
    from farfield.sim.voices import EspeakBank

    rng = np.random.default_rng(2)
    a, tv = EspeakBank().voices(2, 16000, rng)
    d = OnlineDiarizer(16000, vad="energy", enrolled_threshold=0.99, identify_floor=-1.0)
    d.enroll("alice", np.concatenate([a.say(3.0, rng), a.say(3.0, rng)]), 16000)
    x = np.concatenate([tv.say(3.0, rng), 1e-4 * rng.standard_normal(4000), tv.say(3.0, rng),
                        1e-4 * rng.standard_normal(16000)])
    events = []
    for s in range(0, x.size, 1600):
        events += d.process(FrontendBlock(rows(s / 16000, (1, 0.0, -20.0)), {1: [(s, x[s: s + 1600])]}))[1]
    assert d._tracks[1].voice_s >= d.identify_min_s  # enough of its voice was heard to be compared
    assert not [e for e in events if e.type == "speaker_identified"] and not d.identified


def test_dead_tracks_are_closed_and_forgotten():
    """200 short-lived tracks, one after another: each one's segment comes out about forget_after_s after its
    stream stops (not at the end), and the diarizer and the target policy keep no state for dead tracks."""
    rng = np.random.default_rng(3)
    d, sel = OnlineDiarizer(16000, embeddings=False, vad="energy"), TargetSelector()
    segs_before_flush = []
    for k in range(200):
        x = 1e-4 * rng.standard_normal(16000)
        x[4000:12000] += 0.3 * rng.standard_normal(8000)  # 0.5 s of "speech" per track
        for s in range(0, x.size, 1600):
            t0 = k * 16000 + s
            b = FrontendBlock(rows(t0 / 16000, (k, float(k % 360), -20.0), (1000 + k, 90.0, -30.0)),
                              {k: [(t0, x[s: s + 1600])]})  # track 1000 + k: rows without a stream
            segs_before_flush += d.process(b)[0]
            sel.observe(d.speaking_tracks(), t0 / 16000)
            sel.update(b.tracks[:1], t0 / 16000)
        assert len(d._tracks) <= 3 and len(sel._track_dir) <= 12  # the selector keeps a dead track 10 s
        assert len(d._last_row_block) <= 8 and len(d._detections) <= 8
    assert len({g.track_id for g in segs_before_flush}) >= 198
