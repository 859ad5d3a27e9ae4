"""Convolution and ReLU, with or without 2x2 stride-2 max pooling after, fused.

The book's networks run ``Convolution -> Relu -> Pooling(2, 2, stride=2)``, and DeepConvNet
also ``Convolution -> Relu`` alone. Run as separate layers, the convolution writes its
(N, FN, out_h, out_w) output (13.8 MB at SimpleConvNet's conv1 in float64), the ReLU reads it
and writes another, the pooling reads that; backward does the same in reverse. Fused, each
sample's (FN, out_h*out_w) block stays in cache between the steps; only the pooled output
(or the ReLU's output, without pooling), the int8 argmax and the ReLU's bool mask are
written. The arithmetic is the layers' own: the same per-sample GEMMs as ``conv_blas``
(called from Numba, so this needs SciPy), the book's ReLU, the 2x2 pooling kernels of
``pooling``.
"""
import numpy as np

from ..config import helper
from . import _checks as chk
from . import conv_blas
from ._conv_common import _check, _check_bias, _result_dtype
from .conv_blas import (_backward_sample, _end_block, _forward_sample, _split_grad, _start_block,
                        _start_run, _with_bias, run_stages, stage)
from .pooling import _maxpool_plane_2x2s2, _maxpool_plane_backward_2x2s2


@helper
def _relu_in_place(y, mask_n):
    # the book's ReLU on y (FN, P): mask = y <= 0, then y[mask] = 0
    for f in range(y.shape[0]):
        yf = y[f]
        mf = mask_n[f].reshape(yf.shape[0])
        for p in range(yf.shape[0]):
            m = yf[p] <= 0
            mf[p] = m
            if m:
                yf[p] = 0


@helper
def _forward_relu_block(x, n0, n1, FH, FW, stride, pad, out_h, out_w, Wb, col, taps, y, mask,
                        out, pidx):
    # per sample: the convolution, then the ReLU in place. With pooling (pidx has samples) the
    # convolution goes to y (FN, P), which stays in cache, and out[n] gets its 2x2 stride-2
    # max pooling; without, it goes straight to out[n]
    FN = mask.shape[1]
    _start_run(col, taps)
    pooled = pidx.shape[0] > 0
    for n in range(n0, n1):
        yn = y if pooled else out[n].reshape(FN, out_h * out_w)
        _forward_sample(x, n, FH, FW, stride, pad, out_h, out_w, Wb, col, taps, yn)
        _relu_in_place(yn, mask[n])
        if pooled:
            y3 = yn.reshape(FN, out_h, out_w)
            for f in range(FN):
                _maxpool_plane_2x2s2(y3[f], out[n, f], pidx[n, f])


def _fused_forward(func, x, W, b, stride, pad, dtype, pool):
    # the wrapper of both forwards: (out, idx, mask), idx None without pooling
    out, idx, mask, run = _forward_stage(func, x, W, b, stride, pad, dtype, pool)
    run_stages([run], out.shape[0])
    return out, idx, mask


