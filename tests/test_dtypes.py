"""float16 and integer data follow the book's NumPy promotion rules, against the NumPy twins.

The book's im2col allocates float64, so Convolution and Pooling give float64 for any input;
Relu keeps its input's dtype (``x.copy()``); Affine promotes as ``np.dot`` does. Numba has no
float16, so these check that nothing raises and that the numbers are the book's.
"""
import numpy as np
import pytest

from conftest import assert_close
import naive
from fastconv import layers
from fastconv.models import SimpleConvNet
from fastconv.optimizer import Adam
from fastconv.util import col2im, im2col

DTYPES = [np.float16, np.int64, np.int32, np.uint8]


def _x(dtype, shape=(2, 3, 7, 7), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_col2im(dtype):
    x = _x(dtype)
    col = im2col(x, 3, 3, 2, 1)
    expected = naive.book_im2col(x, 3, 3, 2, 1)
    assert col.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(col, expected)
    back = col2im(col.astype(dtype), x.shape, 3, 3, 2, 1)
    np.testing.assert_array_equal(back, naive.book_col2im(col.astype(dtype), x.shape, 3, 3, 2, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("param_dtype", [np.float64, np.float16])
def test_convolution(dtype, param_dtype):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((4, 3, 3, 3)).astype(param_dtype)
    b = rng.standard_normal(4).astype(param_dtype)
    x = _x(dtype)
    conv = layers.Convolution(W, b, stride=1, pad=1)
    out = conv.forward(x)
    ref, col, col_W = naive.book_conv_forward(x, W, b, 1, 1)
    assert out.dtype == ref.dtype == np.float64
    assert_close(out, ref)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    ref_dx, ref_dW, ref_db = naive.book_conv_backward(dout, x, W, col, col_W, 1, 1)
    for got, want in ((dx, ref_dx), (conv.dW, ref_dW), (conv.db, ref_db)):
        assert got.dtype == want.dtype
        assert_close(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling(dtype):
    x = _x(dtype, (2, 3, 6, 6))
    pool = layers.Pooling(2, 2, stride=2)
    out = pool.forward(x)
    ref, arg_max = naive.book_pool_forward(x, 2, 2, 2)
    assert out.dtype == ref.dtype == np.float64
    np.testing.assert_array_equal(out, ref)
    dout = np.arange(out.size, dtype=np.float64).reshape(out.shape)
    np.testing.assert_array_equal(pool.backward(dout),
                                  naive.book_pool_backward(dout, arg_max, x.shape, 2, 2, 2))


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.int8])
def test_relu_keeps_the_input_dtype(dtype):
    x = _x(dtype)
    relu = layers.Relu()
    out = relu.forward(x)
    ref, mask = naive.book_relu_forward(x)
    assert out.dtype == ref.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(relu.mask, mask)
    dout = _x(dtype, seed=2)
    expected = naive.book_relu_backward(dout.copy(), mask)
    dx = relu.backward(dout)
    assert dx is dout  # in place, as the book
    assert dx.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dx, expected)


def _twin_predict(params, x):
    """The book's SimpleConvNet.predict written with the NumPy twins."""
    out = naive.book_conv_forward(x, params["W1"], params["b1"])[0]
    out = naive.book_pool_forward(naive.book_relu_forward(out)[0], 2, 2, 2)[0]
    out = np.dot(out.reshape(out.shape[0], -1), params["W2"]) + params["b2"]
    return np.dot(naive.book_relu_forward(out)[0], params["W3"]) + params["b3"]


def test_half_float_network():
    # ch08's half_float_network: parameters rounded to float16 in place, float16 images
    np.random.seed(0)
    net = SimpleConvNet(input_dim=(1, 12, 12), conv_param={"filter_num": 4, "filter_size": 3,
                                                           "pad": 0, "stride": 1},
                        hidden_size=8, output_size=5, weight_init_std=0.3)
    x = np.random.rand(7, 1, 12, 12).astype(np.float16)
    for param in net.params.values():
        param[...] = param.astype(np.float16)
    y = net.predict(x)
    expected = _twin_predict(net.params, x)
    assert y.dtype == expected.dtype == np.float64
    assert_close(y, expected)
    t = np.argmax(expected, axis=1)
    assert net.accuracy(x, t) == 1.0


def test_affine_and_softmax_promote_as_numpy():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((6, 4)).astype(np.float16)
    b = np.zeros(4, np.float16)
    x = rng.standard_normal((5, 6)).astype(np.float16)
    affine = layers.Affine(W, b)
    out = affine.forward(x)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, np.dot(x, W) + b)
    loss = layers.SoftmaxWithLoss()
    value = loss.forward(out, np.array([0, 1, 2, 3, 0]))
    assert np.isfinite(value)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_adam_on_small_floats_follows_the_book(dtype):
    rng = np.random.default_rng(4)
    params = {"W": rng.standard_normal((3, 5)).astype(dtype)}
    twin = {"W": params["W"].copy()}
    ours, book = Adam(lr=0.01), naive.BookAdam(lr=0.01)
    for _ in range(3):
        grads = {"W": rng.standard_normal((3, 5)).astype(dtype)}
        ours.update(params, grads)
        book.update(twin, grads)
    assert params["W"].dtype == twin["W"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(params["W"], twin["W"])
