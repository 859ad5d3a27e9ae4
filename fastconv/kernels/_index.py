"""Index arithmetic shared by the loop kernels (compiled, inlined into the callers)."""
from ..config import inline


@inline
def valid_range(k, pad, stride, size, out_size):
    """Output positions ``o`` in ``[lo, hi)`` whose input index ``o*stride + k - pad`` lies in
    ``[0, size)``: the rows (or columns) a filter tap ``k`` really reads, padding excluded."""
    lo = 0
    if pad - k > 0:
        lo = (pad - k + stride - 1) // stride
    last = size - 1 + pad - k
    if last < 0:
        return 0, 0
    hi = last // stride + 1
    if hi > out_size:
        hi = out_size
    if lo > hi:
        lo = hi
    return lo, hi


# Row helpers. Numba wraps negative indices (x[-1] is the last item), so ``dst[r + ow]`` with
# a start not provably >= 0 costs a check per item and keeps LLVM from vectorising; loops
# that run from 0 over views have no such check. Callers pass views and offsets in bounds.


@inline
def gather(dst, src, start, step):
    """``dst[i] = src[start + i*step]`` for every i of dst."""
    n = dst.shape[0]
    if step == 1:
        s1 = src[start:start + n]
        for i in range(n):
            dst[i] = s1[i]
    else:
        s = src[start:start + (n - 1) * step + 1:step]
        for i in range(n):
            dst[i] = s[i]


@inline
def scatter_add(dst, start, step, src):
    """``dst[start + i*step] += src[i]`` for every i of src."""
    n = src.shape[0]
    if step == 1:
        d1 = dst[start:start + n]
        for i in range(n):
            d1[i] += src[i]
    else:
        d = dst[start:start + (n - 1) * step + 1:step]
        for i in range(n):
            d[i] += src[i]


@inline
def fill(dst, value):
    """``dst[:] = value`` for a 1-D view."""
    for i in range(dst.shape[0]):
        dst[i] = value
