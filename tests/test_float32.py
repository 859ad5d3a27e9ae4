"""float32 mode against the float64 twins of tests/naive.py, run on the same float32 inputs.

Every layer, the fused passes of ``fastconv.fusion`` and both networks compute in float32;
the references compute in float64 from the very same float32 values, so what remains is
float32 rounding, bounded by ``F32_RTOL`` (conftest). The data avoid ReLU kinks and pooling
near-ties (checked): there a rounding error could flip a decision and move a gradient by O(1).
"""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import naive as nv
from conftest import F32_RTOL, assert_close
from fastconv import config, fusion
from fastconv.layers import (Affine, AvgPooling, BatchNormalization, Convolution, Dropout,
                             Pooling, Relu, Sigmoid, SoftmaxWithLoss)
from fastconv.models import DeepConvNet, SimpleConvNet
from fastconv.optimizer import Adam
from synthetic import normalized, synthetic_digits


@pytest.fixture
def float32_mode():
    previous = config.keep_dtype()
    config.set_keep_dtype(True)
    yield
    config.set_keep_dtype(previous)


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def wide(a):
    """The float64 values of a float32 array (exact)."""
    return np.asarray(a, dtype=np.float64)


def assert_f32(actual, expected):
    assert np.asarray(actual).dtype == np.float32
    assert_close(actual, expected, rtol=F32_RTOL)


def assert_clear_of_kinks(relu_inputs=(), pool_inputs=()):
    """No ReLU input within 1e-5 of its array's scale from zero and no runner-up within
    1e-5 of a positive 2x2 maximum: float32 rounding (~1e-7 of the scale here) cannot flip
    them. Fails, asking for other data, where a seed puts one there."""
    for a in relu_inputs:
        clear = np.min(np.abs(a)) > 1e-5 * np.max(np.abs(a))
        assert clear, "data on a ReLU kink: take another seed"
    for r in pool_inputs:
        windows = np.sort(nv.book_im2col(r, 2, 2, 2, 0).reshape(-1, 4), axis=1)
        top, second = windows[:, -1], windows[:, -2]
        gap = (top - second)[top > 0]
        clear = gap.size == 0 or gap.min() > 1e-5 * np.max(np.abs(r))
        assert clear, "data on a pooling near-tie: take another seed"


# ------------------------------------------------------------------------------ layers ----
@pytest.mark.parametrize("shape, wshape, stride, pad", [
    ((3, 1, 10, 9), (5, 1, 5, 5), 1, 0),
    ((2, 4, 8, 8), (6, 4, 3, 3), 1, 1),
    ((2, 3, 9, 7), (4, 3, 3, 2), 2, 2),
    ((2, 16, 14, 14), (8, 16, 3, 3), 1, 1),   # DeepConvNet-like
])
def test_convolution(float32_mode, shape, wshape, stride, pad):
    rng = np.random.default_rng(0)
    x, W, b = f32(rng, *shape), f32(rng, *wshape), f32(rng, wshape[0])
    layer = Convolution(W, b, stride, pad)
    out = layer.forward(x)
    ref, col, col_W = nv.book_conv_forward(wide(x), wide(W), wide(b), stride, pad)
    assert_f32(out, ref)
    dout = f32(rng, *out.shape)
    dx = layer.backward(dout)
    rdx, rdW, rdb = nv.book_conv_backward(wide(dout), wide(x), wide(W), col, col_W, stride, pad)
    for got, want in zip((dx, layer.dW, layer.db), (rdx, rdW, rdb), strict=True):
        assert_f32(got, want)


@pytest.mark.parametrize("cls, pool, stride, pad", [
    (Pooling, 2, 2, 0), (Pooling, 3, 1, 1), (AvgPooling, 2, 2, 0), (AvgPooling, 3, 2, 1)])
def test_pooling(float32_mode, cls, pool, stride, pad):
    rng = np.random.default_rng(1)
    x = f32(rng, 3, 4, 9, 8)
    layer = cls(pool, pool, stride, pad)
    out = layer.forward(x)
    dout = f32(rng, *out.shape)
    dx = layer.backward(dout)
    if cls is Pooling:
        ref, arg_max = nv.loop_maxpool_forward(x, pool, pool, stride, pad)
        np.testing.assert_array_equal(layer.arg_max, arg_max)  # a max of floats is exact
        rdx = nv.loop_maxpool_backward(wide(dout), arg_max, x.shape, pool, pool, stride, pad)
    else:
        ref = nv.loop_avgpool_forward(x, pool, pool, stride, pad)
        rdx = nv.loop_avgpool_backward(wide(dout), x.shape, pool, pool, stride, pad)
    assert_f32(out, ref)
    assert_f32(dx, rdx)


