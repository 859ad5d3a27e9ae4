"""The per-tap GEMMs of conv_shift, the finiteness test before their backward, and runs of
fused convolutions on the threads in one go (conv_relu_stack_forward / _backward, and the
walkers of fastconv.fusion that use them)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import naive as nv
from conftest import assert_close
from fastconv.kernels import conv, conv_blas
from fastconv.layers import Convolution, Pooling, Relu
from test_kernels import conv_case


@st.composite
def stride1_case(draw):
    x, Wt, b, _, pad = draw(conv_case())
    return x, Wt, b, 1, pad


@given(case=stride1_case())
def test_per_tap_gemm_path_matches_book_and_loops(case):
    """conv_shift's per-tap GEMMs (forced on for any channel count and width here), forward,
    backward and fused with ReLU and pooling, against the book and the loops."""
    x, Wt, b, stride, pad = case
    ref, col, col_W = nv.book_conv_forward(x, Wt, b, stride, pad)
    dout = np.random.default_rng(2).standard_normal(ref.shape)
    rgrads = nv.book_conv_backward(dout, x, Wt, col, col_W, stride, pad)
    lgrads = nv.loop_conv_backward(dout, x, Wt, stride, pad)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_blas, "use_shift", lambda x_shape, W_shape, s, p, bwd, dt: s == 1)
        assert conv_blas._plan(x, Wt, b, 1, pad, np.float64, backward=False)[0]
        out = conv_blas.conv_forward_blas_numba(x, Wt, b, stride, pad)
        grads = conv_blas.conv_backward_blas_numba(dout, x, Wt, stride, pad)
        no_dx = conv_blas.conv_backward_blas_numba(dout, x, Wt, stride, pad, need_dx=False)
        fused = None
        if ref.shape[2] >= 2 and ref.shape[3] >= 2:
            fused = conv.conv_relu_pool_forward(x, Wt, b, stride, pad)
            pd = np.random.default_rng(3).standard_normal(fused[0].shape)
            fused_grads = conv.conv_relu_pool_backward(pd, fused[1], fused[2], x, Wt, stride,
                                                       pad)
    assert_close(out, ref)
    assert_close(out, nv.loop_conv_forward(x, Wt, b, stride, pad))
    for got, book, loop in zip(grads, rgrads, lgrads):
        assert_close(got, book)
        assert_close(got, loop)
    assert no_dx[0] is None
    assert_close(no_dx[1], rgrads[1])
    if fused is not None:  # against the book's ReLU and pooling on the book's convolution
        r, mask = nv.book_relu_forward(ref)
        p, arg = nv.book_pool_forward(r, 2, 2, 2)
        assert_close(fused[0], p)
        np.testing.assert_array_equal(fused[2], mask)
        dr = nv.book_relu_backward(nv.book_pool_backward(pd, arg, r.shape, 2, 2, 2), mask)
        for got, want in zip(fused_grads, nv.book_conv_backward(dr, x, Wt, col, col_W, 1, pad)):
            assert_close(got, want)


def test_per_tap_gemms_run_where_they_pay():
    """DeepConvNet's conv2-conv4 take the per-tap GEMMs both ways, conv6 (7 of 9 wide columns
    real) forward, and backward in float32, conv5 forward in float32; SimpleConvNet's conv1
    (C = 1) and strided convolutions never."""
    from fastconv.kernels.conv_shift import use_shift
    for backward in (False, True):
        assert use_shift((100, 16, 28, 28), (16, 16, 3, 3), 1, 1, backward)
        assert use_shift((100, 16, 14, 14), (32, 16, 3, 3), 1, 1, backward)
        assert use_shift((100, 32, 14, 14), (32, 32, 3, 3), 1, 2, backward)
        assert use_shift((100, 64, 7, 7), (64, 64, 3, 3), 1, 1, backward) is not backward
        assert use_shift((100, 64, 7, 7), (64, 64, 3, 3), 1, 1, backward, np.float32)
        assert not use_shift((100, 32, 7, 7), (64, 32, 3, 3), 1, 1, backward)  # float64
        assert use_shift((100, 32, 7, 7), (64, 32, 3, 3), 1, 1, backward,
                         np.float32) is not backward
        assert not use_shift((100, 1, 28, 28), (30, 1, 5, 5), 1, 0, backward)
        assert not use_shift((100, 16, 28, 28), (16, 16, 3, 3), 2, 1, backward)


def test_deepconvnet_conv2_shape_matches_book():
    """The dispatcher's own choice at DeepConvNet's conv2 (per-tap GEMMs where SciPy is
    installed), a few samples, forward and backward."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 16, 28, 28))
    Wt = 0.1 * rng.standard_normal((16, 16, 3, 3))
    b = rng.standard_normal(16)
    ref, col, col_W = nv.book_conv_forward(x, Wt, b, 1, 1)
    dout = rng.standard_normal(ref.shape)
    assert_close(conv.conv_forward(x, Wt, b, 1, 1), ref)
    for got, want in zip(conv.conv_backward(dout, x, Wt, 1, 1),
                         nv.book_conv_backward(dout, x, Wt, col, col_W, 1, 1)):
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
    for a, c in [(out, ref), *zip(got, want)]:
        np.testing.assert_array_equal(np.isnan(a), np.isnan(c))
        np.testing.assert_array_equal(a[np.isinf(c)], c[np.isinf(c)])
        finite = np.isfinite(c)
        assert_close(a[finite], c[finite])
    assert not np.isnan(want[1]).all()  # some taps never meet the NaN
    assert not conv_blas._plan(x, Wt, None, 1, 1, np.float64, backward=True)[0]


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_nonfinite_finds_every_inf_and_nan(dt):
    """The per-tap backward's input test: any inf or NaN, wherever it sits (the loop's
    vector body or its tail); huge finite values whose sum overflows are finite."""
    from fastconv.kernels.conv_blas import _nonfinite
    a = np.full(37, np.finfo(dt).max / 2, dtype=dt)
    assert not _nonfinite(a)
    for i in (0, 17, 36):
        for v in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[i] = v
            assert _nonfinite(b)
    assert not _nonfinite(np.empty(0, dt))


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_stacked_convolutions_equal_the_fused_passes_one_by_one(dt):
    """conv_relu_stack_forward / _backward: the stages one after another on the threads in
    one go give each fused pass's outputs and gradients bit for bit (a per-tap stage, an
    unfold one, pooled and not, an odd sample count); and the books' loops agree."""
    if "blas_numba" not in conv._PATHS:
        pytest.skip("the fused passes need the Numba GEMM path (SciPy)")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((11, 16, 16, 16)).astype(dt)
    W1, W2 = rng.standard_normal((6, 16, 3, 3)).astype(dt), rng.standard_normal((4, 6, 3, 3))
    b1, b2 = rng.standard_normal(6).astype(dt), rng.standard_normal(4)
    W2, b2 = W2.astype(dt), b2.astype(dt)
    p1, i1, m1 = conv.conv_relu_pool_forward(x, W1, b1, 1, 1, dt)
    y2, m2 = conv.conv_relu_forward(p1, W2, b2, 1, 0, dt)
    st = conv.conv_relu_stack_forward(x, [(W1, b1, 1, 1, True, dt), (W2, b2, 1, 0, False, dt)])
    for got, want in zip([a for r in st for a in r if a is not None], [p1, i1, m1, y2, m2]):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert st[1][1] is None
    d = rng.standard_normal(y2.shape).astype(dt)
    dp1, dW2, db2 = conv.conv_relu_backward(d, m2, p1, W2, 1, 0, dt)
    want = [conv.conv_relu_pool_backward(dp1, i1, m1, x, W1, 1, 1, dt), (dp1, dW2, db2)]
    stages = [(x, W1, i1, m1, 1, 1, dt), (p1, W2, None, m2, 1, 0, dt)]
    for need_dx in (True, False):
        dx, grads = conv.conv_relu_stack_backward(d, stages, need_dx=need_dx)
        if need_dx:
            np.testing.assert_array_equal(dx, want[0][0])
        else:
            assert dx is None
        for (dW, db), (_, wdW, wdb) in zip(grads, want):
            np.testing.assert_array_equal(dW, wdW)
            np.testing.assert_array_equal(db, wdb)
    if dt == np.float64:  # and the book's own layers, by loops
        r, mask = nv.book_relu_forward(nv.loop_conv_forward(x, W1, b1, 1, 1))
        assert_close(st[0][0], nv.book_pool_forward(r, 2, 2, 2)[0])
        np.testing.assert_array_equal(st[0][2], mask)


