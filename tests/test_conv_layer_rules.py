"""The convolution's gradient dtypes and the fused ReLU's mask, against the book's layers."""
import numpy as np
import pytest

import naive as nv
from conftest import assert_close
from fastconv.layers import Convolution, Pooling, Relu


@pytest.mark.parametrize("fused", [False, True])
def test_convolution_db_has_douts_dtype_as_the_book(fused):
    """The book's db is ``np.sum(dout)``: float32 for a float32 dout even in the default
    float64 mode, where dW and dx are float64; the fused pass keeps the same rule."""
    from fastconv.fusion import ConvRelu
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 3, 6, 6))
    W = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    layer, relu = Convolution(W, b, 1, 1), Relu()
    ref_out, col, col_W = nv.book_conv_forward(x, W, b, 1, 1)
    dout = rng.standard_normal(ref_out.shape).astype(np.float32)
    if fused:
        ConvRelu(layer, relu).forward(x)
        ConvRelu(layer, relu).backward(dout)
        dout = np.where(ref_out <= 0, 0, dout).astype(np.float32)
    else:
        layer.forward(x)
        layer.backward(dout)
    _, dW, db = nv.book_conv_backward(dout, x, W, col, col_W, 1, 1)
    assert layer.db.dtype == db.dtype == np.float32
    assert layer.dW.dtype == dW.dtype == np.float64
    # the book adds the float32 values in float32: its rounding, scaled by what is summed
    np.testing.assert_allclose(layer.db, db, rtol=0, atol=1e-6 * np.abs(dout).sum())
    np.testing.assert_allclose(layer.dW, dW, rtol=1e-12)


@pytest.mark.parametrize("pool", [False, True])
def test_fused_relu_masks_exact_zeros_as_the_book(pool):
    """A convolution output of exactly 0 (an all-zero sample, zero bias) is masked, as the
    book's ``x <= 0``, and no gradient passes there."""
    from fastconv.fusion import ConvRelu
    rng = np.random.default_rng(22)
    x = rng.standard_normal((3, 2, 8, 8))
    x[1] = 0
    W = rng.standard_normal((4, 2, 3, 3))
    b = np.zeros(4)
    layers = [Convolution(W, b, 1, 1), Relu()] + ([Pooling(2, 2, 2)] if pool else [])
    out = ConvRelu(*layers).forward(x)
    ref, col, col_W = nv.book_conv_forward(x, W, b, 1, 1)
    r, mask = nv.book_relu_forward(ref)
    assert mask[1].all() and not mask[0].all()
    np.testing.assert_array_equal(layers[1].mask, mask)
    d = rng.standard_normal(out.shape)
    dx = ConvRelu(*layers).backward(d)
    if pool:
        d = nv.book_pool_backward(d, nv.book_pool_forward(r, 2, 2, 2)[1], r.shape, 2, 2, 2)
    want = nv.book_conv_backward(nv.book_relu_backward(d, mask), x, W, col, col_W, 1, 1)
    for got, w in zip((dx, layers[0].dW, layers[0].db), want, strict=True):
        assert_close(got, w)