def test_relu(float32_mode):
    x = f32(np.random.default_rng(2), 4, 5)
    layer = Relu()
    out = layer.forward(x)
    ref, mask = nv.book_relu_forward(wide(x))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)
    dout = f32(np.random.default_rng(3), 4, 5)
    expected = nv.book_relu_backward(wide(dout), mask)
    dx = layer.backward(dout)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, expected)


def test_affine(float32_mode):
    rng = np.random.default_rng(4)
    x, W, b = f32(rng, 3, 2, 4, 4), f32(rng, 32, 7), f32(rng, 7)
    layer = Affine(W, b)
    assert_f32(layer.forward(x), nv.book_affine_forward(wide(x), wide(W), wide(b)))
    dout = f32(rng, 3, 7)
    dx = layer.backward(dout)
    rdx, rdW, rdb = nv.book_affine_backward(wide(dout), wide(x), wide(W))
    for got, want in zip((dx, layer.dW, layer.db), (rdx, rdW, rdb), strict=True):
        assert_f32(got, want)


def test_softmax_with_loss(float32_mode):
    rng = np.random.default_rng(5)
    x = f32(rng, 6, 10) * 3
    t = rng.integers(0, 10, 6)
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, t)
    ref_loss, ref_dx = nv.book_softmax_loss(wide(x), t)
    assert np.asarray(loss).dtype == np.float32
    assert loss == pytest.approx(ref_loss, rel=F32_RTOL)
    assert_f32(layer.backward(), ref_dx)
    layer.forward(x, np.eye(10, dtype=np.float32)[t])  # one-hot labels: the same gradient
    assert_f32(layer.backward(), ref_dx)


def test_sigmoid(float32_mode):
    rng = np.random.default_rng(6)
    x = f32(rng, 5, 3) * 4
    layer = Sigmoid()
    ref = nv.book_sigmoid(wide(x))
    assert_f32(layer.forward(x), ref)
    dout = f32(rng, 5, 3)
    assert_f32(layer.backward(dout), wide(dout) * ref * (1 - ref))


@pytest.mark.parametrize("shape", [(8, 6), (5, 2, 3, 3)])
def test_batch_normalization(float32_mode, shape):
    rng = np.random.default_rng(7)
    x = f32(rng, *shape) * 3 + 1
    D = int(np.prod(shape[1:]))
    gamma, beta = f32(rng, D) + 1, f32(rng, D)
    layer = BatchNormalization(gamma, beta)
    ref, mean, var = nv.batchnorm_forward(wide(x), wide(gamma), wide(beta))
    assert_f32(layer.forward(x), ref)
    assert_f32(layer.running_mean, 0.1 * mean)
    assert_f32(layer.running_var, 0.1 * var)
    dout = f32(rng, *shape)
    dx = layer.backward(dout)
    rdx, rdgamma, rdbeta = nv.batchnorm_backward(wide(dout), wide(x), wide(gamma))
    for got, want in zip((dx, layer.dgamma, layer.dbeta), (rdx, rdgamma, rdbeta), strict=True):
        assert_f32(got, want)
    # test time: the running statistics
    expected = wide(gamma) * (wide(x).reshape(shape[0], -1) - 0.1 * mean) / np.sqrt(
        0.1 * var + 10e-7) + wide(beta)
    assert_f32(layer.forward(x, train_flg=False), expected.reshape(shape))


def test_dropout(float32_mode):
    x = f32(np.random.default_rng(8), 4, 6)
    np.random.seed(9)
    mask = np.random.rand(4, 6) > 0.3
    np.random.seed(9)
    layer = Dropout(0.3)
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, wide(x) * mask)
    assert_f32(layer.forward(x, train_flg=False), wide(x) * 0.7)
    dout = f32(np.random.default_rng(10), 4, 6)
    np.testing.assert_array_equal(layer.backward(dout), wide(dout) * mask)


# ------------------------------------------------------ drawn shapes, both dtypes ----
def _conv_case(N, C, H, W, FN, FH, FW, stride, pad, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C, H, W)).astype(dtype),
            rng.standard_normal((FN, C, FH, FW)).astype(dtype),
            rng.standard_normal(FN).astype(dtype), stride, pad)


