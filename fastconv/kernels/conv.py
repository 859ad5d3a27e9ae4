"""Convolution forward and backward, three paths, and the rule that picks one per shape.

- direct: Numba loops, one sample per iteration, no col matrix (here);
- blas_numba / blas: unfold a sample, one BLAS GEMM per sample, called from Numba (needs
  SciPy) or through NumPy a block at a time (``conv_blas``);
- gemm: unfold a cache-sized block, one GEMM over the whole block (here).

All compute the book's numbers (``col @ col_W + b`` and its gradients) up to float rounding
of the summation order. :func:`conv_path` picks one; :func:`conv_forward` and
:func:`conv_backward` run it.
"""
import numpy as np
from numba import prange

from ..config import NUMBA_BLAS, kernel
from . import _checks as chk
from ._conv_common import (_check, _check_bias, _fold_sample, _result_dtype,  # noqa: F401
                           _unfold_sample)
from .conv_blas import (conv_backward_blas, conv_backward_blas_numba, conv_forward_blas,
                        conv_forward_blas_numba)
from .conv_fused import (conv_relu_backward, conv_relu_forward,  # noqa: F401 (fused passes)
                         conv_relu_pool_backward, conv_relu_pool_forward,
                         conv_relu_stack_backward, conv_relu_stack_forward)
from .im2col import _fold, _unfold


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
        _fold_sample(dcol, FH, FW, stride, pad, out_w, dx[n])
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


def conv_path(x_shape, W_shape, stride=1):
    """Which path ``Convolution`` runs for this shape: per-sample BLAS for all, its GEMMs
    called from Numba (``"blas_numba"``) when SciPy is there, else through NumPy (``"blas"``;
    also with ``FASTCONV_NUMBA_BLAS=0``).

    ``python -m bench.conv_paths`` on 2 cores (batch 100, bench/README) has it fastest on every
    layer of the book's networks, forward and backward: SimpleConvNet's conv1 2.3 + 3.6 ms
    against direct loops 3.7 + 9.6 and block GEMM 3.5 + 7.6; DeepConvNet's 8x8 conv6
    10.0 + 20.2 against block GEMM 13.3 + 23.5. At batch 1 it won two of the three shapes
    tried (the third by 20 us). The other paths stay as references and in the benchmarks.
    Calling the GEMMs from Numba made whole training steps 3-10% faster (bench/README). On
    that path DeepConvNet's conv2-conv4 (and conv5/conv6 forward) take per-tap GEMMs
    instead of the unfold (``conv_shift``).
    """
    return "blas_numba" if NUMBA_BLAS else "blas"


def conv_forward(x, W, b, stride=1, pad=0, dtype=None):
    """Convolution forward by the path :func:`conv_path` picks (see the path functions)."""
    forward = _PATHS[conv_path(np.shape(x), np.shape(W), stride)][0]
    return forward(x, W, b, stride, pad, dtype)


def conv_backward(dout, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """Gradients ``(dx, dW, db)`` by the path :func:`conv_path` picks."""
    backward = _PATHS[conv_path(np.shape(x), np.shape(W), stride)][1]
    return backward(dout, x, W, stride, pad, dtype, need_dx)


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


_PATHS = {"direct": (conv_forward_direct, conv_backward_direct),
          "blas": (conv_forward_blas, conv_backward_blas),
          "gemm": (conv_forward_gemm, conv_backward_gemm)}
if NUMBA_BLAS:
    _PATHS["blas_numba"] = (conv_forward_blas_numba, conv_backward_blas_numba)