def _forward_stage(func, x, W, b, stride, pad, dtype, pool):
    # checks and outputs of one fused forward, and its conv_blas.stage (not run yet):
    # (out, idx, mask, run). x is only read when the stage runs
    x, W, stride, pad, oshape = _check(func, x, W, stride, pad)
    b = _check_bias(func, b, W.shape[0])
    dt = _result_dtype(x, W, dtype)
    N, FN, out_h, out_w = oshape
    if pool and (out_h < 2 or out_w < 2):
        raise ValueError(f"{func}: the convolution output {oshape} is smaller than the 2x2 "
                         "pooling window")
    FH, FW = W.shape[2], W.shape[3]
    K, P = W.shape[1] * FH * FW, out_h * out_w
    Wb = _with_bias(W, b, dt)
    x = chk.contiguous(x)
    oshape_out = (N, FN, out_h // 2, out_w // 2) if pool else oshape
    out = np.empty(oshape_out, dtype=dt)
    idx = np.empty(oshape_out if pool else (0, 0, 0, 0), dtype=np.int8)
    mask = np.empty(oshape, dtype=np.bool_)

    def call(b0, b1, B, col, dcol, taps, y):
        _forward_relu_block(x, b0 * B, min(N, b1 * B), FH, FW, stride, pad, out_h, out_w, Wb,
                            col, taps, y.reshape(FN, -1), mask, out, idx)

    run = stage(x, W, b, stride, pad, dt, K, P, False, call, extra=FN * P if pool else 0)
    return out, (idx if pool else None), mask, run


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
    return _fused_forward("conv_relu_pool_forward", x, W, b, stride, pad, dtype, pool=True)


def conv_relu_forward(x, W, b, stride=1, pad=0, dtype=None):
    """Convolution and ReLU in one pass: ``(out, mask)``, the ReLU's output in ``dtype`` and
    its bool mask ``x <= 0``, the numbers of the two book layers in a row (DeepConvNet's
    unpooled convolutions)."""
    out, _, mask = _fused_forward("conv_relu_forward", x, W, b, stride, pad, dtype, pool=False)
    return out, mask


@helper
def _backward_relu_blocks(x, g, idx, mask, b0, b1, B, FH, FW, stride, pad, out_h, out_w, W2T,
                          col, dcol, taps, dy, grad_part, dx):
    # blocks b0..b1 of B samples, per sample: dy (FN, P) = the gradient before the ReLU,
    # through the pooling's backward from g (the pooled output's gradient) when idx has
    # samples, else g itself; then the ReLU's (dy[mask] = 0) and the convolution's GEMMs as
    # conv_blas._backward_blocks, with block i's [dW | db] in grad_part[i]
    N = x.shape[0]
    FN = dy.shape[0]
    _start_run(col, taps)
    dy3 = dy.reshape(FN, out_h, out_w)
    pooled = idx.shape[0] > 0
    for i in range(b0, b1):
        grad = grad_part[i]
        _start_block(grad, taps)
        for n in range(i * B, min(N, i * B + B)):
            for f in range(FN):
                if pooled:
                    _maxpool_plane_backward_2x2s2(g[n, f], idx[n, f], dy3[f])
                df = dy[f]
                mf = mask[n, f].reshape(out_h * out_w)
                gf = g[n, f].reshape(g.shape[2] * g.shape[3])  # unpooled: the ReLU's gradient
                for p in range(df.shape[0]):
                    if mf[p]:
                        df[p] = 0
                    elif not pooled:
                        df[p] = gf[p]
            _backward_sample(x, n, dy, FH, FW, stride, pad, out_h, out_w, W2T, col, dcol, taps,
                             grad, dx)
        _end_block(grad, taps)


def conv_relu_pool_backward(dout, idx, mask, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """Gradients ``(dx, dW, db)`` through the pooling, the ReLU and the convolution of
    :func:`conv_relu_pool_forward` (``dx`` is None when ``need_dx`` is False).

    ``dout`` is the pooled output's gradient, ``idx`` and ``mask`` what the forward returned
    (or a :class:`~fastconv.layers.Pooling`'s int8 planes and a
    :class:`~fastconv.layers.Relu`'s mask)."""
    return _fused_backward("conv_relu_pool_backward", dout, idx, mask, x, W, stride, pad, dtype,
                           need_dx)


def conv_relu_backward(dout, mask, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """Gradients ``(dx, dW, db)`` through the ReLU and the convolution of
    :func:`conv_relu_forward` (``dx`` is None when ``need_dx`` is False); ``mask`` is the
    forward's (or a :class:`~fastconv.layers.Relu`'s). ``dout`` is not written."""
    return _fused_backward("conv_relu_backward", dout, None, mask, x, W, stride, pad, dtype,
                           need_dx)


def _fused_backward(func, dout, idx, mask, x, W, stride, pad, dtype, need_dx):
    # the wrapper of both backwards; idx None: no pooling
    _, run, finish = _backward_stage(func, dout, idx, mask, x, W, stride, pad, dtype, need_dx)
    run_stages([run], x.shape[0])
    return finish()


def _backward_stage(func, dout, idx, mask, x, W, stride, pad, dtype, need_dx):
    # checks and buffers of one fused backward, and its conv_blas.stage (not run yet):
    # (dx, run, finish), finish() -> (dx or None, dW, db) once it ran; dx is the buffer the
    # run fills (no samples when need_dx is False). dout is only read when it runs
    x, W, stride, pad, oshape = _check(func, x, W, stride, pad)
    N, FN, out_h, out_w = oshape
    gshape = (N, FN, out_h // 2, out_w // 2) if idx is not None else oshape
    dout = chk.as_array(func, "dout", dout)
    chk.check_shape(func, "dout", dout, gshape)
    chk.check_shape(func, "mask", chk.as_array(func, "mask", mask), oshape)
    if idx is not None:
        chk.check_shape(func, "idx", chk.as_array(func, "idx", idx), gshape)
        if idx.dtype != np.int8:
            raise TypeError(f"{func}: idx must be int8 (the forward's), got {idx.dtype}")
    else:
        idx = np.empty((0, 0, 0, 0), dtype=np.int8)
    if mask.dtype != np.bool_:
        raise TypeError(f"{func}: mask must be bool (the forward's), got {mask.dtype}")
    dt = _result_dtype(x, W, dtype)
    FH, FW = W.shape[2], W.shape[3]
    K, P = W.shape[1] * FH * FW, out_h * out_w
    x = chk.contiguous(x)
    dout = chk.contiguous(dout.astype(dt, copy=False))
    idx, mask = chk.contiguous(idx), chk.contiguous(mask)
    W2T = chk.contiguous(W.reshape(FN, K).T.astype(dt, copy=False))
    dx = np.empty(x.shape, dtype=dt) if need_dx else np.empty((0,) + x.shape[1:], dtype=dt)
    grad_part = np.empty((-(-N // conv_blas.NUMBA_BLOCK), FN, K + 1), dtype=dt)

    def call(b0, b1, B, col, dcol, taps, dy):
        _backward_relu_blocks(x, dout, idx, mask, b0, b1, B, FH, FW, stride, pad, out_h, out_w,
                              W2T, col, dcol, taps, dy.reshape(FN, P), grad_part, dx)

    def finish():
        dxs, dW, db = _split_grad(grad_part, dx, W.shape)
        return (dxs if need_dx else None), dW, db

    return dx, stage(x, W, None, stride, pad, dt, K, P, True, call, extra=FN * P), finish


def conv_relu_stack_forward(x, stages):
    """Several :func:`conv_relu_pool_forward` / :func:`conv_relu_forward` in a row, each
    stage's output the next one's input, on the threads in one go (each worker takes its
    samples through every stage: ``conv_blas.run_stages``).

    ``stages``: ``(W, b, stride, pad, pool, dtype)`` each, ``pool`` True for a 2x2 stride-2
    max pooling after the ReLU; all of one ``dtype``, given. Returns ``(out, idx, mask)``
    per stage, the numbers of the stages run one by one (``idx`` None where ``pool`` is
    False)."""
    func = "conv_relu_stack_forward"
    _one_dtype(func, [st[5] for st in stages])
    results, runs = [], []
    for W, b, stride, pad, pool, dtype in stages:
        out, idx, mask, run = _forward_stage(func, x, W, b, stride, pad, dtype, pool)
        results.append((out, idx, mask))
        runs.append(run)
        x = out
    run_stages(runs, results[0][0].shape[0])
    return results


def conv_relu_stack_backward(dout, stages, need_dx=True):
    """The backward of :func:`conv_relu_stack_forward`, from the last stage's output
    gradient ``dout``, on the threads in one go.

    ``stages`` in forward order: ``(x, W, idx, mask, stride, pad, dtype)`` each (``idx``
    None for a stage without pooling), all of one ``dtype``, given. Returns ``(dx, grads)``:
    the first stage's input gradient (None when ``need_dx`` is False) and ``(dW, db)`` per
    stage, in forward order, the numbers of the stages' backwards run one by one."""
    func = "conv_relu_stack_backward"
    _one_dtype(func, [st[6] for st in stages])
    runs, finishes = [], []
    for k in reversed(range(len(stages))):
        x, W, idx, mask, stride, pad, dtype = stages[k]
        # the next stage back reads this one's dx buffer (of the one dtype, so not copied),
        # which this one fills first
        dout, run, finish = _backward_stage(func, dout, idx, mask, x, W, stride, pad, dtype,
                                            need_dx or k > 0)
        runs.append(run)
        finishes.append(finish)
    run_stages(runs, np.shape(stages[0][0])[0])
    done = [finish() for finish in reversed(finishes)]
    return done[0][0], [(dW, db) for _, dW, db in done]


def _one_dtype(func, dtypes):
    # given, not None: the stages compute in it (a stage's dx buffer is the next one back's
    # dout, which a different dtype would copy before it is filled)
    if any(d is None for d in dtypes) or len({np.dtype(d) for d in dtypes}) != 1:
        raise ValueError(f"{func}: the stages must share one dtype, given, got {dtypes}")