@st.composite
def conv_layer_case(draw, max_n=3, max_c=4, max_size=9):
    """Input, filter, bias, stride and pad of a Convolution layer: float32 or float64, batch
    sizes from 0, any filter that fits the padded input."""
    N, C = draw(st.integers(0, max_n)), draw(st.integers(1, max_c))
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    pad = draw(st.integers(0, 3))
    FH, FW = draw(st.integers(1, H + 2 * pad)), draw(st.integers(1, W + 2 * pad))
    return _conv_case(N, C, H, W, draw(st.integers(1, 4)), FH, FW, draw(st.integers(1, 4)),
                      pad, draw(st.sampled_from([np.float32, np.float64])),
                      draw(st.integers(0, 2 ** 32 - 1)))


def _check_conv_layer(case):
    """Forward and backward of a Convolution in float32 mode against the book's NumPy in
    float64: float32 within F32_RTOL, float64 within 1e-12."""
    x, W, b, stride, pad = case
    rtol = F32_RTOL if x.dtype == np.float32 else 1e-12
    previous = config.keep_dtype()
    config.set_keep_dtype(True)
    try:
        layer = Convolution(W, b, stride, pad)
        out = layer.forward(x)
        dout = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
        dx = layer.backward(dout)
    finally:
        config.set_keep_dtype(previous)
    ref, col, col_W = nv.book_conv_forward(wide(x), wide(W), wide(b), stride, pad)
    grads = nv.book_conv_backward(wide(dout), wide(x), wide(W), col, col_W, stride, pad)
    for got, want in zip((out, dx, layer.dW, layer.db), (ref, *grads), strict=True):
        assert got.dtype == x.dtype
        assert_close(got, want, rtol=rtol)


@given(conv_layer_case())
@example(_conv_case(0, 2, 6, 5, 3, 3, 3, 1, 1, np.float32))   # an empty batch
@example(_conv_case(1, 1, 5, 5, 2, 5, 5, 1, 0, np.float32))   # one sample, one output cell
@example(_conv_case(2, 3, 7, 8, 2, 2, 2, 4, 0, np.float32))   # stride beyond the filter
@example(_conv_case(2, 2, 4, 3, 3, 4, 3, 1, 3, np.float64))   # pad = filter - 1 ("full")
@example(_conv_case(1, 2, 3, 3, 2, 9, 9, 2, 3, np.float32))   # filter = padded input
def test_convolution_layer_on_drawn_shapes(case):
    _check_conv_layer(case)


@pytest.mark.slow
@given(conv_layer_case(max_n=8, max_c=16, max_size=32))
def test_convolution_layer_on_larger_drawn_shapes(case):
    _check_conv_layer(case)


# ----------------------------------------------------------------- the fused passes ----
class _Probe:
    """An identity layer in front of the convolution, which keeps the dx handed to it (the
    walk skips a first convolution's dx, nobody reading it)."""

    def __init__(self):
        self.dout = None

    def forward(self, x):
        return x

    def backward(self, dout):
        self.dout = dout
        return dout


@pytest.mark.parametrize("pooled", [True, False])
@pytest.mark.parametrize("shape, wshape, pad, seed", [
    ((2, 1, 28, 28), (6, 1, 5, 5), 0, 1),     # SimpleConvNet's first layers
    ((2, 16, 14, 14), (8, 16, 3, 3), 1, 1),   # DeepConvNet's
])
def test_fused_passes(float32_mode, pooled, shape, wshape, pad, seed):
    rng = np.random.default_rng(seed)
    x, W, b = f32(rng, *shape), f32(rng, *wshape) * 0.3, f32(rng, wshape[0]) * 0.1
    probe = _Probe()
    layers = [probe, Convolution(W, b, 1, pad), Relu()] + ([Pooling(2, 2, 2)] if pooled else [])
    out = fusion.forward_layers(layers, x)
    c, col, col_W = nv.book_conv_forward(wide(x), wide(W), wide(b), 1, pad)
    r = np.maximum(c, 0)
    ref = nv.book_pool_forward(r, 2, 2, 2)[0] if pooled else r
    assert_clear_of_kinks([c], [r] if pooled else [])
    assert_f32(out, ref)
    dout = f32(rng, *out.shape)
    fusion.backward_layers(layers, dout.copy())
    dr = nv.book_pool_backward(wide(dout), nv.book_pool_forward(r, 2, 2, 2)[1], r.shape,
                               2, 2, 2) if pooled else wide(dout)
    rdx, rdW, rdb = nv.book_conv_backward(dr * (c > 0), wide(x), wide(W), col, col_W, 1, pad)
    conv = layers[1]
    for got, want in zip((probe.dout, conv.dW, conv.db), (rdx, rdW, rdb), strict=True):
        assert_f32(got, want)


