"""Layers: the book's outputs, attributes and dtypes, and numerical-gradient checks."""
import numpy as np
import pytest

import naive as nv
from conftest import assert_close
from fastconv import config
from fastconv.gradient import numerical_gradient
from fastconv.layers import (Affine, AvgPooling, BatchNormalization, Convolution, Dropout,
                             Pooling, Relu, Sigmoid, SoftmaxWithLoss)


@pytest.fixture
def float32_mode():
    config.set_keep_dtype(True)
    yield
    config.set_keep_dtype(False)


@pytest.mark.parametrize("shape, wshape, stride, pad", [
    ((3, 1, 10, 9), (5, 1, 5, 5), 1, 0),   # direct path (first layer of SimpleConvNet)
    ((2, 4, 8, 8), (6, 4, 3, 3), 1, 1),    # GEMM path (DeepConvNet-like)
    ((2, 3, 9, 7), (4, 3, 3, 2), 2, 2),    # stride, pad, non-square
])
def test_convolution_matches_book(shape, wshape, stride, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)  # the book's output is float64 anyway
    W = rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0])
    layer = Convolution(W, b, stride, pad)
    out = layer.forward(x)
    ref, col, col_W = nv.book_conv_forward(x, W, b, stride, pad)
    assert out.dtype == ref.dtype == np.float64
    assert_close(out, ref)
    assert layer.x is x
    np.testing.assert_array_equal(layer.col, col)
    np.testing.assert_array_equal(layer.col_W, col_W)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    rdx, rdW, rdb = nv.book_conv_backward(dout, x, W, col, col_W, stride, pad)
    assert (dx.dtype, layer.dW.dtype, layer.db.dtype) == (rdx.dtype, rdW.dtype, rdb.dtype)
    assert_close(dx, rdx)
    assert_close(layer.dW, rdW)
    assert_close(layer.db, rdb)


def test_pooling_matches_book_attributes_and_dtype():
    rng = np.random.default_rng(1)
    x = np.maximum(rng.standard_normal((4, 3, 8, 6)), 0).astype(np.float32)
    layer = Pooling(2, 2)  # the book's default stride=2
    out = layer.forward(x)
    ref, arg = nv.book_pool_forward(x, 2, 2, 2)
    assert out.dtype == ref.dtype == np.float64
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(layer.arg_max, arg)
    assert layer.arg_max.shape == arg.shape and layer.x is x
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(layer.backward(dout),
                                  nv.book_pool_backward(dout, arg, x.shape, 2, 2, 2))


def test_float32_mode_keeps_float32(float32_mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    conv = Convolution(rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                       np.zeros(4, np.float32), 1, 1)
    out = conv.forward(x)
    assert out.dtype == np.float32
    ref = nv.book_conv_forward(x.astype(np.float64), conv.W.astype(np.float64),
                               conv.b.astype(np.float64), 1, 1)[0]
    assert_close(out, ref, rtol=1e-5)
    dx = conv.backward(np.ones_like(out))
    assert dx.dtype == conv.dW.dtype == np.float32
    pool = Pooling(2, 2, 2)
    assert pool.forward(out).dtype == np.float32
    assert pool.backward(np.ones((2, 4, 4, 4), np.float32)).dtype == np.float32


def test_relu_mask_and_in_place_backward():
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, np.nan]])
    layer = Relu()
    out = layer.forward(x)
    np.testing.assert_array_equal(out, [[0, 0, 2], [3, 0, np.nan]])
    np.testing.assert_array_equal(layer.mask, x <= 0)
    dout = np.ones_like(x)
    dx = layer.backward(dout)
    assert dx is dout  # the book's quirk: backward writes into dout
    np.testing.assert_array_equal(dout, [[0, 0, 1], [1, 0, 1]])


def test_dropout_follows_the_book_draw():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.random.seed(3)
    expected_mask = np.random.rand(*x.shape) > 0.3
    np.random.seed(3)
    layer = Dropout(0.3)
    np.testing.assert_array_equal(layer.forward(x), x * expected_mask)
    np.testing.assert_array_equal(layer.mask, expected_mask)
    np.testing.assert_array_equal(layer.forward(x, train_flg=False), x * 0.7)  # not inverted
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), expected_mask * 1.0)


