"""Argument checks shared by the kernel wrappers.

Every message names the function, the argument and the sizes, because the book's NumPy code
fails deep inside a reshape (or silently broadcasts) on the same input.
"""
import operator

import numpy as np

from .. import config


def as_int(func, name, value, minimum):
    """``value`` as a Python int >= ``minimum``; TypeError for non-integers."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be an integer, got {value!r}")
    try:
        ivalue = operator.index(value)
    except TypeError:
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            ivalue = int(value)
        else:
            raise TypeError(f"{func}: {name} must be an integer, got {value!r}") from None
    if ivalue < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {ivalue}")
    return ivalue


def kernel_dtype(dtype):
    """The dtype a kernel gets for data of ``dtype``: Numba has no float16, and float32 holds
    every float16 value exactly, so results equal the book's NumPy promotion of float16."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def as_array(func, name, value, ndim=None):
    """``value`` as a numeric ndarray a kernel accepts (no copy when it already is one; float16
    becomes float32), with ``ndim`` checked."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{func}: {name} must be a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{func}: {name} must be {ndim}-D, got shape {arr.shape}")
    return arr.astype(kernel_dtype(arr.dtype), copy=False)


def window_args(func, filter_h, filter_w, stride, pad, names=("filter_h", "filter_w")):
    """Checked (filter_h, filter_w, stride, pad)."""
    return (as_int(func, names[0], filter_h, 1), as_int(func, names[1], filter_w, 1),
            as_int(func, "stride", stride, 1), as_int(func, "pad", pad, 0))


def out_size(func, H, W, filter_h, filter_w, stride, pad, names=("filter_h", "filter_w")):
    """(out_h, out_w), floored as in the book and PyTorch; error if the filter does not fit."""
    if filter_h > H + 2 * pad or filter_w > W + 2 * pad:
        raise ValueError(
            f"{func}: window {names[0]}x{names[1]} = {filter_h}x{filter_w} is larger than the "
            f"padded input {H + 2 * pad}x{W + 2 * pad} (H x W = {H}x{W}, pad = {pad})")
    return (H + 2 * pad - filter_h) // stride + 1, (W + 2 * pad - filter_w) // stride + 1


def check_shape(func, name, arr, expected):
    """ValueError unless ``arr.shape == expected``."""
    if tuple(arr.shape) != tuple(expected):
        raise ValueError(f"{func}: {name} must have shape {tuple(expected)}, got {arr.shape}")


def contiguous(arr):
    """C-contiguous view or copy in a dtype Numba compiles (float16 as float32): Numba compiles
    one fast C-layout version per dtype."""
    arr = np.asarray(arr)
    return np.ascontiguousarray(arr, dtype=kernel_dtype(arr.dtype))


def conv_args(func, x, W, stride, pad):
    """Checked convolution arguments: ``(x, W, stride, pad, (N, FN, out_h, out_w))``."""
    x = as_array(func, "x", x, ndim=4)
    W = as_array(func, "W", W, ndim=4)
    stride = as_int(func, "stride", stride, 1)
    pad = as_int(func, "pad", pad, 0)
    N, C, H, Wd = x.shape
    FN, FC, FH, FW = W.shape
    if FC != C:
        raise ValueError(f"{func}: x has {C} channels (shape {x.shape}) but W expects {FC} "
                         f"(shape {W.shape})")
    out_h, out_w = out_size(func, H, Wd, FH, FW, stride, pad, names=("FH", "FW"))
    return x, W, stride, pad, (N, FN, out_h, out_w)


def bias(func, b, FN):
    """``b`` as (FN,): one bias per filter."""
    b = as_array(func, "b", b)
    if b.size != FN or b.ndim > 1 and b.shape[-1] != FN:
        raise ValueError(f"{func}: b must hold one bias per filter ({FN},), got shape {b.shape}")
    return b.reshape(FN)


def float_dtype(x, W, dtype):
    """The kernels' float32 or float64: ``dtype`` if given, else the arrays' (float16 and
    integers compute in float32 or wider, as NumPy promotes them against float32)."""
    dt = np.dtype(dtype) if dtype is not None else np.result_type(x.dtype, W.dtype, np.float32)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"the convolution computes in float32 or float64, not {dt}")
    return dt


def layer_dtype(*arrays):
    """What a layer computes in: float64 (the book's rule) unless float32 mode is on; then
    the result type of the arrays (or dtypes), at least float32."""
    if not config.keep_dtype():
        return np.dtype(np.float64)
    return np.result_type(*[getattr(a, "dtype", a) for a in arrays], np.float32)


def dout_shape(func, dout, expected):
    """ValueError unless ``dout`` has shape ``expected`` (None: no forward pass yet): an
    elementwise backward would broadcast a wrong-shaped dout silently."""
    if expected is None:
        raise ValueError(f"{func}: no forward pass to take the gradient of; call forward first")
    if np.shape(dout) != tuple(expected):
        raise ValueError(f"{func}: dout must have shape {tuple(expected)}, got {np.shape(dout)}")
