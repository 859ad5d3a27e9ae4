"""Convolution forward and backward: direct loops (no col matrix) and unfold + BLAS GEMM.

Both compute the book's numbers (``col @ col_W + b`` and its gradients) up to float rounding
of the summation order. Which one is faster depends on the shape: see :func:`prefer_direct`.
"""
import numpy as np
from numba import prange

from ..config import kernel
from . import _checks as chk
from ._index import valid_range
from .im2col import _fold, _unfold


@kernel
def _conv_forward(x, W, b, stride, pad, out):
    N, C, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for p in prange(N * FN):
        n = p // FN
        f = p % FN
        o = out[n, f]
        o[:, :] = 0
        for c in range(C):
            for fh in range(FH):
                oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
                for fw in range(FW):
                    ow_lo, ow_hi = valid_range(fw, pad, stride, Wd, out_w)
                    w = W[f, c, fh, fw]
                    for oh in range(oh_lo, oh_hi):
                        xrow = x[n, c, oh * stride + fh - pad]
                        orow = o[oh]
                        if stride == 1:
                            # unit stride: contiguous, so LLVM vectorises this loop
                            for ow in range(ow_lo, ow_hi):
                                orow[ow] += w * xrow[ow + fw - pad]
                        else:
                            for ow in range(ow_lo, ow_hi):
                                orow[ow] += w * xrow[ow * stride + fw - pad]
        o[:, :] += b[f]


@kernel
def _conv_backward(dout, x, W, stride, pad, dx, dW, db):
    N, C, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    out_h, out_w = dout.shape[2], dout.shape[3]
    # db and dW: one filter (f, c) per iteration, samples summed in order n = 0..N-1.
    for f in prange(FN):
        s = 0.0
        for n in range(N):
            for oh in range(out_h):
                for ow in range(out_w):
                    s += dout[n, f, oh, ow]
        db[f] = s
    for p in prange(FN * C):
        f = p // C
        c = p % C
        for fh in range(FH):
            oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
            for fw in range(FW):
                ow_lo, ow_hi = valid_range(fw, pad, stride, Wd, out_w)
                s = 0.0
                for n in range(N):
                    for oh in range(oh_lo, oh_hi):
                        xrow = x[n, c, oh * stride + fh - pad]
                        drow = dout[n, f, oh]
                        for ow in range(ow_lo, ow_hi):
                            s += drow[ow] * xrow[ow * stride + fw - pad]
                dW[f, c, fh, fw] = s
    # dx: one (n, c) plane per iteration (a scatter that no other iteration touches).
    for p in prange(N * C):
        n = p // C
        c = p % C
        d = dx[n, c]
        d[:, :] = 0
        for f in range(FN):
            for fh in range(FH):
                oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
                for fw in range(FW):
                    ow_lo, ow_hi = valid_range(fw, pad, stride, Wd, out_w)
                    w = W[f, c, fh, fw]
                    for oh in range(oh_lo, oh_hi):
                        drow = d[oh * stride + fh - pad]
                        grow = dout[n, f, oh]
                        for ow in range(ow_lo, ow_hi):
                            drow[ow * stride + fw - pad] += w * grow[ow]


@kernel
def _bias_add(out, b):
    N, FN = out.shape[0], out.shape[1]
    for p in prange(N * FN):
        bf = b[p % FN]
        o = out[p // FN, p % FN]
        for i in range(o.shape[0]):
            o[i] += bf


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
    """Whether the direct loops beat unfold + GEMM for this shape (measured on 2 cores, see
    bench/): only for few input channels, where each GEMM would be K = C*FH*FW <= 32 deep
    and the col matrix costs more to write than the loops cost to run."""
    FN, C, FH, FW = W_shape
    return C * FH * FW <= 32


def conv_forward_direct(x, W, b, stride=1, pad=0, dtype=None):
    """Direct convolution: ``out[n, f] = sum_c,fh,fw W[f,c,fh,fw] * x_pad[n,c,..] + b[f]``.

    Returns an (N, FN, out_h, out_w) array in ``dtype`` (default: result type of x and W).
    """
    x, W, stride, pad, oshape = _check("conv_forward", x, W, stride, pad)
    b = _check_bias("conv_forward", b, W.shape[0])
    out = np.empty(oshape, dtype=_result_dtype(x, W, dtype))
    _conv_forward(chk.contiguous(x), chk.contiguous(W), b, stride, pad, out)
    return out


def conv_backward_direct(dout, x, W, stride=1, pad=0, dtype=None):
    """Gradients of :func:`conv_forward_direct`: ``(dx, dW, db)`` without a col matrix."""
    x, W, stride, pad, oshape = _check("conv_backward", x, W, stride, pad)
    dout = chk.as_array("conv_backward", "dout", dout)
    chk.check_shape("conv_backward", "dout", dout, oshape)
    dt = _result_dtype(x, W, dtype)
    dx = np.empty(x.shape, dtype=dt)
    dW = np.empty(W.shape, dtype=dt)
    db = np.empty(W.shape[0], dtype=dt)
    _conv_backward(chk.contiguous(dout), chk.contiguous(x), chk.contiguous(W), stride, pad,
                   dx, dW, db)
    return dx, dW, db


def conv_forward_gemm(x, W, b, stride=1, pad=0, dtype=None):
    """Convolution as unfold + one BLAS GEMM per sample; returns ``(out, col)``.

    ``col`` (N, C*FH*FW, out_h*out_w) is what :func:`conv_backward_gemm` needs for dW.
    """
    x, W, stride, pad, oshape = _check("conv_forward", x, W, stride, pad)
    b = _check_bias("conv_forward", b, W.shape[0])
    dt = _result_dtype(x, W, dtype)
    N, FN, out_h, out_w = oshape
    FC, FH, FW = W.shape[1:]
    col = np.empty((N, FC * FH * FW, out_h * out_w), dtype=dt)
    _unfold(chk.contiguous(x), FH, FW, stride, pad, col)
    out = np.matmul(W.reshape(FN, -1).astype(dt, copy=False), col)
    _bias_add(out, b)
    return out.reshape(oshape), col


def conv_backward_gemm(dout, col, x_shape, W, stride=1, pad=0):
    """Gradients ``(dx, dW, db)`` of :func:`conv_forward_gemm` from its ``col``."""
    W = chk.as_array("conv_backward", "W", W, ndim=4)
    N, C, H, Wd = x_shape
    FN, FC, FH, FW = W.shape
    out_h, out_w = chk.out_size("conv_backward", H, Wd, FH, FW, stride, pad, ("FH", "FW"))
    dout = chk.as_array("conv_backward", "dout", dout)
    chk.check_shape("conv_backward", "dout", dout, (N, FN, out_h, out_w))
    chk.check_shape("conv_backward", "col", col, (N, FC * FH * FW, out_h * out_w))
    dt = col.dtype
    d = chk.contiguous(dout).reshape(N, FN, out_h * out_w).astype(dt, copy=False)
    db = d.sum(axis=(0, 2))
    # dW = sum_n dout[n] @ col[n].T, as one GEMM over the (n, cell) axis
    dW = np.tensordot(d, col, axes=([0, 2], [0, 2])).reshape(W.shape)
    dcol = np.matmul(W.reshape(FN, -1).T.astype(dt, copy=False), d)
    dx = np.zeros((N, C, H, Wd), dtype=dt)
    _fold(dcol, H, Wd, FH, FW, stride, pad, dx)
    return dx, dW, db
