"""Max pooling (fused max + argmax) and average pooling, forward and backward.

``arg_max`` uses the book's flat layout: entry ``((n*out_h + oh)*out_w + ow)*C + c`` holds the
window position ``fh*pool_w + fw`` of the maximum; the first maximum wins on ties, and a NaN
wins over numbers (the first NaN), exactly as ``np.argmax`` on the book's col rows.

Padding (the book's Pooling crashes when pad > 0): as PyTorch, ``pad <= pool/2``; max pooling
never picks a padded cell (it pads with -inf), average pooling counts padded cells as zeros
(PyTorch's ``count_include_pad=True``).
"""
import numpy as np
from numba import prange

from .. import sizes
from ..config import helper, inline, kernel
from . import _checks as chk

# fewer input values than this: the serial loops (waking threads costs more than they save)
SERIAL_BELOW = sizes.SERIAL_BELOW["pooling"]


@helper
def _first_nan(xp, h0, w0, PH, PW):
    """Window position of the first NaN in the window at (h0, w0) (it has one)."""
    for fh in range(PH):
        for fw in range(PW):
            v = xp[h0 + fh, w0 + fw]
            if v != v:
                return fh * PW + fw
    return 0


@inline
def _max4(a, b, d, e):
    """Max of a 2x2 window (a b / d e) and its position; the first maximum wins (strict '>',
    one plain compare each, so LLVM makes it branch-free)."""
    best = a
    k_best = 0
    if b > best:
        best = b
        k_best = 1
    if d > best:
        best = d
        k_best = 2
    if e > best:
        best = e
        k_best = 3
    return best, k_best


@helper
def _first_nan_padded(xp, h0, w0, PH, PW):
    """Like _first_nan for a window that may hang over the edges (padding)."""
    H, W = xp.shape
    for fh in range(PH):
        for fw in range(PW):
            ih, iw = h0 + fh, w0 + fw
            if 0 <= ih < H and 0 <= iw < W:
                v = xp[ih, iw]
                if v != v:
                    return fh * PW + fw
    return 0


@kernel(serial_below=SERIAL_BELOW)
def _maxpool_forward(x, PH, PW, stride, pad, out, idx):
    # idx[n, c, oh, ow] = window position of the maximum (plane layout: contiguous writes)
    N, C, H, W = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p % C
        for oh in range(out_h):
            for ow in range(out_w):
                best = -np.inf
                k_best = -1
                nan = False
                for fh in range(PH):
                    ih = oh * stride + fh - pad
                    if ih < 0 or ih >= H:
                        continue
                    for fw in range(PW):
                        iw = ow * stride + fw - pad
                        if iw < 0 or iw >= W:
                            continue
                        v = x[n, c, ih, iw]
                        nan |= v != v
                        # padded cells never win; first maximum kept (strict '>'), and a
                        # window of -inf still gets its first real cell
                        if v > best or k_best < 0:
                            best = v
                            k_best = fh * PW + fw
                if nan:
                    k_best = _first_nan_padded(x[n, c], oh * stride - pad, ow * stride - pad,
                                               PH, PW)
                    best = np.nan
                out[n, c, oh, ow] = best
                idx[n, c, oh, ow] = k_best


@kernel(serial_below=SERIAL_BELOW)
def _maxpool_forward_2x2(x, stride, out, idx):
    # The book's networks pool 2x2: unrolled, because a window size known only at run time
    # keeps LLVM from turning the compares into branch-free selects.
    N, C = x.shape[0], x.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p % C
        xp = x[n, c]
        for oh in range(out_h):
            r0 = xp[oh * stride]
            r1 = xp[oh * stride + 1]
            for ow in range(out_w):
                w0 = ow * stride
                a, b, d, e = r0[w0], r0[w0 + 1], r1[w0], r1[w0 + 1]
                best, k_best = _max4(a, b, d, e)
                if a != a or b != b or d != d or e != e:  # rare: the first NaN wins
                    k_best = _first_nan(xp, oh * stride, w0, 2, 2)
                    best = np.nan
                out[n, c, oh, ow] = best
                idx[n, c, oh, ow] = k_best