def test_stacked_convolutions_check_their_stages():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 8, 8))
    W1, W2 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((2, 5, 3, 3))
    with pytest.raises(ValueError, match=r"conv_relu_stack_forward: x has 4 channels .* W "
                                         r"expects 5"):
        conv.conv_relu_stack_forward(x, [(W1, np.zeros(4), 1, 1, False, np.float64),
                                         (W2, np.zeros(2), 1, 1, False, np.float64)])
    with pytest.raises(ValueError, match="conv_relu_stack_forward: the stages must share one "
                                         "dtype"):
        conv.conv_relu_stack_forward(x, [(W1, np.zeros(4), 1, 1, False, np.float64),
                                         (W1, np.zeros(4), 1, 1, False, np.float32)])


@pytest.mark.parametrize("keep32", [False, True])
def test_runs_in_a_row_take_the_stacked_passes_with_the_layers_numbers(keep32):
    """forward_layers / backward_layers over Relu, conv-relu-pool (per-tap GEMMs), conv-relu
    (unfold), conv-relu-pool: the three runs go to the threads in one go each way, and every
    output, attribute, gradient and the dx handed to the first Relu equal the layers' own
    calls bit for bit, in float64 and in float32 mode."""
    from fastconv import config
    from fastconv.fusion import backward_layers, forward_layers
    from fastconv.kernels import conv
    if conv.conv_path((1, 1, 4, 4), (1, 1, 3, 3)) != "blas_numba":
        pytest.skip("the fused passes need the Numba GEMM path (SciPy)")
    dt = np.float32 if keep32 else np.float64
    rng = np.random.default_rng(11)
    x = rng.standard_normal((7, 16, 17, 16)).astype(dt)
    shapes = [(6, 16, 3, 3), (5, 6, 3, 3), (4, 5, 2, 2)]
    params = [(rng.standard_normal(s).astype(dt), rng.standard_normal(s[0]).astype(dt))
              for s in shapes]

    def build():
        (W1, b1), (W2, b2), (W3, b3) = params
        return [Relu(), Convolution(W1, b1, 1, 1), Relu(), Pooling(2, 2, 2),
                Convolution(W2, b2, 1, 1), Relu(), Convolution(W3, b3, 1, 0), Relu(),
                Pooling(2, 2, 2)]

    previous = config.keep_dtype()
    config.set_keep_dtype(keep32)
    calls = []
    real = conv.conv_relu_stack_forward, conv.conv_relu_stack_backward
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, func in zip(("conv_relu_stack_forward", "conv_relu_stack_backward"), real):
                mp.setattr(conv, name, lambda *a, _f=func, _n=name, **k: (
                    calls.append((_n, len(a[1]))), _f(*a, **k))[1])
            walked, plain = build(), build()
            got_dx = []
            first_backward = walked[0].backward
            walked[0].backward = lambda d: got_dx.append(first_backward(d)) or got_dx[-1]
            out = forward_layers(walked, x)
            ref = x
            for layer in plain:
                ref = layer.forward(ref)
            g = rng.standard_normal(ref.shape).astype(dt)
            backward_layers(walked, g.copy())
            for layer in reversed(plain):
                g = layer.backward(g)
    finally:
        config.set_keep_dtype(previous)
    assert calls == [("conv_relu_stack_forward", 3), ("conv_relu_stack_backward", 3)]
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == ref.dtype
    for a, c in zip(walked, plain):
        for attr in ("x", "mask", "arg_max", "dW", "db"):
            if hasattr(c, attr) and getattr(c, attr) is not None:
                want = getattr(c, attr)
                np.testing.assert_array_equal(getattr(a, attr), want)
                assert np.asarray(getattr(a, attr)).dtype == np.asarray(want).dtype
    # the first Relu got the stacked backward's dx: what it returned equals the layers' own
    assert len(got_dx) == 1
    np.testing.assert_array_equal(got_dx[0], g)