def test_affine_and_softmax_with_loss_hand_computed():
    x = np.arange(8.0).reshape(2, 1, 2, 2)
    W = np.arange(12.0).reshape(4, 3) / 10
    b = np.array([0.5, -0.5, 0.0])
    layer = Affine(W, b)
    out = layer.forward(x)
    np.testing.assert_allclose(out, x.reshape(2, 4) @ W + b, rtol=1e-15)
    dx = layer.backward(np.ones((2, 3)))
    assert dx.shape == x.shape
    np.testing.assert_allclose(layer.dW, x.reshape(2, 4).T @ np.ones((2, 3)))
    np.testing.assert_array_equal(layer.db, [2, 2, 2])
    sl = SoftmaxWithLoss()
    logits = np.array([[0.0, 0.0, np.log(2.0)]])
    loss = sl.forward(logits, np.array([2]))
    np.testing.assert_allclose(loss, -np.log(0.5 + 1e-7), rtol=1e-12)
    np.testing.assert_allclose(sl.backward(), [[0.25, 0.25, -0.5]], rtol=1e-12)
    sl.forward(logits, np.array([[0.0, 0.0, 1.0]]))  # one-hot labels
    np.testing.assert_allclose(sl.backward(), [[0.25, 0.25, -0.5]], rtol=1e-12)


def test_batchnorm_normalises_per_activation():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 2, 3, 3)) * 3 + 1
    D = 2 * 3 * 3
    bn = BatchNormalization(np.ones(D), np.zeros(D))
    out = bn.forward(x)
    flat = x.reshape(5, D)
    expected = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 10e-7)
    np.testing.assert_allclose(out.reshape(5, D), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, 0.1 * flat.mean(0), rtol=1e-12)


def test_batchnorm_running_statistics_and_test_mode():
    """Running mean and (biased) variance move by momentum 0.9 from zero per training batch;
    ``train_flg=False`` normalises with them and leaves them alone."""
    rng = np.random.default_rng(14)
    x1, x2 = rng.standard_normal((6, 3)) * 2 + 1, rng.standard_normal((6, 3)) - 3
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    bn = BatchNormalization(gamma, beta)
    bn.forward(x1)
    bn.forward(x2)
    mean = 0.9 * (0.1 * x1.mean(0)) + 0.1 * x2.mean(0)
    var = 0.9 * (0.1 * x1.var(0)) + 0.1 * x2.var(0)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)
    x3 = rng.standard_normal((4, 3))
    out = bn.forward(x3, train_flg=False)
    np.testing.assert_allclose(out, gamma * (x3 - mean) / np.sqrt(var + 1e-6) + beta,
                               rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)  # unchanged at test time
    # given running statistics (a trained network's) are used as they are
    given = BatchNormalization(gamma, beta, running_mean=np.ones(3), running_var=np.full(3, 4.))
    np.testing.assert_allclose(given.forward(x3, train_flg=False),
                               gamma * (x3 - 1) / np.sqrt(4 + 1e-6) + beta, rtol=1e-12)


def test_sigmoid_hand_values_and_numerical_gradient():
    layer = Sigmoid()
    np.testing.assert_allclose(layer.forward(np.array([[0.0, np.log(3.0), -np.log(3.0)]])),
                               [[0.5, 0.75, 0.25]], rtol=1e-15)
    np.testing.assert_allclose(layer.backward(np.ones((1, 3))), [[0.25, 0.1875, 0.1875]],
                               rtol=1e-15)
    x = np.random.default_rng(15).standard_normal((3, 4)) * 3

    def backward(R):
        layer.forward(x)
        return {"x": layer.backward(R)}

    _check_gradients(lambda: layer.forward(x), backward, {"x": x})


def _check_gradients(forward, backward, params, rtol=1e-6):
    """Loss = sum(out * R); compare analytic and central-difference gradients."""
    R = np.random.default_rng(5).standard_normal(forward().shape)

    def loss(_):
        return float(np.sum(forward() * R))

    analytic = backward(R.copy())
    for name, arr in params.items():
        num = numerical_gradient(loss, arr)
        np.testing.assert_allclose(analytic[name], num, rtol=rtol, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("wshape, stride, pad", [((3, 2, 3, 3), 1, 1), ((2, 2, 2, 3), 2, 0),
                                                 ((4, 1, 3, 3), 1, 0)])
def test_convolution_numerical_gradient(wshape, stride, pad):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, wshape[1], 6, 5))
    layer = Convolution(rng.standard_normal(wshape), rng.standard_normal(wshape[0]), stride, pad)

    def backward(R):
        layer.forward(x)
        dx = layer.backward(R)
        return {"x": dx, "W": layer.dW, "b": layer.db}

    _check_gradients(lambda: layer.forward(x), backward, {"x": x, "W": layer.W, "b": layer.b})


