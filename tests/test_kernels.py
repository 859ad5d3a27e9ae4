"""Kernel parity with the independent twins of tests/naive.py over hypothesis-drawn shapes."""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import naive as nv
from conftest import F32_RTOL, assert_close
from fastconv.kernels import activation, conv, pooling
from fastconv.util import col2im, im2col


def _conv_case(N, C, H, W, FN, FH, FW, stride, pad, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C, H, W)).astype(dtype),
            rng.standard_normal((FN, C, FH, FW)), rng.standard_normal(FN), stride, pad)


# edge cases every run tries: an empty batch, one sample with one output cell, a stride
# beyond the filter (inputs skipped), pad = filter - 1 ("full"), a filter as large as the
# padded input
CONV_EXAMPLES = [_conv_case(0, 2, 6, 5, 3, 3, 3, 1, 1), _conv_case(1, 1, 5, 5, 2, 5, 5, 1, 0),
                 _conv_case(2, 3, 7, 8, 2, 2, 2, 4, 0, np.float32),
                 _conv_case(2, 2, 4, 3, 3, 4, 3, 1, 3), _conv_case(1, 2, 3, 3, 2, 9, 9, 2, 3)]


def conv_examples(test):
    for case in reversed(CONV_EXAMPLES):
        test = example(case)(test)
    return test


@st.composite
def conv_case(draw, max_c=4):
    """x (N, C, H, W), float64 or float32, and a float64 filter that fits the padded input,
    any stride and pad; batches from 0."""
    N = draw(st.integers(0, 3))
    C = draw(st.integers(1, max_c))
    H = draw(st.integers(1, 9))
    W = draw(st.integers(1, 9))
    pad = draw(st.integers(0, 3))
    FH = draw(st.integers(1, H + 2 * pad))
    FW = draw(st.integers(1, W + 2 * pad))
    stride = draw(st.integers(1, 4))
    FN = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return _conv_case(N, C, H, W, FN, FH, FW, stride, pad, dtype, draw(st.integers(0, 2 ** 32 - 1)))


@given(conv_case())
@conv_examples
def test_im2col_col2im_bitwise_equal_to_book(case):
    x, Wt, _, stride, pad = case
    FH, FW = Wt.shape[2:]
    col = im2col(x, FH, FW, stride, pad)
    assert col.dtype == np.float64
    np.testing.assert_array_equal(col, nv.book_im2col(x, FH, FW, stride, pad))
    np.testing.assert_array_equal(col, nv.loop_im2col(x, FH, FW, stride, pad))
    dcol = np.random.default_rng(1).standard_normal(col.shape)
    img = col2im(dcol, x.shape, FH, FW, stride, pad)
    assert img.dtype == np.float64
    # same summation order per cell as the book: bit for bit
    np.testing.assert_array_equal(img, nv.book_col2im(dcol, x.shape, FH, FW, stride, pad))
    assert_close(img, nv.loop_col2im(dcol, x.shape, FH, FW, stride, pad))


# the layers' convolution and the direct loops: (forward, backward)
CONV_PATHS = {"gemm": (conv.conv_forward, conv.conv_backward),
              "direct": (conv.conv_forward_direct, conv.conv_backward_direct)}


@pytest.mark.parametrize("path", sorted(CONV_PATHS))
@given(case=conv_case())
@conv_examples
def test_conv_forward_backward_match_book_and_loops(path, case):
    x, Wt, b, stride, pad = case
    ref, col, col_W = nv.book_conv_forward(x, Wt, b, stride, pad)
    dout = np.random.default_rng(2).standard_normal(ref.shape)
    forward, backward = CONV_PATHS[path]
    out = forward(x, Wt, b, stride, pad)
    dx, dW, db = backward(dout, x, Wt, stride, pad)
    assert_close(out, ref)
    assert_close(out, nv.loop_conv_forward(x, Wt, b, stride, pad))
    rdx, rdW, rdb = nv.book_conv_backward(dout, x, Wt, col, col_W, stride, pad)
    ldx, ldW, ldb = nv.loop_conv_backward(dout, x, Wt, stride, pad)
    for got, book, loop in [(dx, rdx, ldx), (dW, rdW, ldW), (db, rdb, ldb)]:
        assert_close(got, book)
        assert_close(got, loop)


