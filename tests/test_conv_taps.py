"""The per-tap GEMMs of conv_taps and the finiteness test before their backward."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import naive as nv
from conftest import assert_close
from fastconv.kernels import conv, conv_taps
from test_kernels import conv_case


@st.composite
def stride1_case(draw):
    x, Wt, b, _, pad = draw(conv_case())
    return x, Wt, b, 1, pad


@given(case=stride1_case())
def test_per_tap_gemm_path_matches_book_and_loops(case):
    """conv_taps' per-tap GEMMs (forced on for any channel count and width here), forward,
    backward and fused with ReLU and pooling, against the book and the loops."""
    x, Wt, b, stride, pad = case
    ref, col, col_W = nv.book_conv_forward(x, Wt, b, stride, pad)
    dout = np.random.default_rng(2).standard_normal(ref.shape)
    rgrads = nv.book_conv_backward(dout, x, Wt, col, col_W, stride, pad)
    lgrads = nv.loop_conv_backward(dout, x, Wt, stride, pad)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv, "use_taps", lambda x_shape, W_shape, s, p, bwd, dt: s == 1)
        out = conv.conv_forward(x, Wt, b, stride, pad)
        grads = conv.conv_backward(dout, x, Wt, stride, pad)
        no_dx = conv.conv_backward(dout, x, Wt, stride, pad, need_dx=False)
        fused = None
        if ref.shape[2] >= 2 and ref.shape[3] >= 2:
            fused = conv.conv_relu_forward(x, Wt, b, stride, pad, pool=True)
            pd = np.random.default_rng(3).standard_normal(fused[0].shape)
            fused_grads = conv.conv_relu_backward(pd, fused[1], x, Wt, stride, pad,
                                                  idx=fused[2])
    assert_close(out, ref)
    assert_close(out, nv.loop_conv_forward(x, Wt, b, stride, pad))
    for got, book, loop in zip(grads, rgrads, lgrads, strict=True):
        assert_close(got, book)
        assert_close(got, loop)
    assert no_dx[0] is None
    assert_close(no_dx[1], rgrads[1])
    if fused is not None:  # against the book's ReLU and pooling on the book's convolution
        r, mask = nv.book_relu_forward(ref)
        p, arg = nv.book_pool_forward(r, 2, 2, 2)
        assert_close(fused[0], p)
        np.testing.assert_array_equal(fused[1], mask)
        dr = nv.book_relu_backward(nv.book_pool_backward(pd, arg, r.shape, 2, 2, 2), mask)
        for got, want in zip(fused_grads, nv.book_conv_backward(dr, x, Wt, col, col_W, 1, pad),
                             strict=True):
            assert_close(got, want)


def test_per_tap_gemms_run_where_they_pay():
    """DeepConvNet's conv2-conv4 take the per-tap GEMMs both ways, conv6 (7 of 9 wide columns
    real) forward, and backward in float32, conv5 forward in float32; SimpleConvNet's conv1
    (C = 1) and strided convolutions never."""
    from fastconv.kernels.conv_taps import use_taps
    for backward in (False, True):
        assert use_taps((100, 16, 28, 28), (16, 16, 3, 3), 1, 1, backward)
        assert use_taps((100, 16, 14, 14), (32, 16, 3, 3), 1, 1, backward)
        assert use_taps((100, 32, 14, 14), (32, 32, 3, 3), 1, 2, backward)
        assert use_taps((100, 64, 7, 7), (64, 64, 3, 3), 1, 1, backward) is not backward
        assert use_taps((100, 64, 7, 7), (64, 64, 3, 3), 1, 1, backward, np.float32)
        assert not use_taps((100, 32, 7, 7), (64, 32, 3, 3), 1, 1, backward)  # float64
        assert use_taps((100, 32, 7, 7), (64, 32, 3, 3), 1, 1, backward,
                         np.float32) is not backward
        assert not use_taps((100, 1, 28, 28), (30, 1, 5, 5), 1, 0, backward)
        assert not use_taps((100, 16, 28, 28), (16, 16, 3, 3), 2, 1, backward)


def test_deepconvnet_conv2_shape_matches_book():
    """The dispatcher's own choice at DeepConvNet's conv2 (per-tap GEMMs), a few samples,
    forward and backward."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 16, 28, 28))
    Wt = 0.1 * rng.standard_normal((16, 16, 3, 3))
    b = rng.standard_normal(16)
    ref, col, col_W = nv.book_conv_forward(x, Wt, b, 1, 1)
    dout = rng.standard_normal(ref.shape)
    assert_close(conv.conv_forward(x, Wt, b, 1, 1), ref)
    for got, want in zip(conv.conv_backward(dout, x, Wt, 1, 1),
                         nv.book_conv_backward(dout, x, Wt, col, col_W, 1, 1), strict=True):
        assert_close(got, want)


@pytest.mark.parametrize("where, value", [("first column", np.nan), ("last column", np.nan),
                                          ("inside", np.nan), ("last column", np.inf),
                                          ("first column", -np.inf)])
def test_nan_input_gives_the_books_nan_pattern_on_per_tap_layers(where, value):
    """A NaN (or inf) in the input of a layer that takes the per-tap GEMMs: the wide grid
    would multiply it by zero for taps that never meet it (NaN where the book's dW is
    finite), so backward takes the unfold path for non-finite input; forward drops those
    columns."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 16, 16, 16))
    x[1, 3, 5, {"first column": 0, "last column": 15, "inside": 7}[where]] = value
    Wt = rng.standard_normal((4, 16, 3, 3))
    b = rng.standard_normal(4)
    ref, col, col_W = nv.book_conv_forward(x, Wt, b, 1, 1)
    dout = rng.standard_normal(ref.shape)
    out = conv.conv_forward(x, Wt, b, 1, 1)
    got = conv.conv_backward(dout, x, Wt, 1, 1)
    want = nv.book_conv_backward(dout, x, Wt, col, col_W, 1, 1)
    for a, c in [(out, ref), *zip(got, want, strict=True)]:
        np.testing.assert_array_equal(np.isnan(a), np.isnan(c))
        np.testing.assert_array_equal(a[np.isinf(c)], c[np.isinf(c)])
        finite = np.isfinite(c)
        assert_close(a[finite], c[finite])
    assert not np.isnan(want[1]).all()  # some taps never meet the NaN
    assert conv.use_taps(x.shape, Wt.shape, 1, 1, True, np.float64)
    assert not conv_taps.all_finite(x.reshape(-1))


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_all_finite_finds_every_inf_and_nan(dt):
    """The per-tap backward's input test: any inf or NaN, wherever it sits (the loop's
    vector body or its tail); huge finite values whose sum overflows are finite."""
    a = np.full(37, np.finfo(dt).max / 2, dtype=dt)
    assert conv_taps.all_finite(a)
    for i in (0, 17, 36):
        for v in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[i] = v
            assert not conv_taps.all_finite(b)
    assert conv_taps.all_finite(np.empty(0, dt))


