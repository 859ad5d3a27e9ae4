"""Stride-1 convolution of one sample without the unfold: one GEMM per filter tap.

With stride 1, row (c, kh, kw) of a sample's unfolded matrix is its zero-padded plane c read
from offset ``kh * Wp + kw`` on a "wide" output grid of out_h rows of Wp (the padded width)
columns: the out_w real columns plus FW - 1 that run into the next row, computed and dropped.
So, with ``xp`` the padded sample (C rows of S = Hp * Wp) and L = out_h * Wp::

    out_wide (FN, L)      = sum over taps k of  W_k (FN, C) @ xp[:, off_k : off_k + L]
    dW_k (FN, C)         += dout_wide (FN, L) @ xp[:, off_k : off_k + L].T
    dxp[:, off_k : +L]   += W_k.T (C, FN) @ dout_wide

FH * FW GEMMs with beta = 1 (``_blas.gemm_at``, xp's row stride S) and no col matrix to write
and read; dout_wide's extra columns are zero, so they add nothing. It pays where the channels
are many and the extra columns few (:func:`use_taps`; ``python -m bench.conv_paths``).

Buffers: ``xp`` and ``dxp`` hold C * S + FW - 1 items (the last tap's wide read runs FW - 1
past the planes), ``wide`` FN * L; callers zero them once, these functions keep the borders.
"""
import numpy as np

from ..config import helper, inline
from ._blas import gemm_at

# per-tap GEMMs of inner size C lose to one unfolded GEMM below this many channels
TAPS_MIN_C = 16


def use_taps(x_shape, W_shape, stride, pad, backward=False, dtype=np.float64):
    """Whether the convolution of ``x_shape`` by ``W_shape`` runs the per-tap GEMMs."""
    C, W = x_shape[1], x_shape[3]
    Wp = W + 2 * pad
    extra = W_shape[3] - 1  # wide columns a row beyond the out_w real ones
    if stride != 1 or C < TAPS_MIN_C:
        return False
    if 8 * extra <= Wp:
        return True
    single = np.dtype(dtype).itemsize == 4
    wide_enough = (single and C >= 64) if backward else C >= (32 if single else 64)
    return 4 * extra <= Wp and wide_enough


def tap_weights(W, dt, transposed=False):
    """W (FN, C, FH, FW) as taps: (FH*FW, FN, C), or (FH*FW, C, FN) when ``transposed``."""
    FN, C, FH, FW = W.shape
    order = (2, 3, 1, 0) if transposed else (2, 3, 0, 1)
    shape = (FH * FW, C, FN) if transposed else (FH * FW, FN, C)
    return np.ascontiguousarray(W.transpose(order).reshape(shape), dtype=dt)


@helper(python=True)
def all_finite(flat):
    """Whether the 1-D array ``flat`` holds no inf or NaN (which the per-tap backward's wide
    grid would spread into dW). No early exit, so LLVM vectorises it: v - v is 0 iff v is
    finite."""
    bad = False
    for i in range(flat.shape[0]):
        v = flat[i]
        bad |= (v - v) != 0
    return not bad


@inline
def _grid(x, FH, FW, pad):
    # C, the padded width Wp, out_h, out_w, a padded plane's S = Hp * Wp, the wide grid's L
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    return C, Wp, Hp - FH + 1, Wp - FW + 1, Hp * Wp, (Hp - FH + 1) * Wp


@helper
def pad_copy(img, flat, pad, into_flat):
    # between a sample's planes img (C, H, W) and the interior of the padded buffer flat:
    # into the buffer (into_flat) or out of it; the border is left as it is (zero). Row
    # loops: a 3-D slice assignment is slow to compile
    C, H, W = img.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    for c in range(C):
        for h in range(H):
            start = (c * Hp + h + pad) * Wp + pad
            row = flat[start:start + W]
            plane_row = img[c, h]
            for w in range(W):
                if into_flat:
                    row[w] = plane_row[w]
                else:
                    plane_row[w] = row[w]


@helper
def forward_sample(x, n, FH, FW, pad, Wk, b, xp, wide, y):
    # y (FN, out_h*out_w) = sample n convolved, + b; Wk (FH*FW, FN, C)
    FN = Wk.shape[1]
    C, Wp, out_h, out_w, S, L = _grid(x, FH, FW, pad)
    pad_copy(x[n], xp, pad, True)
    for k in range(FH * FW):
        gemm_at(False, False, FN, L, C, Wk.reshape(Wk.size), k * FN * C, C, xp,
                (k // FW) * Wp + k % FW, S, 0 if k == 0 else 1, wide, 0, L)
    for f in range(FN):
        bf = b[f]
        for i in range(out_h):
            src = wide[f * L + i * Wp:f * L + i * Wp + out_w]
            dst = y[f, i * out_w:(i + 1) * out_w]
            for j in range(out_w):
                dst[j] = src[j] + bf


@helper
def backward_sample(x, n, d, FH, FW, pad, Wt, xp, dwide, dxp, g, db, dx):
    # sample n with output gradient d (FN, out_h*out_w): g (FH*FW, FN, C) += the taps' dW,
    # db += d's row sums, dx[n] = its input gradient (skipped when dx has no samples);
    # Wt (FH*FW, C, FN); dwide's extra columns stay zero
    FN = Wt.shape[2]
    C, Wp, out_h, out_w, S, L = _grid(x, FH, FW, pad)
    pad_copy(x[n], xp, pad, True)
    for f in range(FN):
        for i in range(out_h):
            src = d[f, i * out_w:(i + 1) * out_w]
            dst = dwide[f * L + i * Wp:f * L + i * Wp + out_w]
            for j in range(out_w):
                dst[j] = src[j]
    _row_sums(dwide, FN, L, db)
    for k in range(FH * FW):
        gemm_at(False, True, FN, C, L, dwide, 0, L, xp, (k // FW) * Wp + k % FW, S, 1,
                g.reshape(g.size), k * FN * C, C)
    if dx.shape[0] > 0:
        dxp[:] = 0
        for k in range(FH * FW):
            gemm_at(False, False, C, L, FN, Wt.reshape(Wt.size), k * C * FN, FN, dwide, 0, L,
                    1, dxp, (k // FW) * Wp + k % FW, S)
        pad_copy(dx[n], dxp, pad, False)


@helper
def _row_sums(a, rows, L, out):
    # out[r] += the sum of a[r*L:(r+1)*L] in four interleaved partial sums (item j to sum
    # j % 4, then (s0 + s1) + (s2 + s3)): a fixed order, and four independent chains of adds
    # instead of one that waits on each add. dwide's extra columns add zeros
    for r in range(rows):
        row = a[r * L:(r + 1) * L]
        s0 = s1 = s2 = s3 = a.dtype.type(0)
        n4 = L - L % 4
        for j in range(0, n4, 4):
            s0 += row[j]
            s1 += row[j + 1]
            s2 += row[j + 2]
            s3 += row[j + 3]
        if n4 < L:
            s0 += row[n4]
        if n4 + 1 < L:
            s1 += row[n4 + 1]
        if n4 + 2 < L:
            s2 += row[n4 + 2]
        out[r] += (s0 + s1) + (s2 + s3)


@helper
def taps_to_grad(g, db, grad):
    # grad (FN, C*FH*FW + 1) in the unfold path's [dW | db] layout, from g (FH*FW, FN, C)
    T, FN, C = g.shape
    for f in range(FN):
        for c in range(C):
            for k in range(T):
                grad[f, c * T + k] = g[k, f, c]
        grad[f, C * T] = db[f]
