"""Fused runs of the book's layers, and the forward/backward walks the networks use.

``forward_layers`` and ``backward_layers`` are the book's ``predict`` loop and gradient loop
over a list of layers, with two runs done in one pass where the layers allow it:
``Convolution -> Relu -> Pooling(2, 2, stride=2)`` (:func:`conv_relu_pool`) and, elsewhere,
``Convolution -> Relu`` (:func:`conv_relu`). The layers are left as the separate calls would
leave them (``x``, ``mask``, ``arg_max``, ``dW``, ``db``), and the numbers are the same.
"""
import numpy as np

from .kernels import activation, conv
from .kernels._checks import out_size
from .layers import Convolution, Dropout, Pooling, Relu, _compute_dtype

__all__ = ["conv_relu_pool", "conv_relu_pool_backward", "conv_relu", "conv_relu_backward",
           "forward_layers", "backward_layers"]


def _fusable(conv_layer, relu, pool, x=None):
    """Whether the three layers can run as one fused pass on the convolution's input ``x``
    (an array or its shape; default: ``conv_layer.x``, for backward; read only once the types
    match, since reading ``.x`` of a Pooling after a fused forward recomputes it)."""
    # exact types: a subclass may override forward; the fused kernel calls its GEMMs from
    # Numba, so it follows the convolution path
    if not (type(conv_layer) is Convolution and type(relu) is Relu and type(pool) is Pooling
            and (pool.pool_h, pool.pool_w, pool.stride, pool.pad) == (2, 2, 2, 0)):
        return False
    return _numba_path(conv_layer, x)


def _numba_path(conv_layer, x):
    shape = x if isinstance(x, tuple) else np.shape(conv_layer.x if x is None else x)
    return conv.conv_path(shape, np.shape(conv_layer.W), conv_layer.stride) == "blas_numba"


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
    dt = _compute_dtype(np.asarray(x), conv_layer.W)
    out, idx, mask = conv.conv_relu_pool_forward(x, conv_layer.W, conv_layer.b,
                                                 conv_layer.stride, conv_layer.pad, dtype=dt)
    _set_forward((conv_layer, relu, pool), x, idx, mask, dt)
    return out


def _set_forward(group, x, idx, mask, dt):
    # the layers of a fused run (two or three) as their own forwards leave them
    conv_layer, relu = group[0], group[1]
    conv_layer.x = x
    relu.mask = mask
    if len(group) == 2:
        return
    pool = group[2]
    pool._idx = idx
    W, b = np.array(conv_layer.W, copy=True), np.array(conv_layer.b, copy=True)  # the
    stride, pad = conv_layer.stride, conv_layer.pad  # optimizer updates them in place
    pool._x, pool._x_shape = None, mask.shape
    pool._x_recipe = lambda: activation.relu_forward(
        conv.conv_forward(x, W, b, stride, pad, dtype=dt))[0]


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
    """Whether a Convolution and a Relu can run as one pass on ``x`` (an array or its shape;
    default: ``conv_layer.x``, for backward)."""
    if not (type(conv_layer) is Convolution and type(relu) is Relu):
        return False
    return _numba_path(conv_layer, x)


def conv_relu(conv_layer, relu, x):
    """``relu.forward(conv_layer.forward(x))`` in one pass when the two are a
    :class:`Convolution` and a :class:`Relu` (DeepConvNet's unpooled convolutions), else
    those two calls. Same output; ``conv_layer.x`` and ``relu.mask`` set as by the calls."""
    if not _pair_fusable(conv_layer, relu, x):
        return relu.forward(conv_layer.forward(x))
    return _pair_forward(conv_layer, relu, x)


def _pair_forward(conv_layer, relu, x):
    dt = _compute_dtype(np.asarray(x), conv_layer.W)
    out, mask = conv.conv_relu_forward(x, conv_layer.W, conv_layer.b, conv_layer.stride,
                                       conv_layer.pad, dtype=dt)
    _set_forward((conv_layer, relu), x, None, mask, dt)
    return out


def conv_relu_backward(conv_layer, relu, dout, need_dx=True):
    """``conv_layer.backward(relu.backward(dout), need_dx)`` in one pass for the pairs
    :func:`conv_relu` fuses: the same ``dW``, ``db`` and dx (``dout`` is not written, where
    the book's ``Relu.backward`` zeroes it in place)."""
    if not _pair_fusable_backward(conv_layer, relu, np.shape(dout)):
        return conv_layer.backward(relu.backward(dout), need_dx=need_dx)
    return _pair_backward(conv_layer, relu, dout, need_dx)


