"""Fused runs of the book's layers, and the forward/backward walks the networks use.

``forward_layers`` and ``backward_layers`` are the book's ``predict`` loop and gradient loop
over a list of layers, with two runs done in one pass where the layers allow it:
``Convolution -> Relu -> Pooling(2, 2, stride=2)`` (:func:`conv_relu_pool`) and, elsewhere,
``Convolution -> Relu`` (:func:`conv_relu`). The layers are left as the separate calls would
leave them (``x``, ``mask``, ``arg_max``, ``dW``, ``db``), and the numbers are the same.
"""
import numpy as np

from .kernels import activation, conv
from .layers import Convolution, Dropout, Pooling, Relu, _compute_dtype

__all__ = ["conv_relu_pool", "conv_relu_pool_backward", "conv_relu", "conv_relu_backward",
           "forward_layers", "backward_layers"]


def _fusable(conv_layer, relu, pool, x=None):
    """Whether the three layers can run as one fused pass on the convolution's input ``x``
    (default: ``conv_layer.x``, for backward; read only once the types match, since reading
    ``.x`` of a Pooling after a fused forward recomputes it)."""
    # exact types: a subclass may override forward; the fused kernel calls its GEMMs from
    # Numba, so it follows the convolution path
    if not (type(conv_layer) is Convolution and type(relu) is Relu and type(pool) is Pooling
            and (pool.pool_h, pool.pool_w, pool.stride, pool.pad) == (2, 2, 2, 0)):
        return False
    if x is None:
        x = conv_layer.x
    return conv.conv_path(np.shape(x), np.shape(conv_layer.W), conv_layer.stride) == "blas_numba"


def conv_relu_pool(conv_layer, relu, pool, x):
    """``pool.forward(relu.forward(conv_layer.forward(x)))`` in one pass when the three are
    a :class:`Convolution`, a :class:`Relu` and a 2x2, stride-2 :class:`Pooling` (the book's
    networks), else those three calls.

    Same output, and the layers are left ready for ``backward`` as after the three calls
    (``conv_layer.x``, ``relu.mask``, ``pool.arg_max``). Neither the convolution's output
    nor the ReLU's is written out: ``pool.x`` is recomputed, from ``x`` and a copy of the
    weights, if it is read. SimpleConvNet step, float64: 2-3 ms faster (bench/README).
    """
    if not _fusable(conv_layer, relu, pool, x):
        return pool.forward(relu.forward(conv_layer.forward(x)))
    return _fused_forward(conv_layer, relu, pool, x)


def _fused_forward(conv_layer, relu, pool, x):
    W, b, stride, pad = conv_layer.W, conv_layer.b, conv_layer.stride, conv_layer.pad
    dt = _compute_dtype(np.asarray(x), W)
    out, idx, mask = conv.conv_relu_pool_forward(x, W, b, stride, pad, dtype=dt)
    conv_layer.x = x
    relu.mask = mask
    pool._idx = idx
    W, b = np.array(W, copy=True), np.array(b, copy=True)  # the optimizer updates in place
    pool._x, pool._x_shape = None, mask.shape
    pool._x_recipe = lambda: activation.relu_forward(
        conv.conv_forward(x, W, b, stride, pad, dtype=dt))[0]
    return out


def conv_relu_pool_backward(conv_layer, relu, pool, dout, need_dx=True):
    """``conv_layer.backward(relu.backward(pool.backward(dout)), need_dx)`` in one pass for
    the runs :func:`conv_relu_pool` fuses: the same ``dW``, ``db`` and dx, without writing
    the two intermediate (N, FN, out_h, out_w) gradients."""
    if not _fusable_backward(conv_layer, relu, pool):
        return conv_layer.backward(relu.backward(pool.backward(dout)), need_dx=need_dx)
    return _fused_backward(conv_layer, relu, pool, dout, need_dx)


def _fusable_backward(conv_layer, relu, pool):
    # also what the fused backward reads: the forward's int8 argmax planes and mask (a
    # book-layout arg_max set by hand goes the layer-by-layer way)
    if not _fusable(conv_layer, relu, pool):
        return False
    idx = pool._idx
    return (isinstance(idx, np.ndarray) and idx.dtype == np.int8 and idx.ndim == 4
            and isinstance(relu.mask, np.ndarray) and relu.mask.shape == pool._x_shape)


def _fused_backward(conv_layer, relu, pool, dout, need_dx):
    idx = pool._idx
    dt = _compute_dtype(conv_layer.x, conv_layer.W)
    dx, dW, db = conv.conv_relu_pool_backward(dout, idx, relu.mask, conv_layer.x, conv_layer.W,
                                              conv_layer.stride, conv_layer.pad, dtype=dt,
                                              need_dx=need_dx)
    conv_layer._set_grads(dW, db, pool._dtype(dout))  # the dtype pool.backward returns
    return dx


