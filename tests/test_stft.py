import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farfield import StreamingISTFT, StreamingSTFT, istft, stft


@pytest.mark.parametrize("frame,hop", [(512, 256), (512, 128), (256, 64), (1024, 512)])
def test_perfect_reconstruction(rng, frame, hop):
    x = rng.standard_normal((3, 5000))
    y = istft(stft(x, frame, hop), hop, x.shape[1])
    np.testing.assert_allclose(y, x, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(blocks=st.lists(st.integers(0, 700), min_size=1, max_size=30), hop=st.sampled_from([64, 128, 256]))
def test_blockwise_equals_offline(blocks, hop):
    rng = np.random.default_rng(0)
    n = sum(blocks)
    x = rng.standard_normal((2, n))
    s = StreamingSTFT(2, 512, hop)
    parts, pos = [], 0
    for b in blocks:
        parts.append(s.process(x[:, pos: pos + b]))
        pos += b
    got = np.concatenate(parts, axis=2)
    ref = StreamingSTFT(2, 512, hop).process(x)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert got.shape[2] == n // hop


def test_streaming_synthesis_has_stated_latency(rng):
    x = rng.standard_normal((1, 4096))
    a, s = StreamingSTFT(1, 512, 128), StreamingISTFT(1, 512, 128)
    y = np.concatenate([s.process(a.process(x[:, i: i + 100])) for i in range(0, 4096, 100)], axis=1)
    L = a.latency_samples
    assert L == 384
    np.testing.assert_allclose(y[:, L:], x[:, : y.shape[1] - L], atol=1e-10)


def test_bad_input_errors():
    s = StreamingSTFT(2, 512, 256)
    with pytest.raises(ValueError, match="3 channel"):
        s.process(np.zeros((3, 100)))
    with pytest.raises(ValueError, match="NaN"):
        s.process(np.full((2, 10), np.nan))
    with pytest.raises(ValueError, match="power of two"):
        StreamingSTFT(2, 500, 250)
    with pytest.raises(ValueError, match="hop_size"):
        StreamingSTFT(2, 512, 400)
    with pytest.raises(ValueError, match="shape"):
        StreamingISTFT(2, 512, 256).process(np.zeros((2, 100, 3)))
