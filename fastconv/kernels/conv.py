"""Convolution forward and backward: direct loops (no col matrix) and unfold + BLAS GEMM.

Both compute the book's numbers (``col @ col_W + b`` and its gradients) up to float rounding
of the summation order. Which one is faster depends on the shape: see :func:`prefer_direct`.
"""
import numpy as np
from numba import prange

from ..config import helper, kernel
from . import _checks as chk
from ._index import valid_range
from .im2col import _fold, _unfold


@helper
def _unfold_sample(x, n, FH, FW, stride, pad, out_h, out_w, col):
    """col[(c*FH + fh)*FW + fw, oh*out_w + ow] for sample n (zeros on the padding)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for c in range(C):
        for fh in range(FH):
            oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
            for fw in range(FW):
                ow_lo, ow_hi = valid_range(fw, pad, stride, W, out_w)
                dst = col[(c * FH + fh) * FW + fw]
                dst[:] = 0
                for oh in range(oh_lo, oh_hi):
                    xrow = x[n, c, oh * stride + fh - pad]
                    for ow in range(ow_lo, ow_hi):
                        dst[oh * out_w + ow] = xrow[ow * stride + fw - pad]


@kernel
def _conv_forward(x, W2, b, FH, FW, stride, pad, out):
    # One sample per iteration: its (K, P) col block stays in cache (K = C*FH*FW is small on
    # this path), then out[n, f] = sum_k W2[f, k] * col[k] as contiguous P-long axpy loops.
    N, FN, out_h, out_w = out.shape
    K = W2.shape[1]
    P = out_h * out_w
    for n in prange(N):
        col = np.empty((K, P), dtype=out.dtype)
        _unfold_sample(x, n, FH, FW, stride, pad, out_h, out_w, col)
        for f in range(FN):
            o = out[n, f].reshape(P)
            o[:] = 0
            for k in range(K):
                w = W2[f, k]
                ck = col[k]
                for p in range(P):
                    o[p] += w * ck[p]
            bf = b[f]
            for p in range(P):
                o[p] += bf


@kernel
def _conv_backward(dout, x, W2, FH, FW, stride, pad, need_dx, dx, dW2, db):
    # Per sample: dW and db partials into (N, ...) buffers, dx through a (K, P) dcol block
    # folded onto this sample's planes only. The partials are then summed over n in a fixed
    # order, so the result does not depend on the thread count.
    N, FN, out_h, out_w = dout.shape
    H, W = x.shape[2], x.shape[3]
    K = W2.shape[1]
    P = out_h * out_w
    dW_n = np.empty((N, FN, K), dtype=dW2.dtype)
    db_n = np.empty((N, FN), dtype=db.dtype)
    for n in prange(N):
        col = np.empty((K, P), dtype=dW2.dtype)
        _unfold_sample(x, n, FH, FW, stride, pad, out_h, out_w, col)
        colT = col.T.copy()
        d = dout[n].reshape(FN, P)
        for f in range(FN):
            acc = dW_n[n, f]
            acc[:] = 0
            s = 0.0
            for p in range(P):
                g = d[f, p]
                s += g
                row = colT[p]
                for k in range(K):
                    acc[k] += g * row[k]
            db_n[n, f] = s
        if not need_dx:
            continue
        dcol = np.zeros((K, P), dtype=dx.dtype)
        for k in range(K):
            dk = dcol[k]
            for f in range(FN):
                w = W2[f, k]
                df = d[f]
                for p in range(P):
                    dk[p] += w * df[p]
        C = dx.shape[1]
        for c in range(C):
            plane = dx[n, c]
            plane[:, :] = 0
            for fh in range(FH):
                oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
                for fw in range(FW):
                    ow_lo, ow_hi = valid_range(fw, pad, stride, W, out_w)
                    src = dcol[(c * FH + fh) * FW + fw]
                    for oh in range(oh_lo, oh_hi):
                        drow = plane[oh * stride + fh - pad]
                        for ow in range(ow_lo, ow_hi):
                            drow[ow * stride + fw - pad] += src[oh * out_w + ow]
    for q in prange(FN * K):
        f = q // K
        k = q % K
        s = 0.0
        for n in range(N):
            s += dW_n[n, f, k]
        dW2[f, k] = s
    for f in prange(FN):
        s = 0.0
        for n in range(N):
            s += db_n[n, f]
        db[f] = s


@kernel
def _from_filter_major(out_t, b, out):
    # out[n, f] = out_t[f, n-th block] + b[f]: the GEMM's (FN, N*P) result back to NCHW
    N, FN, out_h, out_w = out.shape
    P = out_h * out_w
    for q in prange(N * FN):
        n = q // FN
        f = q % FN
        src = out_t[f, n * P:(n + 1) * P]
        dst = out[n, f].reshape(P)
        bf = b[f]
        for i in range(P):
            dst[i] = src[i] + bf


@kernel
def _to_filter_major(dout, d_t, db):
    # d_t[f, n-th block] = dout[n, f]; db[f] summed in the fixed order n, oh, ow
    N, FN, out_h, out_w = dout.shape
    P = out_h * out_w
    for f in prange(FN):
        s = 0.0
        for n in range(N):
            src = dout[n, f].reshape(P)
            dst = d_t[f, n * P:(n + 1) * P]
            for i in range(P):
                v = src[i]
                dst[i] = v
                s += v
        db[f] = s


def _check(func, x, W, stride, pad):
    x = chk.as_array(func, "x", x, ndim=4)
    W = chk.as_array(func, "W", W, ndim=4)
    stride = chk.as_int(func, "stride", stride, 1)
    pad = chk.as_int(func, "pad", pad, 0)
    N, C, H, Wd = x.shape
    FN, FC, FH, FW = W.shape
    if FC != C:
        raise ValueError(f"{func}: x has {C} channels (shape {x.shape}) but W expects {FC} "
                         f"(shape {W.shape})")
    out_h, out_w = chk.out_size(func, H, Wd, FH, FW, stride, pad, names=("FH", "FW"))
    return x, W, stride, pad, (N, FN, out_h, out_w)


def _check_bias(func, b, FN):
    b = chk.as_array(func, "b", b)
    if b.size != FN or b.ndim > 1 and b.shape[-1] != FN:
        raise ValueError(f"{func}: b must hold one bias per filter ({FN},), got shape {b.shape}")
    return chk.contiguous(b.reshape(FN))


def _result_dtype(x, W, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    return np.result_type(x.dtype, W.dtype, np.float32)


def prefer_direct(x_shape, W_shape, stride=1):
    """Whether the direct loops beat unfold + GEMM for this shape.

    From ``python -m bench.conv_paths`` on 2 cores (two runs, batch 100): direct wins or ties
    where the GEMM would be shallow (K = C*FH*FW <= 32: the networks' first layers) and on
    large planes (DeepConvNet's conv2: 28x28 outputs, K = 144: 72-81 vs 89-98 ms forward +
    backward), where the unfolded block of a few samples no longer fits in cache; GEMM wins
    on the small planes of the deeper layers (conv5: 24-27 vs 31-39 ms).
    """
    if len(W_shape) != 4 or len(x_shape) != 4 or not isinstance(stride, int) or stride < 1:
        return False  # let the kernel wrapper report the bad argument
    FN, C, FH, FW = W_shape
    H, W = x_shape[2], x_shape[3]
    out_cells = ((H - FH) // stride + 1) * ((W - FW) // stride + 1)  # pad ignored: a hint
    return C * FH * FW <= 32 or out_cells >= 512


def conv_forward_direct(x, W, b, stride=1, pad=0, dtype=None):
    """Convolution in Numba loops, one sample at a time, without a batch-sized col matrix:
    ``out[n, f] = sum_c,fh,fw W[f,c,fh,fw] * x_pad[n,c,..] + b[f]``.

    Returns an (N, FN, out_h, out_w) array in ``dtype`` (default: result type of x and W).
    """
    x, W, stride, pad, oshape = _check("conv_forward", x, W, stride, pad)
    b = _check_bias("conv_forward", b, W.shape[0])
    out = np.empty(oshape, dtype=_result_dtype(x, W, dtype))
    FN, _, FH, FW = W.shape
    W2 = chk.contiguous(W.reshape(FN, -1).astype(out.dtype, copy=False))
    _conv_forward(chk.contiguous(x), W2, b, FH, FW, stride, pad, out)
    return out


def conv_backward_direct(dout, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """Gradients of :func:`conv_forward_direct`: ``(dx, dW, db)`` without a col matrix
    (``dx`` is None when ``need_dx`` is False: the input layer of a network)."""
    x, W, stride, pad, oshape = _check("conv_backward", x, W, stride, pad)
    dout = chk.as_array("conv_backward", "dout", dout)
    chk.check_shape("conv_backward", "dout", dout, oshape)
    dt = _result_dtype(x, W, dtype)
    dx = np.empty(x.shape if need_dx else (0,) * 4, dtype=dt)
    dW = np.empty(W.shape, dtype=dt)
    db = np.empty(W.shape[0], dtype=dt)
    FN, _, FH, FW = W.shape
    W2 = chk.contiguous(W.reshape(FN, -1).astype(dt, copy=False))
    _conv_backward(chk.contiguous(dout), chk.contiguous(x), W2, FH, FW, stride, pad,
                   bool(need_dx), dx, dW.reshape(FN, -1), db)
    return (dx if need_dx else None), dW, db


# Bytes of col block one GEMM works on: the block stays in L2/L3 between unfold, GEMM and
# fold instead of a batch-sized matrix going through memory (90 MB for DeepConvNet's conv2).
CHUNK_BYTES = 4 << 20


def _chunks(N, K, P, itemsize):
    B = max(1, min(N, CHUNK_BYTES // max(1, K * P * itemsize)))
    return [(n0, min(N, n0 + B)) for n0 in range(0, N, B)]


def conv_forward_gemm(x, W, b, stride=1, pad=0, dtype=None):
    """Convolution as unfold + BLAS GEMM, a cache-sized block of samples at a time.

    Returns (N, FN, out_h, out_w) in ``dtype`` (default: result type of x and W).
    """
    x, W, stride, pad, oshape = _check("conv_forward", x, W, stride, pad)
    b = _check_bias("conv_forward", b, W.shape[0])
    dt = _result_dtype(x, W, dtype)
    N, FN, out_h, out_w = oshape
    FC, FH, FW = W.shape[1:]
    K, P = FC * FH * FW, out_h * out_w
    x = chk.contiguous(x)
    W2 = chk.contiguous(W.reshape(FN, K).astype(dt, copy=False))
    out = np.empty(oshape, dtype=dt)
    for n0, n1 in _chunks(N, K, P, dt.itemsize):
        col = np.empty((K, (n1 - n0) * P), dtype=dt)
        _unfold(x[n0:n1], FH, FW, stride, pad, col)
        _from_filter_major(np.dot(W2, col), b, out[n0:n1])
    return out


def conv_backward_gemm(dout, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """Gradients ``(dx, dW, db)`` of :func:`conv_forward_gemm`, block by block: each block's
    col is rebuilt (cheap, in cache) rather than kept from forward; dW and db add the blocks'
    GEMM results in a fixed order. ``dx`` is None when ``need_dx`` is False."""
    x, W, stride, pad, oshape = _check("conv_backward", x, W, stride, pad)
    dout = chk.as_array("conv_backward", "dout", dout)
    chk.check_shape("conv_backward", "dout", dout, oshape)
    dt = _result_dtype(x, W, dtype)
    N, FN, out_h, out_w = oshape
    FC, FH, FW = W.shape[1:]
    K, P = FC * FH * FW, out_h * out_w
    x = chk.contiguous(x)
    dout = chk.contiguous(dout)
    W2T = chk.contiguous(W.reshape(FN, K).T.astype(dt, copy=False))
    dx = np.empty(x.shape, dtype=dt) if need_dx else None
    dW2 = np.zeros((FN, K), dtype=dt)
    db = np.zeros(FN, dtype=dt)
    for n0, n1 in _chunks(N, K, P, dt.itemsize):
        col = np.empty((K, (n1 - n0) * P), dtype=dt)
        _unfold(x[n0:n1], FH, FW, stride, pad, col)
        d_t = np.empty((FN, (n1 - n0) * P), dtype=dt)
        db_part = np.empty(FN, dtype=dt)
        _to_filter_major(dout[n0:n1], d_t, db_part)
        db += db_part
        dW2 += np.dot(d_t, col.T)
        if need_dx:
            _fold(np.dot(W2T, d_t), x.shape[2], x.shape[3], FH, FW, stride, pad,
                  dx[n0:n1])
    return dx, dW2.reshape(W.shape), db
