"""Convolution, ReLU and 2x2 stride-2 max pooling fused, forward and backward.

The book's networks run ``Convolution -> Relu -> Pooling(2, 2, stride=2)``. Run as three
layers, the convolution writes its (N, FN, out_h, out_w) output (13.8 MB at SimpleConvNet's
conv1 in float64), the ReLU reads it and writes another, the pooling reads that; backward
does the same in reverse. Fused, each sample's (FN, out_h*out_w) block stays in cache between
the three steps and only the pooled output, the int8 argmax and the ReLU's bool mask are
written. The arithmetic is the three layers' own: the same per-sample GEMMs as
``conv_blas`` (called from Numba, so this needs SciPy), the book's ReLU, the 2x2 pooling
kernels of ``pooling``.
"""
import numpy as np

from ..config import helper, run_tasks
from . import _checks as chk
from . import conv_blas
from ._conv_common import _check, _check_bias, _result_dtype
from .conv_blas import (_backward_sample, _end_block, _forward_sample, _plan, _split_grad,
                        _start_block, _start_run, _taps, _with_bias, worker_runs)
from .pooling import _maxpool_plane_2x2s2, _maxpool_plane_backward_2x2s2


@helper
def _forward_relu_pool_block(x, n0, n1, FH, FW, stride, pad, out_h, out_w, Wb, col, taps, y,
                             mask, pout, pidx):
    # per sample: the convolution into y (FN, P), which stays in cache, then ReLU in place
    # (the book's mask x <= 0 and out[mask] = 0) and 2x2 stride-2 max pooling of y
    FN = y.shape[0]
    _start_run(col, taps)
    y3 = y.reshape(FN, out_h, out_w)
    for n in range(n0, n1):
        _forward_sample(x, n, FH, FW, stride, pad, out_h, out_w, Wb, col, taps, y)
        for f in range(FN):
            yf = y[f]
            mf = mask[n, f].reshape(out_h * out_w)
            for p in range(yf.shape[0]):
                m = yf[p] <= 0
                mf[p] = m
                if m:
                    yf[p] = 0
            _maxpool_plane_2x2s2(y3[f], pout[n, f], pidx[n, f])


