"""GEMM called from Numba through NumPy's own OpenBLAS (CBLAS, 64-bit integers).

Numba's ``np.dot`` reaches BLAS through SciPy's ``cython_blas``, which is SciPy's own OpenBLAS
build. On the per-sample GEMMs of the convolutions NumPy's build was faster in float32
(DeepConvNet's conv2 forward GEMMs 1.7x, bench/README) and the same in float64, and CBLAS takes
``beta``, so dW accumulates in place instead of through a temporary.

The kernels call the external symbols ``fastconv_cblas_sgemm`` / ``fastconv_cblas_dgemm``;
this module binds them at import (``llvmlite.binding.add_symbol``), in every process, before
any kernel is loaded. So Numba's on-disk cache holds no address: a cached kernel links to
whatever this process bound. Where NumPy's BLAS exports no ILP64 CBLAS GEMM (MKL, a system
OpenBLAS built otherwise) the symbols go to a fallback compiled here with ``np.dot``.
"""
import ctypes

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..config import CACHE, helper, openblas_controllers

__all__ = ["gemm", "gemm_flat", "CBLAS_SOURCE"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# CBLAS ILP64 names, as OpenBLAS builds them with a symbol suffix (NumPy's wheels: the first)
_NAMES = {"d": ("scipy_cblas_dgemm64_", "cblas_dgemm64_"),
          "s": ("scipy_cblas_sgemm64_", "cblas_sgemm64_")}
_SYMBOL = {types.float64: "fastconv_cblas_dgemm", types.float32: "fastconv_cblas_sgemm"}


def _find_cblas():
    """``({"d": address, "s": address}, library path)`` of NumPy's OpenBLAS CBLAS GEMMs, or
    ``(None, None)``."""
    controllers = openblas_controllers()  # none (no threadpoolctl): the fallback
    numpy_dir = np.__file__.rsplit("numpy", 1)[0]
    # NumPy's own library first (SciPy's is another build)
    controllers.sort(key=lambda c: not c.filepath.startswith(numpy_dir + "numpy"))
    for c in controllers:
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
    """A C function with CBLAS's GEMM signature (row-major, C-contiguous operands, lda the
    row length) computing with ``np.dot``: used where no ILP64 CBLAS is found."""
    fl = numba.float64 if ctype == "d" else numba.float32
    ptr = types.CPointer(fl)
    sig = types.void(types.int32, types.int32, types.int32, types.int64, types.int64,
                     types.int64, fl, ptr, types.int64, ptr, types.int64, fl, ptr, types.int64)

    def gemm_c(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc):
        A = numba.carray(a, (K, M)).T if ta == _TRANS else numba.carray(a, (M, K))
        B = numba.carray(b, (N, K)).T if tb == _TRANS else numba.carray(b, (K, N))
        C = numba.carray(c, (M, N))
        prod = np.dot(np.ascontiguousarray(A), np.ascontiguousarray(B))
        if beta == 0:
            C[:, :] = alpha * prod
        else:
            C[:, :] = alpha * prod + beta * C

    # compiled only where this fallback is bound (no ILP64 CBLAS), cached like the kernels
    return numba.cfunc(sig, cache=CACHE)(gemm_c)


def _bind():
    found, path = _find_cblas()
    if found is None:
        _keep.extend([_fallback("d"), _fallback("s")])  # alive as long as the module
        found = {"d": _keep[0].address, "s": _keep[1].address}
        path = "fallback (np.dot)"
    llvm.add_symbol(_SYMBOL[types.float64], found["d"])
    llvm.add_symbol(_SYMBOL[types.float32], found["s"])
    return path


_keep = []
CBLAS_SOURCE = _bind()  # what the kernels' GEMMs call: a library path or the fallback


@intrinsic
def _cblas_gemm(typingctx, tb, M, N, K, alpha, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    """``C = alpha * A @ op(B) + beta * C`` on C-contiguous float32/float64 arrays of one
    dtype, each matrix given by its first element's flat index (``a0``...) and its row
    stride (``lda``...), op(B) = B.T when ``tb``. No checks: callers check the extents."""
    arrays = (A, B, C)
    if not all(isinstance(a, types.Array) and a.dtype == A.dtype and a.layout == "C"
               for a in arrays) or A.dtype not in _SYMBOL:
        return None
    dt, i = A.dtype, types.intp
    sig = types.void(i, i, i, i, dt, A, i, i, B, i, i, dt, C, i, i)

    def codegen(context, builder, signature, args):
        tb, M, N, K, alpha, a, a0, lda, b, b0, ldb, beta, c, c0, ldc = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        fl = context.get_value_type(dt)
        vp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, fl, vp, i64, vp,
                                               i64, fl, vp, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOL[dt])

        def data(value, aty, first):
            base = context.make_array(aty)(context, builder, value).data
            return builder.bitcast(builder.gep(base, [first]), vp)

        trans_b = builder.select(builder.icmp_signed("!=", tb, ir.Constant(tb.type, 0)),
                                 ir.Constant(i32, _TRANS), ir.Constant(i32, _NO_TRANS))
        builder.call(fn, [ir.Constant(i32, _ROW_MAJOR), ir.Constant(i32, _NO_TRANS), trans_b,
                          M, N, K, alpha, data(a, A, a0), lda, data(b, B, b0), ldb, beta,
                          data(c, C, c0), ldc])
        return context.get_dummy_value()

    return sig, codegen


@helper
def gemm(A, B, C, trans_b, beta):
    """``C[:] = A @ B + beta * C`` (``A @ B.T`` when ``trans_b``), all C-contiguous 2-D of one
    float dtype; ``beta`` 0 ignores what C held. Shapes are checked (a wrong one raises)."""
    M, K = A.shape
    N = B.shape[0] if trans_b else B.shape[1]
    if (B.shape[1] if trans_b else B.shape[0]) != K or C.shape[0] != M or C.shape[1] != N:
        raise ValueError("gemm: shapes do not match")
    _cblas_gemm(1 if trans_b else 0, M, N, K, A.dtype.type(1), A, 0, K, B, 0, B.shape[1],
                C.dtype.type(beta), C, 0, N)


@helper
def _last(first, rows, cols, ld):
    # flat index of the last element of a rows x cols matrix at ``first`` with row stride ld
    return first + (rows - 1) * ld + cols - 1


@helper
def gemm_flat(trans_b, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    """:func:`gemm` on matrices inside C-contiguous arrays of any shape: the M x K matrix
    A starting at flat index ``a0`` with row stride ``lda``, and likewise B (K x N, or N x K
    when ``trans_b``) and C (M x N). Raises if a matrix reaches past its array or a row
    stride is shorter than its row."""
    b_rows, b_cols = (N, K) if trans_b else (K, N)
    if (lda < K or ldb < b_cols or ldc < N or min(a0, b0, c0) < 0
            or _last(a0, M, K, lda) >= A.size or _last(b0, b_rows, b_cols, ldb) >= B.size
            or _last(c0, M, N, ldc) >= C.size):
        raise ValueError("gemm_flat: a matrix reaches past its array")
    _cblas_gemm(1 if trans_b else 0, M, N, K, A.dtype.type(1), A, a0, lda, B, b0, ldb,
                C.dtype.type(beta), C, c0, ldc)