@st.composite
def pool_case(draw, allow_pad=True, max_n=3, max_c=4, max_size=9):
    """x (N, C, H, W), float64 or float32 (batches from 0), a window, stride and pad."""
    N = draw(st.integers(0, max_n))
    C = draw(st.integers(1, max_c))
    H = draw(st.integers(1, max_size))
    W = draw(st.integers(1, max_size))
    PH = draw(st.integers(1, 4))
    PW = draw(st.integers(1, 4))
    pad = draw(st.integers(0, min(PH, PW) // 2)) if allow_pad else 0
    PH, PW = min(PH, H + 2 * pad), min(PW, W + 2 * pad)
    pad = min(pad, PH // 2, PW // 2)
    stride = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    # small integers: many exact ties inside windows
    kind = draw(st.sampled_from(["normal", "ties", "relu"]))
    if kind == "normal":
        x = rng.standard_normal((N, C, H, W))
    elif kind == "ties":
        x = rng.integers(-2, 3, (N, C, H, W)).astype(np.float64)
    else:  # after ReLU: many all-zero windows
        x = np.maximum(rng.standard_normal((N, C, H, W)) - 1.0, 0.0)
    return x.astype(draw(st.sampled_from([np.float64, np.float32]))), PH, PW, stride, pad


def _tol(x):
    return F32_RTOL if x.dtype == np.float32 else 1e-12


def _pool_case(N, C, H, W, P, stride, pad, dtype=np.float64):
    x = np.random.default_rng(0).integers(-2, 3, (N, C, H, W)).astype(dtype)  # with ties
    return x, P, P, stride, pad


@given(pool_case(allow_pad=False))
@example(_pool_case(0, 2, 4, 4, 2, 2, 0))                # an empty batch
@example(_pool_case(1, 3, 3, 3, 3, 1, 0, np.float32))    # one sample, one window
@example(_pool_case(2, 2, 9, 9, 2, 4, 0))                # stride beyond the window
def test_maxpool_matches_book_including_ties(case):
    x, PH, PW, stride, pad = case
    out, arg_max = pooling.maxpool_forward(x, PH, PW, stride, pad)
    ref, ref_arg = nv.book_pool_forward(x, PH, PW, stride, pad)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, ref)  # a maximum is exact in any dtype
    np.testing.assert_array_equal(arg_max, ref_arg)
    dout = np.random.default_rng(3).standard_normal(out.shape).astype(x.dtype)
    dx = pooling.maxpool_backward(dout, arg_max, x.shape, PH, PW, stride, pad)
    assert dx.dtype == x.dtype
    assert_close(dx, nv.book_pool_backward(dout.astype(np.float64), ref_arg, x.shape, PH, PW,
                                           stride, pad), rtol=_tol(x))


@given(pool_case())
@example(_pool_case(0, 1, 5, 5, 3, 2, 1))                # an empty batch, padded
@example(_pool_case(1, 2, 1, 1, 2, 1, 1, np.float32))    # a 1x1 input, all but one cell pad
@example(_pool_case(2, 1, 6, 5, 2, 3, 1))                # stride beyond the window, padded
def test_pooling_with_padding_matches_loops(case):
    _check_pooling_against_loops(case)


@pytest.mark.slow
@given(pool_case(max_n=6, max_c=8, max_size=30))
def test_pooling_on_larger_drawn_shapes_matches_loops(case):
    _check_pooling_against_loops(case)


def _check_pooling_against_loops(case):
    x, PH, PW, stride, pad = case
    out, arg_max = pooling.maxpool_forward(x, PH, PW, stride, pad)
    ref, ref_arg = nv.loop_maxpool_forward(x, PH, PW, stride, pad)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(arg_max, ref_arg)
    dout = np.random.default_rng(4).standard_normal(out.shape).astype(x.dtype)
    wide = dout.astype(np.float64)
    assert_close(pooling.maxpool_backward(dout, arg_max, x.shape, PH, PW, stride, pad),
                 nv.loop_maxpool_backward(wide, ref_arg, x.shape, PH, PW, stride, pad),
                 rtol=_tol(x))
    avg = pooling.avgpool_forward(x, PH, PW, stride, pad)
    assert avg.dtype == x.dtype
    assert_close(avg, nv.loop_avgpool_forward(x, PH, PW, stride, pad), rtol=_tol(x))
    assert_close(pooling.avgpool_backward(dout, x.shape, PH, PW, stride, pad),
                 nv.loop_avgpool_backward(wide, x.shape, PH, PW, stride, pad), rtol=_tol(x))



def test_maxpool_hand_computed_ties_and_nan():
    x = np.array([[[[1., 3., 3., 0.],
                    [3., 2., 0., 0.],
                    [np.nan, 5., 7., 7.],
                    [5., np.nan, 7., 7.]]]])
    out, arg_max = pooling.maxpool_forward(x, 2, 2, 2, 0)
    np.testing.assert_array_equal(out[0, 0], [[3., 3.], [np.nan, 7.]])
    # first maximum wins (3 at position 1, 3 at position 0); first NaN wins (position 0)
    np.testing.assert_array_equal(arg_max, [1, 0, 0, 0])
    dx = pooling.maxpool_backward(np.ones((1, 1, 2, 2)), arg_max, x.shape, 2, 2, 2, 0)
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("shape", [(4, 3, 24, 24), (2, 2, 7, 9)])
def test_maxpool_2x2_stride2_nan_and_ties_match_book(shape):
    """The book's own pooling (2x2, stride 2) has its own kernel: ReLU zeros (ties), NaNs
    scattered over some rows, odd sizes whose last row and column no window covers."""
    rng = np.random.default_rng(12)
    x = np.maximum(rng.standard_normal(shape), 0)
    x[rng.random(shape) < 0.02] = np.nan
    out, arg_max = pooling.maxpool_forward(x, 2, 2, 2, 0)
    ref, ref_arg = nv.book_pool_forward(x, 2, 2, 2, 0)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(arg_max, ref_arg)
    assert np.isnan(out).any() and (out == 0).any()
    # backward from the layer's int8 plane layout (its own 2x2 kernel): one value per cell,
    # so bit for bit; a -0.0 in dout comes back +0.0, as from the book's col2im
    dout = rng.standard_normal(out.shape)
    dout[0, 0, 0, :2] = -0.0
    _, idx = pooling.maxpool_forward(x, 2, 2, 2, 0, layout="plane")
    assert idx.dtype == np.int8
    dx = pooling.maxpool_backward(dout, idx, x.shape, 2, 2, 2, 0)
    ref_dx = nv.book_pool_backward(dout, ref_arg, x.shape, 2, 2, 2, 0)
    np.testing.assert_array_equal(dx, ref_dx)
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(ref_dx))


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (2, 3, 150, 160)])  # serial, parallel
def test_relu_matches_book_and_writes_into_dout(shape):
    x = np.random.default_rng(5).standard_normal(shape)
    x[0, 0, 0, :3] = [0.0, -0.0, np.nan]
    out, mask = activation.relu_forward(x)
    ref, ref_mask = nv.book_relu_forward(x)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(mask, ref_mask)
    dout = np.random.default_rng(6).standard_normal(x.shape)
    expected = nv.book_relu_backward(dout.copy(), ref_mask)
    got = activation.relu_backward(dout, mask)
    assert got is dout
    np.testing.assert_array_equal(dout, expected)
    # a strided view is written through as well
    big = np.random.default_rng(7).standard_normal(shape[:3] + (2 * shape[3],))
    view = big[..., ::2]
    exp_view = nv.book_relu_backward(view.copy(), mask)
    activation.relu_backward(view, mask)
    np.testing.assert_array_equal(big[..., ::2], exp_view)


