"""Convolution forward and backward: the book's im2col and GEMM, one sample at a time.

The book's ``Convolution`` unrolls the whole batch with im2col into one matrix. Here each
sample n is unrolled on its own ("unfold": the transposed layout, K = C*FH*FW rows and
P = out_h*out_w columns), so its matrix stays in the CPU cache, and one BLAS GEMM per sample
does the arithmetic::

    forward    out[n] = W2 @ col_n + b          W2 = W.reshape(FN, K)
    backward   dW    += dout[n] @ col_n.T       db += dout[n] summed over its P cells
               dx[n]  = fold(W2.T @ dout[n])     fold: col2im of one sample

The bias rides in the GEMMs: col gets a last row of ones, W2 a last column b, so the forward
GEMM adds b and the dW GEMM also gives db.

Threads: the samples go in blocks of :data:`BLOCK`, one run of blocks per thread
(:func:`._launch.launch` runs :func:`_forward` and :func:`_backward` for each run r); each
block sums its own [dW | db], added in block order at the end, so the result is the same on
any number of threads. The kernels can also run the book's ReLU and a 2x2 stride-2 max
pooling on each sample's output while it is in cache (:func:`conv_relu_forward`, used by
:mod:`fastconv.fusion`). Stride-1 layers with many channels skip the unfold: one GEMM
per filter tap (:mod:`.conv_taps`). :func:`conv_forward_direct` / :func:`conv_backward_direct`
are the same convolution as plain loops, without BLAS: the benchmarks' "direct convolution".
"""
import numpy as np
from numba import prange

from ..config import helper, inline, kernel
from . import _checks as chk
from ._blas import gemm, one_blas_thread
from ._index import fill
from ._launch import launch, launchable, threads
from .conv_taps import (all_finite, backward_sample, forward_sample, pad_copy, tap_weights,
                        taps_to_grad, use_taps)
from .pooling import _maxpool_plane_2x2s2, _maxpool_plane_backward_2x2s2

# Samples per block. The blocks, not the threads, split the dW sum, so the thread count does
# not change the bits; 5 splits the book's batch of 100 into 20 blocks, 10 per thread on 2.
BLOCK = 5


@helper
def _unfold(x, n, pad, xp, FH, FW, stride, out_h, out_w, col):
    # col[(c*FH + fh)*FW + fw, oh*out_w + ow] = src[c, oh*stride + fh, ow*stride + fw], src:
    # sample n as (C, H + 2pad, W + 2pad) planes, x[n] itself or copied into xp's interior
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    if pad == 0:
        src = x[n]
    else:
        pad_copy(x[n], xp, pad, True)
        src = xp[:C * (H + 2 * pad) * (W + 2 * pad)].reshape(C, H + 2 * pad, W + 2 * pad)
    for c in range(C):
        for fh in range(FH):
            for fw in range(FW):
                dst = col[(c * FH + fh) * FW + fw]
                for oh in range(out_h):
                    d = dst[oh * out_w:(oh + 1) * out_w]
                    row = src[c, oh * stride + fh]
                    if stride == 1:  # a plain slice copy, which LLVM vectorises
                        s = row[fw:fw + out_w]
                        for i in range(out_w):
                            d[i] = s[i]
                    else:
                        for i in range(out_w):
                            d[i] = row[fw + i * stride]


@inline
def _zero(a):
    # through a flat view: slice assignments of several dimensions are slow to compile
    fill(a.reshape(a.size), 0)


@helper
def _fold(dcol, FH, FW, stride, out_h, out_w, dst):
    # dst (C, Hs, Ws) = every dcol row added back onto its cells (the inverse of _unfold);
    # each cell adds its taps in the fixed order fh, fw, oh
    _zero(dst)
    for c in range(dst.shape[0]):
        for fh in range(FH):
            for fw in range(FW):
                src = dcol[(c * FH + fh) * FW + fw]
                for oh in range(out_h):
                    s = src[oh * out_w:(oh + 1) * out_w]
                    row = dst[c, oh * stride + fh]
                    if stride == 1:
                        d = row[fw:fw + out_w]
                        for i in range(out_w):
                            d[i] += s[i]
                    else:
                        for i in range(out_w):
                            row[fw + i * stride] += s[i]


