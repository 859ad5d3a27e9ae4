"""Index arithmetic shared by the loop kernels (compiled, inlined into the callers)."""
from ..config import helper


@helper
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