@pytest.mark.parametrize("op", ["conv", "pool", "avgpool", "im2col"])
def test_float32_and_noncontiguous_inputs(op):
    rng = np.random.default_rng(8)
    x64 = rng.standard_normal((2, 8, 9, 3)).transpose(0, 3, 1, 2)  # non-contiguous
    x32 = x64.astype(np.float32)
    if op == "conv":
        Wt = rng.standard_normal((4, 3, 3, 3))
        b = rng.standard_normal(4)
        ref = nv.book_conv_forward(np.ascontiguousarray(x64), Wt, b, 1, 1)[0]
        assert_close(conv.conv_forward_direct(x64, Wt, b, 1, 1), ref)
        assert_close(conv.conv_forward(x64, Wt, b, 1, 1), ref)
        for forward in (conv.conv_forward, conv.conv_forward_direct):
            got = forward(x32, Wt.astype(np.float32), b.astype(np.float32), 1, 1)
            assert got.dtype == np.float32
            assert_close(got, ref, rtol=1e-5)
    elif op == "pool":
        out, _ = pooling.maxpool_forward(x32, 2, 2, 2, 0)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, nv.book_pool_forward(x32, 2, 2, 2)[0])
    elif op == "avgpool":
        out = pooling.avgpool_forward(x32, 2, 2, 2, 0)
        assert out.dtype == np.float32
        assert_close(out, nv.loop_avgpool_forward(x64, 2, 2, 2, 0), rtol=1e-5)
    else:
        col = im2col(x32, 3, 3, 2, 1)
        assert col.dtype == np.float64  # the book's rule
        np.testing.assert_array_equal(col, nv.book_im2col(x32, 3, 3, 2, 1))