@helper
def _maxpool_plane_2x2s2(xp, o, ix):
    """One (H, W) plane ``xp`` pooled 2x2, stride 2, into ``o`` and ``ix`` (out_h, out_w).

    With the stride a literal, the loads are r0[2*ow], r0[2*ow + 1] and LLVM vectorises the
    compares, which a run-time stride prevents. NaN windows are redone per row, rarely."""
    out_h, out_w = o.shape
    for oh in range(out_h):
        r0 = xp[2 * oh]
        r1 = xp[2 * oh + 1]
        orow = o[oh]
        irow = ix[oh]
        nan = False
        for ow in range(out_w):
            a, b, d, e = r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]
            best, k_best = _max4(a, b, d, e)
            nan |= (a != a) | (b != b) | (d != d) | (e != e)
            orow[ow] = best
            irow[ow] = k_best
        if nan:  # np.argmax picks the first NaN
            for ow in range(out_w):
                a, b, d, e = r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]
                if a != a or b != b or d != d or e != e:
                    orow[ow] = np.nan
                    irow[ow] = _first_nan(xp, 2 * oh, 2 * ow, 2, 2)


@kernel(serial_below=SERIAL_BELOW)
def _maxpool_forward_2x2s2(x, out, idx):
    # the book's pooling exactly (2x2, stride 2), a plane per iteration
    C = x.shape[1]
    for p in prange(x.shape[0] * C):
        n = p // C
        c = p % C
        _maxpool_plane_2x2s2(x[n, c], out[n, c], idx[n, c])


@kernel(serial_below=SERIAL_BELOW)
def _maxpool_forward_valid(x, PH, PW, stride, out, idx):
    # pad == 0: every window lies inside the input, so no bounds checks in the hot loop
    N, C = x.shape[0], x.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p % C
        xp = x[n, c]
        for oh in range(out_h):
            h0 = oh * stride
            for ow in range(out_w):
                w0 = ow * stride
                best = xp[h0, w0]
                k_best = 0
                nan = False
                for fh in range(PH):
                    row = xp[h0 + fh]
                    for fw in range(PW):
                        v = row[w0 + fw]
                        nan |= v != v
                        # strict '>' keeps the first maximum; one plain compare lets LLVM
                        # make this branch-free (a NaN test in the same 'if' would not)
                        if v > best:
                            best = v
                            k_best = fh * PW + fw
                if nan:  # rare: np.argmax picks the first NaN
                    k_best = _first_nan(xp, h0, w0, PH, PW)
                    best = xp[h0 + k_best // PW, w0 + k_best % PW]
                out[n, c, oh, ow] = best
                idx[n, c, oh, ow] = k_best


@kernel(serial_below=SERIAL_BELOW)
def _maxpool_backward(dout, idx, PH, PW, stride, pad, dx):
    N, C, H, W = dx.shape
    out_h, out_w = dout.shape[2], dout.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p % C
        d = dx[n, c]
        d[:, :] = 0
        for oh in range(out_h):
            for ow in range(out_w):
                k = idx[n, c, oh, ow]
                ih = oh * stride + k // PW - pad
                iw = ow * stride + k % PW - pad
                if 0 <= ih < H and 0 <= iw < W:
                    d[ih, iw] += dout[n, c, oh, ow]


@helper
def _maxpool_plane_backward_2x2s2(g, ix, d):
    """Backward of :func:`_maxpool_plane_2x2s2` for one plane: ``d`` (H, W) gets ``g`` at
    the argmax cells ``ix`` and 0 elsewhere.

    Zero the plane (a memset), then one store per window, the row and column from k's bits
    rather than k // PW and k % PW (masked: never outside the window, whatever k holds).
    0 + g keeps the generic kernel's bits (0 + -0.0 is +0.0, as in the book's col2im)."""
    d[:, :] = 0
    for oh in range(g.shape[0]):
        grow = g[oh]
        irow = ix[oh]
        for ow in range(g.shape[1]):
            k = irow[ow]
            d[2 * oh + ((k >> 1) & 1), 2 * ow + (k & 1)] = 0.0 + grow[ow]


@kernel(serial_below=SERIAL_BELOW)
def _maxpool_backward_2x2s2(dout, idx, dx):
    C = dx.shape[1]
    for p in prange(dx.shape[0] * C):
        n = p // C
        c = p % C
        _maxpool_plane_backward_2x2s2(dout[n, c], idx[n, c], dx[n, c])


def book_arg_max(idx):
    """Plane-layout window indices (N, C, out_h, out_w) -> the book's flat (n, oh, ow, c)."""
    return idx.transpose(0, 2, 3, 1).reshape(-1).astype(np.intp)


def plane_arg_max(arg_max, out_shape):
    """The book's flat arg_max -> plane layout (N, C, out_h, out_w)."""
    N, C, out_h, out_w = out_shape
    return arg_max.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)