def _pair_fusable_backward(conv_layer, relu, dout_shape):
    if not _pair_fusable(conv_layer, relu):  # first: relu may be any layer
        return False
    mask = relu.mask
    return (isinstance(mask, np.ndarray) and mask.dtype == np.bool_
            and mask.shape == tuple(dout_shape))


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
    :func:`conv_relu_backward` (several in a row in one go, as forward). The first layer's
    dx is not needed (nothing reads it), so a Convolution there skips it; returns None."""
    layers = list(layers)
    i = len(layers) - 1
    while i >= 0:
        groups = _backward_run(layers, i, dout)
        if groups:
            i -= sum(len(group) for group in groups)
            if len(groups) > 1:
                dout = _stack_backward(groups, dout, need_dx=i >= 0)
            else:
                backward = _fused_backward if len(groups[0]) == 3 else _pair_backward
                dout = backward(*groups[0], dout, need_dx=i >= 0)
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
    :func:`conv_relu_pool` and other Convolution -> Relu pairs by :func:`conv_relu`.

    Several such runs in a row (DeepConvNet's six convolutions) go to the threads in one go,
    each thread taking its samples through all of them (``conv.conv_relu_stack_forward``):
    one hand-over instead of one per run, the same numbers."""
    layers = list(layers)
    i = 0
    while i < len(layers):
        groups = _forward_run(layers, i, x)
        if groups:
            i += sum(len(group) for group in groups)
            if len(groups) > 1:
                x = _stack_forward(groups, x)
            else:
                x = (_fused_forward if len(groups[0]) == 3 else _pair_forward)(*groups[0], x)
            continue
        if train_flg is not None and isinstance(layers[i], Dropout):
            x = layers[i].forward(x, train_flg)
        else:
            x = layers[i].forward(x)
        i += 1
    return x


def _forward_run(layers, i, x):
    """The fusable runs from ``layers[i]`` on, each feeding the next and computing in the
    first one's dtype (the stacked passes take one): lists of three (Convolution, Relu,
    Pooling) or two (Convolution, Relu) layers."""
    groups, shape, dt = [], tuple(np.shape(x)), np.asarray(x).dtype
    while shape is not None:
        if i + 2 < len(layers) and _fusable(*layers[i:i + 3], shape):
            group = layers[i:i + 3]
        elif i + 1 < len(layers) and _pair_fusable(layers[i], layers[i + 1], shape):
            group = layers[i:i + 2]
        else:
            break
        group_dt = _compute_dtype(dt, group[0].W)  # dt: its input's, the run before's
        if groups and group_dt != dt:
            break
        dt = group_dt
        groups.append(group)
        shape = _output_shape(group[0], shape, pooled=len(group) == 3)
        i += len(group)
    return groups


def _output_shape(conv_layer, shape, pooled):
    # a fused run's output shape, None where the shapes do not fit (the run's own checks
    # then raise the error)
    try:
        N, _, H, W = shape
        FN, _, FH, FW = np.shape(conv_layer.W)
        out_h, out_w = out_size("fusion", H, W, FH, FW, int(conv_layer.stride),
                                int(conv_layer.pad))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if min(out_h, out_w) < (2 if pooled else 1):
        return None
    return (N, FN, out_h // 2, out_w // 2) if pooled else (N, FN, out_h, out_w)


def _backward_run(layers, i, dout):
    """The fused runs ending at ``layers[i]`` and going back, each taking the dx of the one
    after it and computing in one dtype: the groups of :func:`_forward_run`, last first."""
    groups, shape, dt = [], tuple(np.shape(dout)), None
    while True:
        if i >= 2 and _fusable_backward(*layers[i - 2:i + 1]):
            group = layers[i - 2:i + 1]
            N, FN, out_h, out_w = group[1].mask.shape
            fits = shape == (N, FN, out_h // 2, out_w // 2)
        elif i >= 1 and _pair_fusable_backward(layers[i - 1], layers[i], shape):
            group, fits = layers[i - 1:i + 1], True
        else:
            break
        if groups and not fits:  # the run's own checks raise for a first group that misfits
            break
        group_dt = _compute_dtype(group[0].x, group[0].W)
        if groups and group_dt != dt:
            break
        dt = group_dt
        groups.append(group)
        shape = tuple(np.shape(group[0].x))
        i -= len(group)
    return groups


def _stack_forward(groups, x):
    dt = _compute_dtype(np.asarray(x), groups[0][0].W)
    stages = [(group[0].W, group[0].b, group[0].stride, group[0].pad, len(group) == 3, dt)
              for group in groups]
    for group, (out, idx, mask) in zip(groups, conv.conv_relu_stack_forward(x, stages)):
        _set_forward(group, x, idx, mask, dt)
        x = out
    return x


def _stack_backward(groups, dout, need_dx):
    # groups last first, as _backward_run gives them
    stages = [(group[0].x, group[0].W, group[2]._idx if len(group) == 3 else None,
               group[1].mask, group[0].stride, group[0].pad,
               _compute_dtype(group[0].x, group[0].W)) for group in reversed(groups)]
    dx, grads = conv.conv_relu_stack_backward(dout, stages, need_dx=need_dx)
    dout_dtype = np.asarray(dout).dtype  # then each run gets the dx of the one after it
    for group, (dW, db) in zip(groups, reversed(grads)):
        # the dtype the layer's dout would have had: the Pooling's backward or the Relu's
        grad_dtype = _compute_dtype(dout_dtype) if len(group) == 3 else dout_dtype
        group[0]._set_grads(dW, db, grad_dtype)
        dout_dtype = stages[0][6]
    return dx