def conv_relu_pool_forward(x, W, b, stride=1, pad=0, dtype=None):
    """Convolution, ReLU and 2x2 stride-2 max pooling in one pass (GEMMs called from Numba).

    Each sample's convolution output stays in cache between the three steps, so neither it
    nor the ReLU output is written out. The numbers are those of the three book layers in a
    row: the same GEMM as :func:`conv_forward_blas`, the book's ReLU, the book's pooling of
    its output (first maximum wins, so an all-zero window points at its first cell).

    Returns
    -------
    out : (N, FN, out_h // 2, out_w // 2) pooled output in ``dtype``
    idx : int8, same shape: window position of each maximum (the pooling's plane layout)
    mask : bool (N, FN, out_h, out_w): the ReLU's ``x <= 0``
    """
    x, W, stride, pad, oshape = _check("conv_relu_pool_forward", x, W, stride, pad)
    b = _check_bias("conv_relu_pool_forward", b, W.shape[0])
    dt = _result_dtype(x, W, dtype)
    N, FN, out_h, out_w = oshape
    if out_h < 2 or out_w < 2:
        raise ValueError(f"conv_relu_pool_forward: the convolution output {oshape} is smaller "
                         "than the 2x2 pooling window")
    FH, FW = W.shape[2], W.shape[3]
    K, P = W.shape[1] * FH * FW, out_h * out_w
    Wb = _with_bias(W, b, dt)
    x = chk.contiguous(x)
    pshape = (N, FN, out_h // 2, out_w // 2)
    out = np.empty(pshape, dtype=dt)
    idx = np.empty(pshape, dtype=np.int8)
    mask = np.empty(oshape, dtype=np.bool_)
    B = conv_blas.NUMBA_BLOCK
    runs = worker_runs(-(-N // B))

    plan = _plan(x.shape, W, b, stride, pad, dt, backward=False)

    def run(i):
        col, _, taps, y = _taps(plan, x.shape, W.shape, pad, K, P, dt, False, extra=FN * P)
        b0, b1 = runs[i]
        _forward_relu_pool_block(x, b0 * B, min(N, b1 * B), FH, FW, stride, pad, out_h, out_w,
                                 Wb, col, taps, y.reshape(FN, P), mask, out, idx)

    run_tasks(run, len(runs))
    return out, idx, mask


@helper
def _backward_relu_pool_blocks(x, pdout, idx, mask, b0, b1, B, FH, FW, stride, pad, out_h,
                               out_w, W2T, col, dcol, taps, dy, grad_part, dx):
    # blocks b0..b1 of B samples, per sample: the pooling's backward into dy (FN, P), the
    # ReLU's (dy[mask] = 0), then the convolution's GEMMs as conv_blas._backward_blocks, with
    # block i's [dW | db] in grad_part[i]
    N = x.shape[0]
    FN = dy.shape[0]
    _start_run(col, taps)
    dy3 = dy.reshape(FN, out_h, out_w)
    for i in range(b0, b1):
        grad = grad_part[i]
        _start_block(grad, taps)
        for n in range(i * B, min(N, i * B + B)):
            for f in range(FN):
                _maxpool_plane_backward_2x2s2(pdout[n, f], idx[n, f], dy3[f])
                df = dy[f]
                mf = mask[n, f].reshape(out_h * out_w)
                for p in range(df.shape[0]):
                    if mf[p]:
                        df[p] = 0
            _backward_sample(x, n, dy, FH, FW, stride, pad, out_h, out_w, W2T, col, dcol, taps,
                             grad, dx)
        _end_block(grad, taps)


def conv_relu_pool_backward(dout, idx, mask, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """Gradients ``(dx, dW, db)`` through the pooling, the ReLU and the convolution of
    :func:`conv_relu_pool_forward` (``dx`` is None when ``need_dx`` is False).

    ``dout`` is the pooled output's gradient, ``idx`` and ``mask`` what the forward returned
    (or a :class:`~fastconv.layers.Pooling`'s int8 planes and a
    :class:`~fastconv.layers.Relu`'s mask)."""
    func = "conv_relu_pool_backward"
    x, W, stride, pad, oshape = _check(func, x, W, stride, pad)
    N, FN, out_h, out_w = oshape
    pshape = (N, FN, out_h // 2, out_w // 2)
    dout = chk.as_array(func, "dout", dout)
    chk.check_shape(func, "dout", dout, pshape)
    chk.check_shape(func, "idx", chk.as_array(func, "idx", idx), pshape)
    chk.check_shape(func, "mask", chk.as_array(func, "mask", mask), oshape)
    if idx.dtype != np.int8 or mask.dtype != np.bool_:
        raise TypeError(f"{func}: idx must be int8 and mask bool (the forward's), got "
                        f"{idx.dtype} and {mask.dtype}")
    dt = _result_dtype(x, W, dtype)
    FH, FW = W.shape[2], W.shape[3]
    K, P = W.shape[1] * FH * FW, out_h * out_w
    x = chk.contiguous(x)
    dout = chk.contiguous(dout.astype(dt, copy=False))
    idx, mask = chk.contiguous(idx), chk.contiguous(mask)
    W2T = chk.contiguous(W.reshape(FN, K).T.astype(dt, copy=False))
    dx = np.empty(x.shape, dtype=dt) if need_dx else np.empty((0,) + x.shape[1:], dtype=dt)
    B = conv_blas.NUMBA_BLOCK
    grad_part = np.empty((-(-N // B), FN, K + 1), dtype=dt)
    runs = worker_runs(len(grad_part))

    plan = _plan(x.shape, W, None, stride, pad, dt, backward=True)

    def run(i):
        col, dcol, taps, dy = _taps(plan, x.shape, W.shape, pad, K, P, dt, True, extra=FN * P)
        _backward_relu_pool_blocks(x, dout, idx, mask, *runs[i], B, FH, FW, stride, pad, out_h,
                                   out_w, W2T, col, dcol, taps, dy.reshape(FN, P), grad_part,
                                   dx)

    run_tasks(run, len(runs))
    dx, dW, db = _split_grad(grad_part, dx, W.shape)
    return (dx if need_dx else None), dW, db