# -------------------------------------------------------------------------- networks ----
def test_simple_convnet(float32_mode):
    rng = np.random.default_rng(5)
    net = SimpleConvNet(dtype=np.float32)
    for key, val in net.params.items():  # trained-looking weights: every layer matters
        val[...] = rng.standard_normal(val.shape) * (0.2 if key == 'W1' else 0.05)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    t = np.array([3, 1])
    params = {k: wide(v) for k, v in net.params.items()}
    trace = {"relu": [], "pool": []}
    ref_loss, ref_grads = nv.simple_convnet_grads(params, wide(x), t, trace)
    assert_clear_of_kinks(trace["relu"], trace["pool"])
    assert_f32(net.predict(x), trace["scores"])
    loss = net.loss(x, t)
    assert np.asarray(loss).dtype == np.float32
    assert loss == pytest.approx(ref_loss, rel=F32_RTOL)
    grads = net.gradient(x, t)
    assert sorted(grads) == sorted(ref_grads)
    for key, ref in ref_grads.items():
        assert_f32(grads[key], ref)


def _small_deep(dtype):
    def cp(n, pad=1):
        return {'filter_num': n, 'filter_size': 3, 'pad': pad, 'stride': 1}
    # 16x16 -> pool 8 -> pad 2: 10 -> pool 5 -> pool 2; the channel counts of the book's
    return DeepConvNet(input_dim=(1, 16, 16), conv_param_1=cp(16), conv_param_2=cp(16),
                       conv_param_3=cp(32), conv_param_4=cp(32, 2), conv_param_5=cp(64),
                       conv_param_6=cp(64), hidden_size=50, output_size=10, dtype=dtype)


def test_deep_convnet(float32_mode):
    rng = np.random.default_rng(2)
    np.random.seed(2)
    net = _small_deep(np.float32)
    for key, val in net.params.items():  # biases off zero: no padded input on a ReLU kink
        if key[0] == 'b':
            val[...] = rng.random(val.shape) * 0.1
    x = rng.random((2, 1, 16, 16), dtype=np.float32)
    t = np.array([7, 2])
    params = {k: wide(v) for k, v in net.params.items()}
    pads = [layer.pad for layer in net.layers if isinstance(layer, Convolution)]
    np.random.seed(13)
    grads = net.gradient(x, t)  # draws the two dropout masks, in the order of the layers
    np.random.seed(13)
    masks = [np.random.rand(2, 50) > 0.5, np.random.rand(2, 10) > 0.5]
    trace = {"relu": [], "pool": []}
    ref_loss, ref_grads = nv.deep_convnet_grads(params, wide(x), t, pads, masks, trace)
    assert_clear_of_kinks(trace["relu"], trace["pool"])
    assert sorted(grads) == sorted(ref_grads)
    for key, ref in ref_grads.items():
        assert_f32(grads[key], ref)
    np.random.seed(13)
    assert net.loss(x, t) == pytest.approx(ref_loss, rel=F32_RTOL)
    # test time: dropout scales by 1 - 0.5 instead of masking
    halves = [np.full((2, 50), 0.5), np.full((2, 10), 0.5)]
    nv.deep_convnet_grads(params, wide(x), t, pads, halves, trace)
    assert_f32(net.predict(x, train_flg=False), trace["scores"])


# ------------------------------------------------------------------- training run ----
def _train(dtype, x, t, x_test, t_test):
    """Two epochs of the book's loop (Adam, batches of 100 drawn with np.random.choice),
    seeded; returns the test accuracy."""
    np.random.seed(0)
    net = SimpleConvNet(conv_param={'filter_num': 10, 'filter_size': 5, 'pad': 0, 'stride': 1},
                        hidden_size=50, dtype=dtype)  # smaller than the book's: faster
    optimizer = Adam()
    for _ in range(2 * len(x) // 100):
        batch = np.random.choice(len(x), 100)
        optimizer.update(net.params, net.gradient(x[batch], t[batch]))
    assert all(p.dtype == dtype for p in net.params.values())
    return net.accuracy(x_test, t_test)


def test_float32_training_lands_with_float64(float32_mode):
    images, labels = synthetic_digits(6000, seed=0)
    accuracy = {}
    for dtype in (np.float32, np.float64):
        config.set_keep_dtype(dtype == np.float32)
        x = normalized(images, dtype)
        accuracy[dtype] = _train(dtype, x[:5000], labels[:5000], x[5000:], labels[5000:])
    assert accuracy[np.float64] > 0.3  # it learned: chance is 0.1
    assert abs(accuracy[np.float32] - accuracy[np.float64]) <= 0.01, accuracy
