"""The Affine layer's matrix products, on fastconv's threads with BLAS on one thread each.

``np.dot`` hands a large product to OpenBLAS's own threads, which keep spinning for a while
after it returns, on the cores that fastconv's next kernel needs. Here the rows of the result
are split over fastconv's threads instead, each calling BLAS on one thread: the same GEMM,
split where OpenBLAS would split it (never along the summed axis), so np.dot's numbers.
"""
import numpy as np

from . import _checks as chk
from ._blas import gemm_at, one_blas_thread
from ._launch import launch, launchable, threads

# The rows go in this many blocks, one GEMM each, whatever the thread count: BLAS may pick
# another kernel for another number of rows, so the blocks, not the threads, fix the bits.
# More blocks would pack the other operand once more for each.
BLOCKS = 2
MIN_ROWS = 16  # fewer rows per block than this: one block


@launchable
def _matmul(r, n_runs, a, b, trans_a, trans_b, n_blocks, out):
    # rows of block i of out = the same rows of op(a) @ op(b); run r: contiguous blocks
    M, N = out.shape
    K = a.shape[0] if trans_a else a.shape[1]
    for i in range(r * n_blocks // n_runs, (r + 1) * n_blocks // n_runs):
        m0, m1 = i * M // n_blocks, (i + 1) * M // n_blocks
        a0 = m0 if trans_a else m0 * a.shape[1]  # op(a)'s row m0: a column of a, or a row
        gemm_at(trans_a, trans_b, m1 - m0, N, K, a.reshape(a.size), a0, a.shape[1],
                b.reshape(b.size), 0, b.shape[1], 0, out.reshape(out.size), m0 * N, N)


def matmul(a, b, trans_a=False, trans_b=False):
    """``op(a) @ op(b)``, op the transpose where asked, for 2-D arrays.

    float32 and float64 (after NumPy's promotion of the two) run here; other dtypes (float16
    parameters, say) go to ``np.dot``, so the result is always NumPy's.
    """
    dt = np.result_type(np.asarray(a), np.asarray(b))  # before as_array widens float16
    a = chk.as_array("matmul", "a", a, ndim=2)
    b = chk.as_array("matmul", "b", b, ndim=2)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    if opa.shape[1] != opb.shape[0]:
        raise ValueError(f"matmul: op(a) has shape {opa.shape} and op(b) {opb.shape}; their "
                         "inner sizes differ")
    if dt not in (np.float32, np.float64):
        return np.dot(np.asarray(a, dt).T if trans_a else np.asarray(a, dt),
                      np.asarray(b, dt).T if trans_b else np.asarray(b, dt))
    M = opa.shape[0]
    out = np.empty((M, opb.shape[1]), dtype=dt)
    n_blocks = max(1, min(BLOCKS, M // MIN_ROWS))
    with one_blas_thread():
        launch(_matmul, min(threads(), n_blocks), chk.contiguous(a.astype(dt, copy=False)),
               chk.contiguous(b.astype(dt, copy=False)), trans_a, trans_b, n_blocks, out)
    return out