def test_runs_in_a_row_of_different_dtypes_are_not_stacked():
    """float32 mode with a float64 filter in the second run: the two runs compute in
    different dtypes, so the walkers hand them over one at a time (a stacked pass takes one
    dtype), with the layers' own numbers and dtypes."""
    from fastconv import config
    from fastconv.fusion import backward_layers, forward_layers
    from fastconv.kernels import conv
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 2, 10, 10)).astype(np.float32)
    W1, b1 = rng.standard_normal((4, 2, 3, 3)).astype(np.float32), np.zeros(4, np.float32)
    W2, b2 = rng.standard_normal((3, 4, 3, 3)), np.zeros(3)

    def build():
        return [Convolution(W1, b1, 1, 1), Relu(), Pooling(2, 2, 2), Convolution(W2, b2, 1, 1),
                Relu()]

    previous = config.keep_dtype()
    config.set_keep_dtype(True)
    stacked = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            real = conv.conv_relu_stack_forward
            mp.setattr(conv, "conv_relu_stack_forward",
                       lambda *a, **k: stacked.append(1) or real(*a, **k))
            walked, plain = build(), build()
            out = forward_layers(walked, x)
            ref = x
            for layer in plain:
                ref = layer.forward(ref)
            g = rng.standard_normal(ref.shape)
            backward_layers(walked, g.copy())
            for layer in reversed(plain):
                g = layer.backward(g)
    finally:
        config.set_keep_dtype(previous)
    assert not stacked
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == ref.dtype == np.float64
    for a, c in ((walked[0], plain[0]), (walked[3], plain[3])):
        np.testing.assert_array_equal(a.dW, c.dW)
        np.testing.assert_array_equal(a.db, c.db)
        assert a.dW.dtype == c.dW.dtype and a.db.dtype == c.db.dtype