@pytest.mark.parametrize("cls, stride, pad", [(Pooling, 2, 0), (Pooling, 1, 1),
                                              (AvgPooling, 2, 0), (AvgPooling, 1, 1)])
def test_pooling_numerical_gradient(cls, stride, pad):
    # distinct values, spaced well above h = 1e-4, so the max never switches under the probe
    x = np.random.default_rng(7).permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) * 0.01
    layer = cls(2, 2, stride, pad)

    def backward(R):
        layer.forward(x)
        return {"x": layer.backward(R)}

    _check_gradients(lambda: layer.forward(x), backward, {"x": x})


def test_affine_and_batchnorm_numerical_gradient():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 2, 2, 2))
    aff = Affine(rng.standard_normal((8, 4)), rng.standard_normal(4))

    def aff_backward(R):
        aff.forward(x)
        return {"x": aff.backward(R), "W": aff.dW, "b": aff.db}

    _check_gradients(lambda: aff.forward(x), aff_backward, {"x": x, "W": aff.W, "b": aff.b})
    bn = BatchNormalization(rng.standard_normal(8) + 1, rng.standard_normal(8))

    def bn_backward(R):
        bn.forward(x)
        return {"x": bn.backward(R), "gamma": bn.dgamma, "beta": bn.dbeta}

    _check_gradients(lambda: bn.forward(x), bn_backward,
                     {"x": x, "gamma": bn.gamma, "beta": bn.beta}, rtol=1e-5)


@pytest.mark.parametrize("wshape", [(3, 1, 3, 3), (3, 4, 3, 3)])  # direct and GEMM paths
def test_convolution_backward_without_dx_sets_the_same_gradients(wshape):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, wshape[1], 6, 6))
    layer = Convolution(rng.standard_normal(wshape), rng.standard_normal(3), 1, 1)
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    dW, db = layer.dW.copy(), layer.db.copy()
    assert layer.backward(dout, need_dx=False) is None
    np.testing.assert_array_equal(layer.dW, dW)
    np.testing.assert_array_equal(layer.db, db)
    assert dx.shape == x.shape


def _assert_fused_backward(layers, ref_conv, ref_dx, d, nan=True):
    """``ConvRelu(*layers).backward(d)``, with and without dx, gives the separate layers' dx and
    the reference convolution's dW and db (NaN from the input in some of them when ``nan``;
    with a finite input, the per-tap GEMMs run where the shapes take them)."""
    from fastconv.fusion import ConvRelu
    if nan:
        assert np.isnan(ref_conv.dW).any() and not np.isnan(ref_conv.dW).all()
    else:
        assert np.isfinite(ref_conv.dW).all()
    for need_dx in (True, False):
        layers[0].dW = layers[0].db = None
        dx = ConvRelu(*layers).backward(d.copy(), need_dx=need_dx)
        if need_dx:
            np.testing.assert_array_equal(dx, ref_dx)
        else:
            assert dx is None
        np.testing.assert_array_equal(layers[0].dW, ref_conv.dW)
        np.testing.assert_array_equal(layers[0].db, ref_conv.db)
        assert layers[0].db.dtype == ref_conv.db.dtype