def _pair_fusable(conv_layer, relu, x=None):
    """Whether a Convolution and a Relu can run as one pass on ``x`` (default:
    ``conv_layer.x``, for backward)."""
    if not (type(conv_layer) is Convolution and type(relu) is Relu):
        return False
    if x is None:
        x = conv_layer.x
    return conv.conv_path(np.shape(x), np.shape(conv_layer.W), conv_layer.stride) == "blas_numba"


def conv_relu(conv_layer, relu, x):
    """``relu.forward(conv_layer.forward(x))`` in one pass when the two are a
    :class:`Convolution` and a :class:`Relu` (DeepConvNet's unpooled convolutions), else
    those two calls. Same output; ``conv_layer.x`` and ``relu.mask`` set as by the calls."""
    if not _pair_fusable(conv_layer, relu, x):
        return relu.forward(conv_layer.forward(x))
    return _pair_forward(conv_layer, relu, x)


def _pair_forward(conv_layer, relu, x):
    dt = _compute_dtype(np.asarray(x), conv_layer.W)
    out, relu.mask = conv.conv_relu_forward(x, conv_layer.W, conv_layer.b, conv_layer.stride,
                                            conv_layer.pad, dtype=dt)
    conv_layer.x = x
    return out


def conv_relu_backward(conv_layer, relu, dout, need_dx=True):
    """``conv_layer.backward(relu.backward(dout), need_dx)`` in one pass for the pairs
    :func:`conv_relu` fuses: the same ``dW``, ``db`` and dx (``dout`` is not written, where
    the book's ``Relu.backward`` zeroes it in place)."""
    if not _pair_fusable_backward(conv_layer, relu, dout):
        return conv_layer.backward(relu.backward(dout), need_dx=need_dx)
    return _pair_backward(conv_layer, relu, dout, need_dx)


def _pair_fusable_backward(conv_layer, relu, dout):
    if not _pair_fusable(conv_layer, relu):  # first: relu may be any layer
        return False
    mask = relu.mask
    return (isinstance(mask, np.ndarray) and mask.dtype == np.bool_
            and mask.shape == np.shape(dout))


def _pair_backward(conv_layer, relu, dout, need_dx):
    dt = _compute_dtype(conv_layer.x, conv_layer.W)
    dx, dW, db = conv.conv_relu_backward(dout, relu.mask, conv_layer.x, conv_layer.W,
                                         conv_layer.stride, conv_layer.pad, dtype=dt,
                                         need_dx=need_dx)
    conv_layer._set_grads(dW, db, np.asarray(dout).dtype)  # relu.backward keeps dout's
    return dx


def backward_layers(layers, dout):
    """The book's backward loop over ``layers`` in reverse order, with the runs
    :func:`forward_layers` fuses done by :func:`conv_relu_pool_backward` and
    :func:`conv_relu_backward`. The first layer's
    dx is not needed (nothing reads it), so a Convolution there skips it; returns None."""
    layers = list(layers)
    i = len(layers) - 1
    while i >= 0:
        if i >= 2 and _fusable_backward(*layers[i - 2:i + 1]):
            dout = _fused_backward(*layers[i - 2:i + 1], dout, need_dx=i > 2)
            i -= 3
            continue
        if i >= 1 and _pair_fusable_backward(layers[i - 1], layers[i], dout):
            dout = _pair_backward(layers[i - 1], layers[i], dout, need_dx=i > 1)
            i -= 2
            continue
        layer = layers[i]
        if isinstance(layer, Convolution) and i == 0:
            layer.backward(dout, need_dx=False)
            dout = None
        else:
            dout = layer.backward(dout)
        i -= 1
    return None


def forward_layers(layers, x, train_flg=None):
    """``x`` through ``layers`` in order, as the book's ``predict`` loops (``train_flg``, when
    given, goes to the Dropout layers), with Convolution -> Relu -> Pooling runs fused by
    :func:`conv_relu_pool` and other Convolution -> Relu pairs by :func:`conv_relu`."""
    layers = list(layers)
    i = 0
    while i < len(layers):
        if i + 2 < len(layers) and _fusable(*layers[i:i + 3], x):
            x = _fused_forward(*layers[i:i + 3], x)
            i += 3
            continue
        if i + 1 < len(layers) and _pair_fusable(layers[i], layers[i + 1], x):
            x = _pair_forward(layers[i], layers[i + 1], x)
            i += 2
            continue
        if train_flg is not None and isinstance(layers[i], Dropout):
            x = layers[i].forward(x, train_flg)
        else:
            x = layers[i].forward(x)
        i += 1
    return x
