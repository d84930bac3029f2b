import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import farfield as ff
from farfield.geometry import ProfileError, parse_profile

REQUIRED = ["respeaker-4mic-hat", "respeaker-6mic-hat", "respeaker-usb-4mic", "respeaker-xvf3800", "minidsp-uma8",
            "minidsp-uma16", "matrix-voice", "matrix-creator", "ps-eye", "azure-kinect"]


def test_builtin_profiles_load_and_cite_a_source():
    names = ff.list_arrays()
    for n in REQUIRED:
        assert n in names
        a = ff.load_array(n)
        assert a.source, f"{n} must say where its geometry comes from"
        assert 0.01 < a.aperture_m < 0.3
        assert a.spatial_aliasing_hz() > 1000


def test_usb_4mic_uses_raw_channels_only():
    a = ff.load_array("respeaker-usb-4mic")
    assert a.channels == (1, 2, 3, 4) and a.device_channels == 6
    rec = np.arange(6)[:, None] * np.ones((6, 10))
    np.testing.assert_array_equal(a.select_channels(rec)[:, 0], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="only 4 channel"):
        a.select_channels(np.zeros((4, 10)))


def test_derived_facts():
    a = ff.circular_array(4, 0.05)
    assert a.aperture_m == pytest.approx(0.1)
    assert a.max_tdoa_s().max() == pytest.approx(0.1 / 343.0)
    assert a.spatial_aliasing_hz() == pytest.approx(343.0 / (2 * 0.05 * np.sqrt(2)))
    assert a.is_planar and not a.is_linear


def test_profile_round_trip(tmp_path):
    a = ff.load_array("respeaker-6mic-hat")
    p = tmp_path / "x.toml"
    p.write_text(a.to_toml())
    b = ff.load_array(p)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)
    assert a.channels == b.channels and a.device_channels == b.device_channels


def _mic(x: float, channel: int | None, dims: int = 3) -> dict:
    m = {"position": [x, 0.0, 0.0][:dims]}
    if channel is not None:
        m["channel"] = channel
    return m


def _profile(**kw):
    d = {"name": "t", "mics": [_mic(0.0, 0), _mic(0.05, 1)]}
    d.update(kw)
    return d


@pytest.mark.parametrize("data,match", [
    (_profile(mics=[_mic(0.0, 0)]), "at least 2"),
    (_profile(mics=[_mic(0.0, 0), _mic(0.0, 1)]), "coincident"),
    (_profile(mics=[_mic(0.0, 0), _mic(0.05, 0)]), "duplicate channel"),
    (_profile(mics=[_mic(0.0, 0), _mic(46.3, 1)]), "millimetres"),
    ({"mics": []}, "missing required key"),
    (_profile(mics=[_mic(0.0, 0, dims=2), _mic(0.05, 1)]), r"\[x, y, z\]"),
    (_profile(mics=[_mic(0.0, None), _mic(0.05, 1)]), "missing key"),
    (_profile(colour="red"), "unknown key"),
    (_profile(device_channels=1), "does not exist"),
])
def test_bad_profiles(data, match):
    with pytest.raises(ProfileError, match=match):
        parse_profile(data, "test.toml")


def test_bad_profile_files(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("name = 'x'\n[[mics]\n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        ff.load_array(p)
    with pytest.raises(ProfileError, match="no array profile named"):
        ff.load_array("no-such-array")
    with pytest.raises(ProfileError, match="not found"):
        ff.load_array(tmp_path / "missing.toml")


@settings(max_examples=50)
@given(az=st.floats(0, 359.99), el=st.floats(-89, 89))
def test_direction_round_trip(az, el):
    a, e = ff.unit_to_az_el(ff.az_el_to_unit(az, el))
    assert abs((a - az + 180) % 360 - 180) < 1e-6 and abs(e - el) < 1e-6


def test_tdoa_sign_convention():
    a = ff.ArrayGeometry([[0.1, 0, 0], [-0.1, 0, 0]])
    # a source on +x reaches mic 0 first: t0 - t1 < 0
    assert a.tdoas_s(ff.az_el_to_unit(0, 0))[0] == pytest.approx(-0.2 / 343.0)


@settings(max_examples=50)
@given(az=st.floats(-720, 720), el=st.floats(-80, 80), axis_deg=st.floats(0, 180))
@example(az=55.0, el=0.0, axis_deg=55.0)  # on the axis: arccos amplifies any difference in rounding
def test_in_front_gives_the_direction_a_linear_array_reports(az, el, axis_deg):
    """A linear array measures only a source's angle from its axis: ``in_front`` gives the direction in its x-y
    plane within 90 deg of ``front_deg`` with the same delays (at elevation 0 the mirror image of one behind it);
    other arrays keep the azimuth."""
    axis = np.array([np.cos(np.deg2rad(axis_deg)), np.sin(np.deg2rad(axis_deg)), 0.0])
    lin = ff.ArrayGeometry(np.outer([-0.03, 0.0, 0.03], axis))
    f = lin.in_front(az, el)
    assert 0 <= f < 360 and ff.geometry.azimuth_difference_deg(f, lin.front_deg) <= 90 + 1e-6
    np.testing.assert_allclose(lin.tdoas_s(ff.az_el_to_unit(f, 0)), lin.tdoas_s(ff.az_el_to_unit(az, el)), atol=1e-9)
    if el == 0 and ff.geometry.azimuth_difference_deg(az, lin.front_deg) <= 89:
        assert ff.geometry.azimuth_difference_deg(f, az) < 1e-6  # in front already: kept
    circ = ff.load_array("respeaker-6mic-hat")
    assert ff.geometry.azimuth_difference_deg(circ.in_front(az, el), az) < 1e-9
    both = lin.in_front([az, az + 180.0], [el, -el])  # arrays: element by element
    assert np.all(ff.geometry.azimuth_difference_deg(both, [f, lin.in_front(az + 180.0, -el)]) < 1e-9)
