"""GEMM called from Numba kernels, through NumPy's own OpenBLAS (CBLAS, 64-bit integers).

The convolution and Affine kernels call BLAS from their threads, through the symbols
``fastconv_cblas_dgemm`` / ``_sgemm``, which this module binds at import to NumPy's OpenBLAS
(so Numba's on-disk cache holds no address), or, where NumPy's BLAS has no ILP64 CBLAS GEMM
(MKL, other builds), to a fallback compiled here with ``np.dot``. While fastconv's
threads call BLAS, BLAS runs on one thread (:func:`one_blas_thread`): threads calling a
multithreaded OpenBLAS wait on its lock.
"""
import contextlib
import ctypes

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..config import CACHE, helper

__all__ = ["gemm", "gemm_at", "one_blas_thread", "CBLAS_SOURCE"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# CBLAS ILP64 names, as OpenBLAS builds them with a symbol suffix (NumPy's wheels: the first)
_NAMES = {"d": ("scipy_cblas_dgemm64_", "cblas_dgemm64_"),
          "s": ("scipy_cblas_sgemm64_", "cblas_sgemm64_")}
_SYMBOL = {types.float64: "fastconv_cblas_dgemm", types.float32: "fastconv_cblas_sgemm"}


def _controllers():
    """threadpoolctl's BLAS controllers (NumPy's, SciPy's ...), NumPy's own first."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: then BLAS keeps its own thread count
        return None
    ctl = ThreadpoolController().select(user_api="blas")
    numpy_dir = np.__file__.rsplit("numpy", 1)[0] + "numpy"
    ctl.lib_controllers.sort(key=lambda c: not c.filepath.startswith(numpy_dir))
    return ctl


def _find_cblas(ctl):
    """``({"d": address, "s": address}, library path)`` of an ILP64 CBLAS, or (None, None)."""
    for c in (ctl.lib_controllers if ctl is not None else []):
        found = {}
        for kind, names in _NAMES.items():
            for name in names:
                if hasattr(c.dynlib, name):
                    found[kind] = ctypes.cast(getattr(c.dynlib, name), ctypes.c_void_p).value
                    break
        if len(found) == 2:
            return found, c.filepath
    return None, None


def _fallback(ctype):
    """A C function with CBLAS's GEMM signature (row-major, lda the row stride) computing
    with ``np.dot``, for BLAS builds without an ILP64 CBLAS."""
    fl = numba.float64 if ctype == "d" else numba.float32
    ptr = types.CPointer(fl)
    sig = types.void(types.int32, types.int32, types.int32, types.int64, types.int64,
                     types.int64, fl, ptr, types.int64, ptr, types.int64, fl, ptr, types.int64)

    def gemm_c(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc):
        A = numba.carray(a, (K, lda))[:, :M].T if ta == _TRANS else \
            numba.carray(a, (M, lda))[:, :K]
        B = numba.carray(b, (N, ldb))[:, :K].T if tb == _TRANS else \
            numba.carray(b, (K, ldb))[:, :N]
        C = numba.carray(c, (M, ldc))[:, :N]
        prod = np.dot(np.ascontiguousarray(A), np.ascontiguousarray(B))
        for i in range(M):
            for j in range(N):
                C[i, j] = alpha * prod[i, j] + (beta * C[i, j] if beta != 0 else 0)

    return numba.cfunc(sig, cache=CACHE)(gemm_c)


_keep = []  # the fallbacks stay alive as long as the module


def _bind(ctl):
    found, path = _find_cblas(ctl)
    if found is None:
        _keep.extend([_fallback("d"), _fallback("s")])
        found, path = {"d": _keep[0].address, "s": _keep[1].address}, "fallback (np.dot)"
    llvm.add_symbol(_SYMBOL[types.float64], found["d"])
    llvm.add_symbol(_SYMBOL[types.float32], found["s"])
    return path


_BLAS = _controllers()
CBLAS_SOURCE = _bind(_BLAS)  # what the kernels' GEMMs call: a library path or the fallback


class _OneBlasThread:
    # threadpoolctl's limit() without its bookkeeping, which costs more than a small kernel:
    # the libraries' own get/set calls, and only where a count is not 1 already
    def __enter__(self):
        self.saved = [(c, c.get_num_threads()) for c in _BLAS.lib_controllers]
        for c, n in self.saved:
            if n not in (None, 1):
                c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for c, n in self.saved:
            if n not in (None, 1):
                c.set_num_threads(n)


def one_blas_thread():
    """Context: every loaded BLAS on one thread, its own count restored on exit."""
    if _BLAS is None:
        return contextlib.nullcontext()
    return _OneBlasThread()


@intrinsic
def _cblas_gemm(typingctx, ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    """``C = op(A) @ op(B) + beta * C`` on C-contiguous float32/float64 arrays of one dtype,
    each matrix given by its first element's flat index (``a0``...) and row stride (``lda``...).
    No checks: callers check the extents."""
    if not all(isinstance(a, types.Array) and a.dtype == A.dtype and a.layout == "C"
               for a in (A, B, C)) or A.dtype not in _SYMBOL:
        return None
    dt, i = A.dtype, types.intp
    sig = types.void(i, i, i, i, i, A, i, i, B, i, i, dt, C, i, i)

    def codegen(context, builder, signature, args):
        ta, tb, M, N, K, a, a0, lda, b, b0, ldb, beta, c, c0, ldc = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        fl = context.get_value_type(dt)
        vp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, fl, vp, i64, vp,
                                               i64, fl, vp, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOL[dt])

        def data(value, aty, first):
            base = context.make_array(aty)(context, builder, value).data
            return builder.bitcast(builder.gep(base, [first]), vp)

        def trans(flag):
            return builder.select(builder.icmp_signed("!=", flag, ir.Constant(flag.type, 0)),
                                  ir.Constant(i32, _TRANS), ir.Constant(i32, _NO_TRANS))

        builder.call(fn, [ir.Constant(i32, _ROW_MAJOR), trans(ta), trans(tb), M, N, K,
                          ir.Constant(fl, 1.0), data(a, A, a0), lda, data(b, B, b0), ldb, beta,
                          data(c, C, c0), ldc])
        return context.get_dummy_value()

    return sig, codegen


@helper
def gemm_at(trans_a, trans_b, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    """``C = op(A) @ op(B) + beta * C`` on matrices inside flat C-contiguous arrays (1-D:
    one compiled variant per dtype): op(A) is M x K, stored from index ``a0`` with row
    stride ``lda`` (as K x M when ``trans_a``); likewise B and C. Raises if a matrix reaches
    past its array."""
    a_rows, a_cols = (K, M) if trans_a else (M, K)
    b_rows, b_cols = (N, K) if trans_b else (K, N)
    # each matrix's last element: first + (rows - 1) * row stride + cols - 1
    if (lda < a_cols or ldb < b_cols or ldc < N or min(a0, b0, c0) < 0
            or a0 + (a_rows - 1) * lda + a_cols > A.size
            or b0 + (b_rows - 1) * ldb + b_cols > B.size or c0 + (M - 1) * ldc + N > C.size):
        raise ValueError("gemm_at: a matrix reaches past its array")
    if K == 0:  # CBLAS rejects a zero row stride; op(A) @ op(B) is then all zeros
        for i in range(M):
            for j in range(N):
                C[c0 + i * ldc + j] *= beta
    elif M > 0 and N > 0:
        _cblas_gemm(1 if trans_a else 0, 1 if trans_b else 0, M, N, K, A, a0, lda, B, b0, ldb,
                    C.dtype.type(beta), C, c0, ldc)


@helper
def gemm(A, B, C, trans_b, beta):
    """``C[:] = A @ B + beta * C`` (``A @ B.T`` when ``trans_b``), all C-contiguous 2-D of one
    float dtype. Shapes are checked (a wrong one raises)."""
    M, K = A.shape
    N = B.shape[0] if trans_b else B.shape[1]
    if (B.shape[1] if trans_b else B.shape[0]) != K or C.shape[0] != M or C.shape[1] != N:
        raise ValueError("gemm: shapes do not match")
    gemm_at(False, trans_b, M, N, K, A.reshape(A.size), 0, K, B.reshape(B.size), 0,
            B.shape[1], beta, C.reshape(C.size), 0, N)
