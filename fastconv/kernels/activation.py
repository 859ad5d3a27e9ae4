"""ReLU forward (output and mask in one pass) and backward (in place, as the book)."""
import numpy as np
from numba import prange

from .. import sizes
from ..config import kernel
from . import _checks as chk

# Below this many values the serial loop runs: inside a training step (threads cold, or
# BLAS's just busy) a parallel launch costs more than the loop on arrays this small.
SERIAL_BELOW = sizes.SERIAL_BELOW["relu"]


@kernel(serial_below=SERIAL_BELOW)
def _relu_forward(x, out, mask):
    for i in prange(x.size):
        v = x[i]
        m = v <= 0
        mask[i] = m
        out[i] = 0 if m else v


@kernel(serial_below=SERIAL_BELOW)
def _relu_backward(dout, mask):
    for i in prange(dout.size):
        if mask[i]:
            dout[i] = 0


def relu_forward(x):
    """``(out, mask)`` with ``mask = x <= 0`` and ``out = x`` where not masked, else 0.

    ``out`` has x's dtype and shape; NaN is not <= 0, so it passes through as in the book.
    """
    x = np.asarray(x)
    work = chk.contiguous(x)  # float16 runs as float32: the same values, then cast back exactly
    out = np.empty(x.shape, dtype=work.dtype)
    mask = np.empty(x.shape, dtype=np.bool_)
    relu = _relu_forward.sized(x.size)
    relu(work.reshape(-1), out.reshape(-1), mask.reshape(-1))
    return out.astype(x.dtype, copy=False), mask


def relu_backward(dout, mask):
    """Zero ``dout`` where ``mask`` is True, in place (the book's ``dout[mask] = 0``); returns dout."""
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"relu_backward: dout must be an ndarray, got {type(dout).__name__}")
    mask = np.asarray(mask)
    chk.check_shape("relu_backward", "dout", dout, mask.shape)
    in_place = chk.kernel_dtype(dout.dtype) == dout.dtype  # float16: the kernel would get a copy
    if in_place and dout.flags.c_contiguous and mask.flags.c_contiguous:
        _relu_backward.sized(dout.size)(dout.reshape(-1), mask.reshape(-1))
    else:
        dout[mask] = 0  # a strided view or float16: NumPy writes through it correctly
    return dout
