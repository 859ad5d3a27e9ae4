"""im2col / col2im: the book's layout (rows = output cells) and the per-sample "unfold" layout.

Book layout: ``col[(n*out_h + oh)*out_w + ow, (c*FH + fh)*FW + fw]``.
Filter-major layout (``unfold``): ``col[(c*FH + fh)*FW + fw, (n*out_h + oh)*out_w + ow]``, the
transpose of the book's; with it a whole batch is one GEMM ``W(FN, K) @ col(K, N*P)``.
"""
import numpy as np
from numba import prange

from .. import sizes
from ..config import kernel
from . import _checks as chk
from ._index import gather, scatter_add, valid_range

# fewer values in col than this: the serial loops (waking threads costs more than they save)
SERIAL_BELOW = sizes.SERIAL_BELOW["im2col"]


@kernel(serial_below=SERIAL_BELOW)
def _im2col(x, FH, FW, stride, pad, col):
    N, C, H, W = x.shape
    out_h = (H + 2 * pad - FH) // stride + 1
    out_w = (W + 2 * pad - FW) // stride + 1
    for n in prange(N):
        for oh in range(out_h):
            for ow in range(out_w):
                row = (n * out_h + oh) * out_w + ow
                for c in range(C):
                    for fh in range(FH):
                        ih = oh * stride + fh - pad
                        base = (c * FH + fh) * FW
                        for fw in range(FW):
                            iw = ow * stride + fw - pad
                            if 0 <= ih < H and 0 <= iw < W:
                                col[row, base + fw] = x[n, c, ih, iw]
                            else:
                                col[row, base + fw] = 0


@kernel(serial_below=SERIAL_BELOW)
def _col2im(col, N, C, H, W, FH, FW, stride, pad, img):
    # One (n, c) plane per iteration: no two iterations touch the same cell, and each cell sums
    # its contributions in the book's order (fh, fw ascending, starting from 0.0), so the result
    # is bit-identical to the book's col2im whatever the thread count.
    out_h = (H + 2 * pad - FH) // stride + 1
    out_w = (W + 2 * pad - FW) // stride + 1
    for p in prange(N * C):
        n = p // C
        c = p % C
        for fh in range(FH):
            oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
            for fw in range(FW):
                ow_lo, ow_hi = valid_range(fw, pad, stride, W, out_w)
                k = (c * FH + fh) * FW + fw
                for oh in range(oh_lo, oh_hi):
                    row0 = (n * out_h + oh) * out_w
                    scatter_add(img[n, c, oh * stride + fh - pad], ow_lo * stride + fw - pad,
                                stride, col[row0 + ow_lo:row0 + ow_hi, k])