@kernel(serial_below=SERIAL_BELOW)
def _avgpool_forward(x, PH, PW, stride, pad, out):
    N, C, H, W = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    scale = 1.0 / (PH * PW)
    for p in prange(N * C):
        n = p // C
        c = p % C
        for oh in range(out_h):
            for ow in range(out_w):
                s = 0.0
                for fh in range(PH):
                    ih = oh * stride + fh - pad
                    if 0 <= ih < H:
                        for fw in range(PW):
                            iw = ow * stride + fw - pad
                            if 0 <= iw < W:
                                s += x[n, c, ih, iw]
                out[n, c, oh, ow] = s * scale


@kernel(serial_below=SERIAL_BELOW)
def _avgpool_backward(dout, PH, PW, stride, pad, dx):
    N, C, H, W = dx.shape
    out_h, out_w = dout.shape[2], dout.shape[3]
    scale = 1.0 / (PH * PW)
    for p in prange(N * C):
        n = p // C
        c = p % C
        d = dx[n, c]
        d[:, :] = 0
        for oh in range(out_h):
            for ow in range(out_w):
                g = dout[n, c, oh, ow] * scale
                for fh in range(PH):
                    ih = oh * stride + fh - pad
                    if 0 <= ih < H:
                        for fw in range(PW):
                            iw = ow * stride + fw - pad
                            if 0 <= iw < W:
                                d[ih, iw] += g


def _check(func, x, pool_h, pool_w, stride, pad):
    x = chk.as_array(func, "x", x, ndim=4)
    PH, PW, stride, pad = chk.window_args(func, pool_h, pool_w, stride, pad,
                                          names=("pool_h", "pool_w"))
    if 2 * pad > PH or 2 * pad > PW:
        raise ValueError(f"{func}: pad must be at most half the window (as in PyTorch), "
                         f"got pad={pad} for a {PH}x{PW} window")
    N, C, H, W = x.shape
    out_h, out_w = chk.out_size(func, H, W, PH, PW, stride, pad, names=("pool_h", "pool_w"))
    return x, PH, PW, stride, pad, (N, C, out_h, out_w)