def test_nan_propagates_through_conv():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = np.nan
    Wt = np.ones((1, 1, 3, 3))
    for out in (conv.conv_forward_direct(x, Wt, np.zeros(1)),
                conv.conv_forward(x, Wt, np.zeros(1))):
        assert np.isnan(out).all()  # every 3x3 window of the 5x5 input covers (2, 2)


def test_simpleconvnet_shapes_match_book():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 1, 28, 28))
    Wt = 0.01 * rng.standard_normal((30, 1, 5, 5))
    b = np.zeros(30)
    ref = nv.book_conv_forward(x, Wt, b)[0]
    out = conv.conv_forward(x, Wt, b)
    assert out.shape == (4, 30, 24, 24)
    assert_close(out, ref)
    p, a = pooling.maxpool_forward(np.maximum(out, 0), 2, 2, 2)
    rp, ra = nv.book_pool_forward(np.maximum(ref, 0), 2, 2, 2)
    assert p.shape == (4, 30, 12, 12)
    assert_close(p, rp)
    np.testing.assert_array_equal(a, ra)


def test_conv_many_blocks_match_book():
    """Batches of several blocks (the threads' runs) and a last partial block give the
    book's numbers."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((19, 2, 7, 6))
    Wt = rng.standard_normal((5, 2, 3, 2))
    b = rng.standard_normal(5)
    ref, col, col_W = nv.book_conv_forward(x, Wt, b, 2, 1)
    dout = rng.standard_normal(ref.shape)
    rgrads = nv.book_conv_backward(dout, x, Wt, col, col_W, 2, 1)
    assert x.shape[0] % conv.BLOCK
    assert_close(conv.conv_forward(x, Wt, b, 2, 1), ref)
    for got, want in zip(conv.conv_backward(dout, x, Wt, 2, 1), rgrads, strict=True):
        assert_close(got, want)
    dx, dW, db = conv.conv_backward(dout, x, Wt, 2, 1, need_dx=False)
    assert dx is None
    assert_close(dW, rgrads[1])