@pytest.mark.parametrize("shape, wshape, pad, nan", [
    ((4, 1, 28, 28), (6, 1, 5, 5), 0, True),    # SimpleConvNet's conv1 - relu - pool
    ((3, 2, 9, 11), (4, 2, 3, 3), 1, True),     # odd conv output: the last row and column unpooled
    # per-tap GEMMs, odd output; finite, else their backward takes the unfold
    ((3, 16, 15, 17), (4, 16, 3, 3), 1, False),
])
def test_fused_conv_relu_pool_equals_the_three_layers(shape, wshape, pad, nan):
    from fastconv.fusion import ConvRelu, forward_layers
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    x[0, 0, :3, :3] = -1.0  # all-zero windows after ReLU: the first cell wins
    if nan:
        x[-1, -1, 2, 4] = np.nan
    W = rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0])
    ref_layers = [Convolution(W, b, 1, pad), Relu(), Pooling(2, 2, 2)]
    ref = ref_layers[2].forward(ref_layers[1].forward(ref_layers[0].forward(x)))
    layers = [Convolution(W, b, 1, pad), Relu(), Pooling(2, 2, 2)]
    out = ConvRelu(*layers).forward(x)
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == ref.dtype
    assert layers[0].x is x
    np.testing.assert_array_equal(layers[1].mask, ref_layers[1].mask)
    np.testing.assert_array_equal(layers[2].arg_max, ref_layers[2].arg_max)
    W0 = W.copy()
    W += 1.0  # an optimizer step in place: pool.x is still the forward's
    np.testing.assert_array_equal(layers[2].x, ref_layers[2].x)
    W[...] = W0
    d1 = d2 = rng.standard_normal(out.shape)
    for fused, plain in zip(reversed(layers), reversed(ref_layers), strict=True):
        d1, d2 = fused.backward(d1.copy()), plain.backward(d2.copy())
        np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(layers[0].dW, ref_layers[0].dW)
    np.testing.assert_array_equal(layers[0].db, ref_layers[0].db)
    # the fused backward: same dx, dW, db (the same GEMMs in the same order: bit for bit,
    # NaN from the input included), without the intermediate gradients
    d = rng.standard_normal(out.shape)
    ref_dx = ref_layers[0].backward(ref_layers[1].backward(ref_layers[2].backward(d.copy())))
    _assert_fused_backward(layers, ref_layers[0], ref_dx, d, nan)
    # the walker fuses the run and leaves the other layers alone
    walked = [Convolution(W, b, 1, pad), Relu(), Pooling(2, 2, 2), Relu()]
    np.testing.assert_array_equal(forward_layers(walked, x), np.maximum(ref, 0))


@pytest.mark.parametrize("shape, wshape, pad, nan", [
    ((3, 16, 14, 14), (8, 16, 3, 3), 1, True),   # DeepConvNet's conv3 - relu (per-tap GEMMs
    ((3, 16, 14, 14), (8, 16, 3, 3), 1, False),  # forward; backward only when finite)
    ((3, 2, 9, 11), (4, 2, 3, 3), 1, True),      # unfold + GEMM
])
def test_fused_conv_relu_equals_the_two_layers(shape, wshape, pad, nan):
    """Convolution -> Relu in one pass: the same output, mask, dW, db and dx bit for bit (the
    same GEMMs in the same order), NaN from the input included; the walkers fuse the pairs
    that no pooling follows."""
    from fastconv.fusion import ConvRelu, backward_layers, forward_layers
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    if nan:
        x[-1, -1, 2, 4] = np.nan
    W = rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0])
    ref_layers = [Convolution(W, b, 1, pad), Relu()]
    ref = ref_layers[1].forward(ref_layers[0].forward(x))
    layers = [Convolution(W, b, 1, pad), Relu()]
    out = ConvRelu(*layers).forward(x)
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == ref.dtype and layers[0].x is x
    np.testing.assert_array_equal(layers[1].mask, ref_layers[1].mask)
    d = rng.standard_normal(out.shape)
    ref_dx = ref_layers[0].backward(ref_layers[1].backward(d.copy()))
    _assert_fused_backward(layers, ref_layers[0], ref_dx, d, nan)
    # walkers over conv - relu - conv - relu: both pairs, the first without dx
    W2 = rng.standard_normal((5, wshape[0], 3, 3))
    b2 = rng.standard_normal(5)
    walked = [Convolution(W, b, 1, pad), Relu(), Convolution(W2, b2, 1, 1), Relu()]
    plain = [Convolution(W, b, 1, pad), Relu(), Convolution(W2, b2, 1, 1), Relu()]
    y = x
    for layer in plain:
        y = layer.forward(y)
    np.testing.assert_array_equal(forward_layers(walked, x), y)
    g = rng.standard_normal(y.shape)
    backward_layers(walked, g.copy())
    for layer in reversed(plain):
        g = layer.backward(g)
    for a, c in ((walked[0], plain[0]), (walked[2], plain[2])):
        np.testing.assert_array_equal(a.dW, c.dW)
        np.testing.assert_array_equal(a.db, c.db)