def _out_dtype(x, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def maxpool_forward(x, pool_h, pool_w, stride=2, pad=0, dtype=None, layout="book"):
    """Max pooling with argmax in one pass.

    Returns
    -------
    out : ndarray (N, C, out_h, out_w) in ``dtype`` (default: x's float dtype)
    arg_max : ndarray
        ``layout="book"``: intp, shape (N*out_h*out_w*C,), the book's flat layout (module
        docstring). ``layout="plane"``: int8 (int16 for windows over 127 cells), shape
        (N, C, out_h, out_w), which the kernels write and read without striding.
    """
    x, PH, PW, stride, pad, oshape = _check("maxpool_forward", x, pool_h, pool_w, stride, pad)
    if layout not in ("book", "plane"):
        raise ValueError(f"maxpool_forward: layout must be 'book' or 'plane', got {layout!r}")
    out = np.empty(oshape, dtype=_out_dtype(x, dtype))
    idx = np.empty(oshape, dtype=np.int8 if PH * PW <= 127 else np.int32)
    if pad == 0 and PH == 2 and PW == 2 and stride == 2:
        _maxpool_forward_2x2s2.sized(x.size)(chk.contiguous(x), out, idx)
    elif pad == 0 and PH == 2 and PW == 2:
        _maxpool_forward_2x2.sized(x.size)(chk.contiguous(x), stride, out, idx)
    elif pad == 0:
        _maxpool_forward_valid.sized(x.size)(chk.contiguous(x), PH, PW, stride, out, idx)
    else:
        _maxpool_forward.sized(x.size)(chk.contiguous(x), PH, PW, stride, pad, out, idx)
    return out, (book_arg_max(idx) if layout == "book" else idx)


def maxpool_backward(dout, arg_max, x_shape, pool_h, pool_w, stride=2, pad=0, dtype=None):
    """Route each ``dout`` value to the input cell its window's maximum came from.

    ``arg_max`` in either layout of :func:`maxpool_forward` (told apart by its ndim).
    Overlapping windows (stride < pool) add up. Returns dx of shape ``x_shape``.
    """
    if len(tuple(x_shape)) != 4:
        raise ValueError(f"maxpool_backward: x_shape must be (N, C, H, W), got {x_shape}")
    dummy = np.empty((0,) + tuple(x_shape)[1:])
    _, PH, PW, stride, pad, oshape = _check("maxpool_backward", dummy, pool_h, pool_w,
                                            stride, pad)
    oshape = (x_shape[0],) + oshape[1:]
    dout = chk.as_array("maxpool_backward", "dout", dout)
    chk.check_shape("maxpool_backward", "dout", dout, oshape)
    arg_max = chk.as_array("maxpool_backward", "arg_max", arg_max)
    if arg_max.ndim != 4:
        if arg_max.size != dout.size:
            raise ValueError(f"maxpool_backward: arg_max has {arg_max.size} entries but dout "
                             f"{dout.shape} needs {dout.size}")
        arg_max = plane_arg_max(arg_max, oshape)
    chk.check_shape("maxpool_backward", "arg_max", arg_max, oshape)
    dx = np.empty(tuple(x_shape), dtype=_out_dtype(dout, dtype))
    if pad == 0 and PH == 2 and PW == 2 and stride == 2 and arg_max.dtype == np.int8:
        _maxpool_backward_2x2s2.sized(dx.size)(chk.contiguous(dout), chk.contiguous(arg_max),
                                               dx)
    else:
        _maxpool_backward.sized(dx.size)(chk.contiguous(dout), chk.contiguous(arg_max), PH, PW,
                                          stride, pad, dx)
    return dx


def avgpool_forward(x, pool_h, pool_w, stride=2, pad=0, dtype=None):
    """Average pooling (padded cells count as zeros). Returns (N, C, out_h, out_w)."""
    x, PH, PW, stride, pad, oshape = _check("avgpool_forward", x, pool_h, pool_w, stride, pad)
    out = np.empty(oshape, dtype=_out_dtype(x, dtype))
    _avgpool_forward.sized(x.size)(chk.contiguous(x), PH, PW, stride, pad, out)
    return out


def avgpool_backward(dout, x_shape, pool_h, pool_w, stride=2, pad=0, dtype=None):
    """Spread each ``dout`` value evenly over its window. Returns dx of shape ``x_shape``."""
    if len(tuple(x_shape)) != 4:
        raise ValueError(f"avgpool_backward: x_shape must be (N, C, H, W), got {x_shape}")
    dummy = np.empty((0,) + tuple(x_shape)[1:])
    _, PH, PW, stride, pad, oshape = _check("avgpool_backward", dummy, pool_h, pool_w,
                                            stride, pad)
    oshape = (x_shape[0],) + oshape[1:]
    dout = chk.as_array("avgpool_backward", "dout", dout)
    chk.check_shape("avgpool_backward", "dout", dout, oshape)
    dx = np.empty(tuple(x_shape), dtype=_out_dtype(dout, dtype))
    _avgpool_backward.sized(dx.size)(chk.contiguous(dout), PH, PW, stride, pad, dx)
    return dx