@inline
def _ones_row(col):
    # col with its last row (if any) set to ones: the bias row of the unfolded matrix.
    # (The run functions allocate every buffer as a reshaped 1-D np.zeros: one form to compile)
    if col.shape[0] > 0:
        col[col.shape[0] - 1] = 1
    return col


@inline
def _blocks(r, n_runs, N):
    # blocks b0..b1 of run r: contiguous, the runs as even as the blocks allow
    n_blocks = -(-N // BLOCK)
    return r * n_blocks // n_runs, (r + 1) * n_blocks // n_runs


@launchable
def _forward(r, n_runs, x, Wb, b, Wk, FH, FW, stride, pad, out, mask, idx):
    # out[n] = sample n convolved, + b; with a mask (N, FN, out_h, out_w) then the ReLU, with
    # idx (pooled samples) then the 2x2 stride-2 max pooling into out; Wk: the per-tap weights
    # or None (then Numba leaves that branch out). Run r: its blocks, with its own buffers
    N, C, H, W = x.shape
    FN, K = Wb.shape[0], Wb.shape[1] - 1
    out_h, out_w = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    P, Hp, Wp = out_h * out_w, H + 2 * pad, W + 2 * pad
    relu, pool, taps = mask.shape[0] > 0, idx.shape[0] > 0, Wk is not None
    dt = out.dtype
    xp = np.zeros(C * Hp * Wp + FW - 1, dt)
    col = _ones_row(np.zeros((0 if taps else K + 1) * P, dt).reshape(-1, P))  # for b
    wide = np.zeros(FN * (Hp - FH + 1) * Wp if taps else 0, dt)
    y = np.zeros(FN * P if pool else 0, dt).reshape(FN, -1)
    b0, b1 = _blocks(r, n_runs, N)
    for n in range(b0 * BLOCK, min(N, b1 * BLOCK)):
        yn = y if pool else out[n].reshape(FN, P)
        if Wk is not None:
            forward_sample(x, n, FH, FW, pad, Wk, b, xp, wide, yn)
        else:
            _unfold(x, n, pad, xp, FH, FW, stride, out_h, out_w, col)
            gemm(Wb, col, yn, False, 0)
        if relu:  # the book's ReLU on the sample's output, in place: mask = y <= 0, y[mask] = 0
            yf, mf = yn.reshape(yn.size), mask[n].reshape(yn.size)
            for p in range(yf.shape[0]):
                m = yf[p] <= 0
                mf[p] = m
                if m:
                    yf[p] = 0
        if pool:
            y3 = yn.reshape(FN, out_h, out_w)
            for f in range(FN):
                _maxpool_plane_2x2s2(y3[f], out[n, f], idx[n, f])


@launchable
def _backward(r, n_runs, x, dout, W2T, Wt, FH, FW, stride, pad, mask, idx, dx, grad):
    # grad[i] = [dW | db] of block i, its samples added in order; dx[n] unless dx is empty.
    # dout: the gradient of the convolution's output, or with a mask of the ReLU's, or with
    # idx of the pooling's; Wt: the per-tap weights or None
    N, C, H, W = x.shape
    K, FN = W2T.shape
    out_h, out_w = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    P, Hp, Wp = out_h * out_w, H + 2 * pad, W + 2 * pad
    S = C * Hp * Wp
    relu, pool, taps = mask.shape[0] > 0, idx.shape[0] > 0, Wt is not None
    need_dx = dx.shape[0] > 0
    dt = grad.dtype
    xp = np.zeros(S + FW - 1, dt)
    dxp = np.zeros(S + FW - 1 if pad > 0 or taps else 0, dt)
    col = _ones_row(np.zeros((0 if taps else K + 1) * P, dt).reshape(-1, P))  # for db
    dcol = np.zeros((K if need_dx and not taps else 0) * P, dt).reshape(-1, P)
    dwide = np.zeros(FN * (Hp - FH + 1) * Wp if taps else 0, dt)
    g = np.zeros((FH * FW if taps else 0) * FN * C, dt).reshape(-1, FN, C)
    db = np.zeros(FN, dt)
    dy = np.zeros(FN * P if relu else 0, dt).reshape(FN, -1)
    b0, b1 = _blocks(r, n_runs, N)
    for i in range(b0, b1):
        _zero(grad[i])
        _zero(g)
        _zero(db)
        for n in range(i * BLOCK, min(N, (i + 1) * BLOCK)):
            if relu:  # the gradient before the ReLU (the pooling's backward first)
                dyf, mf = dy.reshape(dy.size), mask[n].reshape(dy.size)
                if pool:
                    dy3 = dy.reshape(mask[n].shape)
                    for f in range(FN):
                        _maxpool_plane_backward_2x2s2(dout[n, f], idx[n, f], dy3[f])
                    for p in range(dyf.shape[0]):
                        if mf[p]:
                            dyf[p] = 0
                else:
                    gd = dout[n].reshape(dy.size)
                    for p in range(dyf.shape[0]):
                        dyf[p] = 0 if mf[p] else gd[p]
                d = dy
            else:
                d = dout[n].reshape(FN, P)
            if Wt is not None:
                backward_sample(x, n, d, FH, FW, pad, Wt, xp, dwide, dxp, g, db, dx)
                continue
            _unfold(x, n, pad, xp, FH, FW, stride, out_h, out_w, col)
            gemm(d, col, grad[i], True, 1)
            if need_dx:  # with pad onto the padded planes, then their interior into dx[n]
                gemm(W2T, d, dcol, False, 0)
                _fold(dcol, FH, FW, stride, out_h, out_w,
                      dx[n] if pad == 0 else dxp[:S].reshape(C, Hp, Wp))
                if pad > 0:
                    pad_copy(dx[n], dxp, pad, False)
        if Wt is not None:
            taps_to_grad(g, db, grad[i])


def _pooled(shape):
    return shape[:2] + (shape[2] // 2, shape[3] // 2)


def _n_runs(N):
    return max(1, min(threads(), -(-N // BLOCK)))


def _run_forward(func, x, W, b, stride, pad, dtype, relu, pool):
    # checks, buffers and the kernel call of every forward: (out, idx, mask)
    x, W, stride, pad, oshape = chk.conv_args(func, x, W, stride, pad)
    b = chk.bias(func, b, W.shape[0])
    dt = chk.float_dtype(x, W, dtype)
    FN, _, FH, FW = W.shape
    if pool and (oshape[2] < 2 or oshape[3] < 2):
        raise ValueError(f"{func}: the convolution output {oshape} is smaller than the 2x2 "
                         "pooling window")
    Wb = np.empty((FN, W[0].size + 1), dtype=dt)
    Wb[:, :-1] = W.reshape(FN, -1)
    Wb[:, -1] = b
    taps = use_taps(x.shape, W.shape, stride, pad, False, dt)
    Wk = tap_weights(W, dt) if taps else None
    out = np.empty(_pooled(oshape) if pool else oshape, dtype=dt)
    mask = np.empty(oshape if relu else (0, 0, 0, 0), dtype=np.bool_)
    idx = np.empty(out.shape if pool else (0, 0, 0, 0), dtype=np.int8)
    with one_blas_thread():
        launch(_forward, _n_runs(x.shape[0]), chk.contiguous(x.astype(dt, copy=False)), Wb,
               Wb[:, -1].copy(), Wk, FH, FW, stride, pad, out, mask, idx)
    return out, (idx if pool else None), (mask if relu else None)


def _run_backward(func, dout, idx, mask, x, W, stride, pad, dtype, need_dx):
    # checks, buffers and the kernel call of every backward: (dx or None, dW, db)
    x, W, stride, pad, oshape = chk.conv_args(func, x, W, stride, pad)
    dt = chk.float_dtype(x, W, dtype)
    dout = chk.as_array(func, "dout", dout)
    chk.check_shape(func, "dout", dout, oshape if idx is None else _pooled(oshape))
    for name, arr, kind, shape in (("mask", mask, np.bool_, oshape),
                                   ("idx", idx, np.int8, _pooled(oshape))):
        if arr is not None:
            chk.check_shape(func, name, chk.as_array(func, name, arr), shape)
            if arr.dtype != kind:
                raise TypeError(f"{func}: {name} must be {np.dtype(kind)} (the forward's), "
                                f"got {arr.dtype}")
    N, FN, _, _ = oshape
    FH, FW = W.shape[2], W.shape[3]
    K = W[0].size
    x = chk.contiguous(x.astype(dt, copy=False))
    W2T = chk.contiguous(W.reshape(FN, K).T.astype(dt, copy=False))
    # the per-tap wide grid multiplies input cells it never uses by zero: an inf or NaN there
    # would turn the book's finite dW into NaN, so such input takes the unfold
    taps = (use_taps(x.shape, W.shape, stride, pad, True, dt)
            and all_finite(x.reshape(-1)) and all_finite(W2T.reshape(-1)))
    Wt = tap_weights(W, dt, transposed=True) if taps else None
    dx = np.empty(x.shape if need_dx else (0,) + x.shape[1:], dtype=dt)
    grad = np.empty((-(-N // BLOCK), FN, K + 1), dtype=dt)
    none4 = (np.empty((0, 0, 0, 0), np.bool_), np.empty((0, 0, 0, 0), np.int8))
    with one_blas_thread():
        launch(_backward, _n_runs(N), x, chk.contiguous(dout.astype(dt, copy=False)), W2T, Wt,
               FH, FW, stride, pad, none4[0] if mask is None else chk.contiguous(mask),
               none4[1] if idx is None else chk.contiguous(idx), dx, grad)
    total = grad.sum(axis=0)  # the blocks' sums, added in block order
    dW = np.ascontiguousarray(total[:, :K]).reshape(W.shape)
    return (dx if need_dx else None), dW, total[:, K].copy()


def conv_forward(x, W, b, stride=1, pad=0, dtype=None):
    """Convolution of ``x`` (N, C, H, W) by ``W`` (FN, C, FH, FW) plus ``b`` (FN,).

    Returns (N, FN, out_h, out_w) in ``dtype`` (default: the result type of x and W, at
    least float32): the book's ``col @ col_W + b``, reshaped and transposed.
    """
    return _run_forward("conv_forward", x, W, b, stride, pad, dtype, False, False)[0]


def conv_backward(dout, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """Gradients ``(dx, dW, db)`` of :func:`conv_forward` for the output gradient ``dout``;
    ``dx`` is None when ``need_dx`` is False (a network's input layer)."""
    return _run_backward("conv_backward", dout, None, None, x, W, stride, pad, dtype, need_dx)


def conv_relu_forward(x, W, b, stride=1, pad=0, dtype=None, pool=False):
    """Convolution, the book's ReLU and, with ``pool``, a 2x2 stride-2 max pooling in one pass.

    Returns
    -------
    out : the ReLU's output (N, FN, out_h, out_w) in ``dtype``, or the pooled one
        (N, FN, out_h // 2, out_w // 2)
    mask : bool (N, FN, out_h, out_w), the ReLU's ``conv <= 0``
    idx : int8, the pooled shape: window position (0..3) of each maximum, the first one
        wins; None without ``pool``
    """
    out, idx, mask = _run_forward("conv_relu_forward", x, W, b, stride, pad, dtype, True, pool)
    return out, mask, idx


def conv_relu_backward(dout, mask, x, W, stride=1, pad=0, dtype=None, need_dx=True, idx=None):
    """``(dx, dW, db)`` through the pooling (``idx`` given: the forward's), the ReLU (its
    ``mask``) and the convolution of :func:`conv_relu_forward`; ``dout`` is not written."""
    return _run_backward("conv_relu_backward", dout, idx, mask, x, W, stride, pad, dtype,
                         need_dx)


@kernel
def _direct_forward(x, W, b, stride, pad, out):
    # out[n, f, oh, ow] = sum over c, fh, fw of W[f, c, fh, fw] * x[n, c, ih, iw], + b[f]
    N, C, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    for q in prange(N * FN):
        n, f = q // FN, q % FN
        for oh in range(out.shape[2]):
            for ow in range(out.shape[3]):
                s = 0.0
                for c in range(C):
                    for fh in range(FH):
                        for fw in range(FW):
                            ih, iw = oh * stride + fh - pad, ow * stride + fw - pad
                            if 0 <= ih < H and 0 <= iw < Wd:
                                s += W[f, c, fh, fw] * x[n, c, ih, iw]
                out[n, f, oh, ow] = s + b[f]


@kernel
def _direct_backward(dout, x, W, stride, pad, dx, dW):
    # two race-free loops: each dW[f, c] sums over n, oh, ow in a fixed order, each plane
    # dx[n, c] over f, fh, fw, oh, ow
    N, C, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    out_h, out_w = dout.shape[2], dout.shape[3]
    for q in prange(FN * C):
        f, c = q // C, q % C
        for fh in range(FH):
            for fw in range(FW):
                s = 0.0
                for n in range(N):
                    for oh in range(out_h):
                        for ow in range(out_w):
                            ih, iw = oh * stride + fh - pad, ow * stride + fw - pad
                            if 0 <= ih < H and 0 <= iw < Wd:
                                s += dout[n, f, oh, ow] * x[n, c, ih, iw]
                dW[f, c, fh, fw] = s
    for q in prange(dx.shape[0] * C):
        n, c = q // C, q % C
        _zero(dx[n, c])
        for f in range(FN):
            for fh in range(FH):
                for fw in range(FW):
                    for oh in range(out_h):
                        for ow in range(out_w):
                            ih, iw = oh * stride + fh - pad, ow * stride + fw - pad
                            if 0 <= ih < H and 0 <= iw < Wd:
                                dx[n, c, ih, iw] += W[f, c, fh, fw] * dout[n, f, oh, ow]


def _as(dt, *arrays):
    return [chk.contiguous(a.astype(dt, copy=False)) for a in arrays]


def conv_forward_direct(x, W, b, stride=1, pad=0, dtype=None):
    """:func:`conv_forward` as plain loops over every output cell, without BLAS or a col
    matrix (the textbook formula; slower, a benchmark contender)."""
    x, W, stride, pad, oshape = chk.conv_args("conv_forward_direct", x, W, stride, pad)
    b = chk.bias("conv_forward_direct", b, W.shape[0])
    dt = chk.float_dtype(x, W, dtype)
    out = np.empty(oshape, dtype=dt)
    _direct_forward(*_as(dt, x, W, b), stride, pad, out)
    return out


def conv_backward_direct(dout, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """:func:`conv_backward` as plain loops: ``(dx, dW, db)``, dx None unless ``need_dx``."""
    x, W, stride, pad, oshape = chk.conv_args("conv_backward_direct", x, W, stride, pad)
    chk.check_shape("conv_backward_direct", "dout", chk.as_array("", "dout", dout), oshape)
    dt = chk.float_dtype(x, W, dtype)
    dx = np.empty(x.shape if need_dx else (0,) + x.shape[1:], dtype=dt)
    dW = np.empty(W.shape, dtype=dt)
    dout, x, W = _as(dt, dout, x, W)
    _direct_backward(dout, x, W, stride, pad, dx, dW)
    return (dx if need_dx else None), dW, dout.sum(axis=(0, 2, 3))