@kernel(serial_below=SERIAL_BELOW)
def _unfold(x, FH, FW, stride, pad, col):
    # col[(c*FH + fh)*FW + fw, (n*out_h + oh)*out_w + ow]: every (row, n) block is a run of
    # contiguous writes (slice copies for unit stride), and the whole batch is then one GEMM
    # with the (FN, C*FH*FW) filters.
    N, C, H, W = x.shape
    out_h = (H + 2 * pad - FH) // stride + 1
    out_w = (W + 2 * pad - FW) // stride + 1
    P = out_h * out_w
    K = C * FH * FW
    xf = x.reshape(-1)
    for k in prange(K):
        c = k // (FH * FW)
        fh = (k // FW) % FH
        fw = k % FW
        oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
        ow_lo, ow_hi = valid_range(fw, pad, stride, W, out_w)
        row = col[k]
        for n in range(N):
            base = n * P
            row[base:base + oh_lo * out_w] = 0
            for oh in range(oh_lo, oh_hi):
                r = base + oh * out_w
                src = ((n * C + c) * H + oh * stride + fh - pad) * W + fw - pad
                row[r:r + ow_lo] = 0
                gather(row[r + ow_lo:r + ow_hi], xf, src + ow_lo * stride, stride)
                row[r + ow_hi:r + out_w] = 0
            row[base + oh_hi * out_w:base + P] = 0


@kernel(serial_below=SERIAL_BELOW)
def _fold(col, H, W, FH, FW, stride, pad, img):
    # Race-free like _col2im: one (n, c) plane per iteration, taps summed in (fh, fw) order.
    N, C = img.shape[0], img.shape[1]
    out_h = (H + 2 * pad - FH) // stride + 1
    out_w = (W + 2 * pad - FW) // stride + 1
    P = out_h * out_w
    for q in prange(N * C):
        n = q // C
        c = q % C
        d = img[n, c]
        d[:, :] = 0
        for fh in range(FH):
            oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
            for fw in range(FW):
                ow_lo, ow_hi = valid_range(fw, pad, stride, W, out_w)
                src = col[(c * FH + fh) * FW + fw, n * P:(n + 1) * P]
                for oh in range(oh_lo, oh_hi):
                    r = oh * out_w
                    scatter_add(d[oh * stride + fh - pad], ow_lo * stride + fw - pad, stride,
                                src[r + ow_lo:r + ow_hi])


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """Unroll the sliding windows of a 4-D batch into a 2-D matrix (the book's layout).

    Parameters
    ----------
    input_data : ndarray, shape (N, C, H, W)
    filter_h, filter_w : int
        Window size.
    stride : int, default 1
    pad : int, default 0
        Zero padding on every side.

    Returns
    -------
    col : ndarray of float64, shape (N*out_h*out_w, C*filter_h*filter_w)
        float64 whatever the input dtype, as in the book.
    """
    x = chk.as_array("im2col", "input_data", input_data, ndim=4)
    FH, FW, stride, pad = chk.window_args("im2col", filter_h, filter_w, stride, pad)
    N, C, H, W = x.shape
    out_h, out_w = chk.out_size("im2col", H, W, FH, FW, stride, pad)
    col = np.empty((N * out_h * out_w, C * FH * FW), dtype=np.float64)
    _im2col.sized(col.size)(chk.contiguous(x), FH, FW, stride, pad, col)
    return col


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """Inverse of :func:`im2col`: add every column entry back onto its input cell.

    Parameters
    ----------
    col : ndarray, shape (N*out_h*out_w, C*filter_h*filter_w)
    input_shape : tuple of 4 ints (N, C, H, W)
    filter_h, filter_w, stride, pad : int
        As given to :func:`im2col`.

    Returns
    -------
    img : ndarray of float64, shape (N, C, H, W)
        Overlapping windows add up; entries that fall on the padding are dropped.
    """
    col = chk.as_array("col2im", "col", col)
    FH, FW, stride, pad = chk.window_args("col2im", filter_h, filter_w, stride, pad)
    if len(tuple(input_shape)) != 4:
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {tuple(input_shape)}")
    # an empty batch (N = 0) is fine, as for im2col and the book's col2im
    N, C, H, W = (chk.as_int("col2im", "input_shape", s, minimum)
                  for s, minimum in zip(input_shape, (0, 1, 1, 1), strict=True))
    out_h, out_w = chk.out_size("col2im", H, W, FH, FW, stride, pad)
    expected = (N * out_h * out_w, C * FH * FW)
    if col.size != expected[0] * expected[1]:
        raise ValueError(
            f"col2im: col has shape {col.shape} ({col.size} values) but input_shape "
            f"{(N, C, H, W)} with a {FH}x{FW} window, stride {stride}, pad {pad} needs "
            f"{expected} ({expected[0] * expected[1]} values)")
    img = np.zeros((N, C, H, W), dtype=np.float64)
    _col2im.sized(col.size)(chk.contiguous(col.reshape(expected)), N, C, H, W, FH, FW, stride,
                            pad, img)
    return img


def unfold(x, filter_h, filter_w, stride=1, pad=0, dtype=None):
    """Filter-major im2col, shape (C*filter_h*filter_w, N*out_h*out_w), in ``dtype``
    (default: ``x.dtype`` for floats, float64 otherwise)."""
    x = chk.as_array("unfold", "x", x, ndim=4)
    FH, FW, stride, pad = chk.window_args("unfold", filter_h, filter_w, stride, pad)
    N, C, H, W = x.shape
    out_h, out_w = chk.out_size("unfold", H, W, FH, FW, stride, pad)
    if dtype is None:
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
    col = np.empty((C * FH * FW, N * out_h * out_w), dtype=dtype)
    _unfold.sized(col.size)(chk.contiguous(x), FH, FW, stride, pad, col)
    return col


def fold(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """Inverse of :func:`unfold` (overlaps add up), shape ``input_shape``, dtype of ``col``."""
    col = chk.as_array("fold", "col", col, ndim=2)
    FH, FW, stride, pad = chk.window_args("fold", filter_h, filter_w, stride, pad)
    N, C, H, W = (chk.as_int("fold", "input_shape", s, 1) for s in input_shape)
    out_h, out_w = chk.out_size("fold", H, W, FH, FW, stride, pad)
    chk.check_shape("fold", "col", col, (C * FH * FW, N * out_h * out_w))
    img = np.empty((N, C, H, W), dtype=col.dtype)
    _fold.sized(col.size)(chk.contiguous(col), H, W, FH, FW, stride, pad, img)
    return img
