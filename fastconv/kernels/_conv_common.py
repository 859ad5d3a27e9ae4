"""Pieces shared by the convolution paths: argument checks and the per-sample unfold/fold."""
import numpy as np

from ..config import helper
from . import _checks as chk
from ._index import fill, gather, scatter_add, valid_range


@helper
def _unfold_sample(x, n, FH, FW, stride, pad, out_h, out_w, col):
    """col[(c*FH + fh)*FW + fw, oh*out_w + ow] for sample n (zeros on the padding)."""
    if stride == 1 and pad == 0:
        _unfold_valid(x, n, FH, FW, out_h, out_w, col)
    elif stride == 1:
        # padded: copy the sample into a zero-bordered buffer, then plain row copies (the
        # general loop's per-row ranges and fills cost more than this copy: DeepConvNet's
        # 7- to 28-wide rows, bench.micro row 6)
        _unfold_valid(_padded(x, n, pad), 0, FH, FW, out_h, out_w, col)
    else:
        _unfold_general(x, n, FH, FW, stride, pad, out_h, out_w, col)


@helper
def _padded(x, n, pad):
    """Sample n of x with ``pad`` zeros around each plane, shape (1, C, H + 2pad, W + 2pad)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xp = np.zeros((1, C, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    for c in range(C):
        for h in range(H):
            d = xp[0, c, h + pad, pad:pad + W]
            s = x[n, c, h]
            for i in range(W):
                d[i] = s[i]
    return xp


@helper
def _unfold_general(x, n, FH, FW, stride, pad, out_h, out_w, col):
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for c in range(C):
        xc = x[n, c]
        for fh in range(FH):
            oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
            for fw in range(FW):
                ow_lo, ow_hi = valid_range(fw, pad, stride, W, out_w)
                dst = col[(c * FH + fh) * FW + fw]
                # the fills only where there is padding: an empty fill still cost a slice
                if oh_lo > 0:
                    fill(dst[:oh_lo * out_w], 0)
                start = ow_lo * stride + fw - pad
                for oh in range(oh_lo, oh_hi):
                    r = oh * out_w
                    if ow_lo > 0:
                        fill(dst[r:r + ow_lo], 0)
                    gather(dst[r + ow_lo:r + ow_hi], xc[oh * stride + fh - pad], start, stride)
                    if ow_hi < out_w:
                        fill(dst[r + ow_hi:r + out_w], 0)
                if oh_hi < out_h:
                    fill(dst[oh_hi * out_w:out_h * out_w], 0)


@helper
def _unfold_valid(x, n, FH, FW, out_h, out_w, col):
    # stride 1, no padding (SimpleConvNet's conv1): every row is a plain copy, 2-2.5x faster
    # than the general loop above with its ranges and fills (bench.micro row 5). The loops
    # are written out rather than through _index.gather / scatter_add: with both slices cut
    # to out_w here, gather's version took 1.4-1.8x as long (in-session script).
    for c in range(x.shape[1]):
        xc = x[n, c]
        for fh in range(FH):
            for fw in range(FW):
                dst = col[(c * FH + fh) * FW + fw]
                for oh in range(out_h):
                    d = dst[oh * out_w:(oh + 1) * out_w]
                    s = xc[oh + fh, fw:fw + out_w]
                    for i in range(out_w):
                        d[i] = s[i]


@helper
def _fold_sample(dcol, FH, FW, stride, pad, out_w, img):
    """img[c] = sum of the dcol rows of channel c put back on their input cells (img is one
    sample's (C, H, W) block; overlaps add up in the fixed order fh, fw, oh, ow)."""
    if stride == 1 and pad == 0:
        _fold_valid(dcol, FH, FW, out_w, img)
    elif stride == 1:
        # padded: fold onto a bordered buffer, keep its interior (each interior cell gets the
        # same additions in the same order as in _fold_general, so the same bits)
        C, H, W = img.shape
        buf = np.empty((C, H + 2 * pad, W + 2 * pad), dtype=img.dtype)
        _fold_valid(dcol, FH, FW, out_w, buf)
        for c in range(C):
            for h in range(H):
                d = img[c, h]
                s = buf[c, h + pad, pad:pad + W]
                for i in range(W):
                    d[i] = s[i]
    else:
        _fold_general(dcol, FH, FW, stride, pad, out_w, img)


@helper
def _fold_general(dcol, FH, FW, stride, pad, out_w, img):
    C, H, W = img.shape
    out_h = dcol.shape[1] // out_w
    for c in range(C):
        plane = img[c]
        plane[:, :] = 0
        for fh in range(FH):
            oh_lo, oh_hi = valid_range(fh, pad, stride, H, out_h)
            for fw in range(FW):
                ow_lo, ow_hi = valid_range(fw, pad, stride, W, out_w)
                src = dcol[(c * FH + fh) * FW + fw]
                for oh in range(oh_lo, oh_hi):
                    r = oh * out_w
                    scatter_add(plane[oh * stride + fh - pad], ow_lo * stride + fw - pad,
                                stride, src[r + ow_lo:r + ow_hi])


@helper
def _fold_valid(dcol, FH, FW, out_w, img):
    # stride 1, no padding: plain row adds, in the same order as _fold_general
    out_h = dcol.shape[1] // out_w
    for c in range(img.shape[0]):
        plane = img[c]
        plane[:, :] = 0
        for fh in range(FH):
            for fw in range(FW):
                src = dcol[(c * FH + fh) * FW + fw]
                for oh in range(out_h):
                    d = plane[oh + fh, fw:fw + out_w]
                    s = src[oh * out_w:(oh + 1) * out_w]
                    for i in range(out_w):
                        d[i] += s[i]


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
