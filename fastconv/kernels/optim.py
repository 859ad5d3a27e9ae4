"""Optimizer updates fused into one pass over each parameter array.

The book's Adam runs about ten NumPy passes per array, each with a temporary the size of the
array, a visible part of a training step for the large weight matrices. One pass computes the
same operations in the same order, so float64 results are bit-identical to the book's (float32
too, under NumPy 2's promotion rules). Large arrays are split into equal slices, one per
thread (:func:`~fastconv.kernels._launch.launch`).
"""
import numpy as np

from .. import sizes
from ._launch import launch, launchable, threads


SERIAL_BELOW = sizes.SERIAL_BELOW["adam"]  # values; fewer: one run (waking threads costs more)


@launchable
def _adam_update(r, n_runs, param, grad, m, v, lr_t, c1, c2, eps):
    # types: c1, c2, eps in the arrays' dtype; lr_t float64 (NumPy's np.float64 scalar)
    # the book's three lines, element by element, operations in the same order:
    #   m += (1 - beta1) * (grad - m); v += (1 - beta2) * (grad**2 - v)
    #   param -= lr_t * m / (sqrt(v) + eps)
    # run r: the r-th of n_runs equal slices, indexed from 0 so that LLVM vectorises the loop
    lo, hi = r * param.size // n_runs, (r + 1) * param.size // n_runs
    p, gr, ms, vs = param[lo:hi], grad[lo:hi], m[lo:hi], v[lo:hi]
    for i in range(p.shape[0]):
        g = gr[i]
        mi = ms[i] + c1 * (g - ms[i])
        vi = vs[i] + c2 * (g * g - vs[i])
        ms[i] = mi
        vs[i] = vi
        p[i] -= lr_t * mi / (np.sqrt(vi) + eps)


# float32 arrays follow NumPy 2's promotion rules in the book's lines (Python floats adapt to
# float32, the np.float64 lr_t does not), which the kernel reproduces by the types of the
# scalars it gets; NumPy 1's value-based casting differs, so there float32 keeps NumPy's lines.
_DTYPES = (np.dtype(np.float64),) + (
    (np.dtype(np.float32),) if int(np.__version__.split(".")[0]) >= 2 else ())


def _flat(a, shape, dtype):
    """``a`` as a flat view of the given shape and dtype, or None (then NumPy does it)."""
    if (isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == shape
            and a.flags.c_contiguous):
        return a.reshape(-1)
    return None


def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps=1e-7):
    """One Adam step on ``param`` in place (and its moments ``m``, ``v``), as the book's
    ``Adam.update`` does for one key. Returns False, changing nothing, unless all four are
    C-contiguous arrays of one shape and one dtype the kernel reproduces bit for bit
    (float64; float32 with NumPy >= 2): then the caller runs the book's own lines."""
    dtype = getattr(param, "dtype", None)
    if dtype not in _DTYPES or not getattr(param, "flags", None) or not param.flags.writeable:
        return False
    shape = param.shape
    flat = [_flat(a, shape, dtype) for a in (param, grad, m, v)]
    if any(a is None for a in flat):
        return False
    scalar = dtype.type  # what the book's Python floats become next to these arrays
    launch(_adam_update, threads() if flat[0].size >= SERIAL_BELOW else 1, *flat, np.float64(lr_t),
           scalar(1.0 - beta1), scalar(1.0 - beta2), scalar(eps))
    return True
