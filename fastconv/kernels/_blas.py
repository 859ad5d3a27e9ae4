"""GEMM called from Numba kernels: the Fortran ``dgemm``/``sgemm`` of a BLAS already loaded.

The convolution and Affine kernels call BLAS from their threads, through the symbols
``fastconv_dgemm`` / ``fastconv_sgemm``, which this module binds at import (so Numba's
on-disk cache holds no address) to one of two routes:

``numpy``
    NumPy's own BLAS (pip's OpenBLAS wheel, Debian's or conda's libblas, MKL), where it
    exports a Fortran GEMM: the kernels then compute with ``np.dot``'s library.
``scipy``
    SciPy's ``scipy.linalg.cython_blas``, which every SciPy build has (OpenBLAS, MKL,
    Accelerate): the route where NumPy's BLAS exports none (NumPy on Accelerate, say).

``FASTCONV_BLAS=numpy|scipy`` picks one (see :mod:`fastconv.config`); unset, the first that
the process offers. While fastconv's threads call BLAS, the library they call runs on one
thread (:func:`one_blas_thread`): threads calling a multithreaded OpenBLAS wait on its lock.
"""
import collections
import contextlib
import ctypes
import os
import sys

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from ..config import BLAS_ROUTE, helper

__all__ = ["gemm", "gemm_at", "one_blas_thread", "ROUTE", "ROUTES", "BlasRoute"]

# Sizes are passed as pointers to 64-bit integers: an ILP64 BLAS reads all 8 bytes, an LP64
# one the first 4, which on a little-endian CPU (every CPU Numba runs on) hold the same value
if sys.byteorder != "little":
    raise ImportError("fastconv's BLAS calls need a little-endian CPU")
_INT_MAX = 2 ** 31 - 1  # the largest size an LP64 BLAS takes
_SYMBOL = {types.float64: "fastconv_dgemm", types.float32: "fastconv_sgemm"}
# Fortran GEMM names in NumPy's BLAS: pip's wheels (ILP64, suffixed), then plain builds
_NUMPY_NAMES = (("scipy_dgemm_64_", "scipy_sgemm_64_"), ("dgemm_64_", "sgemm_64_"),
                ("dgemm_", "sgemm_"))

BlasRoute = collections.namedtuple("BlasRoute", "name dgemm sgemm libraries")
BlasRoute.__doc__ = """A Fortran GEMM the kernels can call: the route's name, the addresses of
``dgemm`` and ``sgemm``, and the paths of the BLAS libraries it runs in (threadpoolctl's)."""


def _blas_libraries():
    """threadpoolctl's controller of the loaded BLAS libraries (None without threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: then BLAS keeps its own thread count
        return None
    return ThreadpoolController().select(user_api="blas")


def _is_numpys(path):
    # a library NumPy bundles (numpy/, numpy.libs/) rather than one the system or SciPy has
    root = os.path.dirname(os.path.dirname(os.path.realpath(np.__file__)))
    return os.path.realpath(path).startswith(os.path.join(root, "numpy"))


def _numpy_route(ctl):
    """NumPy's BLAS's Fortran GEMM, or None where it exports none."""
    for c in (ctl.lib_controllers if ctl is not None else []):
        if not _is_numpys(c.filepath) and any(_is_numpys(o.filepath)
                                               for o in ctl.lib_controllers):
            continue  # NumPy bundles its own: that one is NumPy's
        lib = ctypes.CDLL(c.filepath)  # already loaded: this only finds it
        for d, s in _NUMPY_NAMES:
            if hasattr(lib, d) and hasattr(lib, s):
                address = [ctypes.cast(getattr(lib, n), ctypes.c_void_p).value for n in (d, s)]
                return BlasRoute("numpy", *address, (c.filepath,))
    return None


def _scipy_route(ctl):
    """SciPy's ``cython_blas`` GEMM; its library is every loaded BLAS but NumPy's own wheel
    library (where NumPy and SciPy share one, that one)."""
    dgemm = get_cython_function_address("scipy.linalg.cython_blas", "dgemm")
    sgemm = get_cython_function_address("scipy.linalg.cython_blas", "sgemm")
    paths = [c.filepath for c in (ctl.lib_controllers if ctl is not None else [])]
    own = [p for p in paths if not _is_numpys(p)]
    return BlasRoute("scipy", dgemm, sgemm, tuple(own or paths))


def _routes():
    """Every route this process offers, the preferred first (loads SciPy's BLAS)."""
    import scipy.linalg.cython_blas  # noqa: F401  (loaded before threadpoolctl looks)
    ctl = _blas_libraries()
    found = [_numpy_route(ctl), _scipy_route(ctl)]
    return [r for r in found if r is not None], ctl


def _bind(route):
    llvm.add_symbol(_SYMBOL[types.float64], route.dgemm)
    llvm.add_symbol(_SYMBOL[types.float32], route.sgemm)


ROUTES, _ALL_BLAS = _routes()
_by_name = {r.name: r for r in ROUTES}
if BLAS_ROUTE not in ("auto", *_by_name):
    raise ImportError(f"FASTCONV_BLAS={BLAS_ROUTE!r}: this process offers "
                      f"{', '.join(_by_name)} (or auto)")
ROUTE = ROUTES[0] if BLAS_ROUTE == "auto" else _by_name[BLAS_ROUTE]  # what the kernels call
_bind(ROUTE)
_BLAS = (_ALL_BLAS.select(filepath=list(ROUTE.libraries)) if _ALL_BLAS is not None
         else None)  # the libraries held to one thread while the kernels run


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
    """Context: the BLAS the kernels call (:data:`ROUTE`) on one thread, its own count
    restored on exit."""
    if _BLAS is None:
        return contextlib.nullcontext()
    return _OneBlasThread()


@intrinsic
def _fortran_gemm(typingctx, ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
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
        i8, i64 = ir.IntType(8), ir.IntType(64)
        fl = context.get_value_type(dt)
        ip, fp, vp = i64.as_pointer(), fl.as_pointer(), i8.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [vp, vp, ip, ip, ip, fp, vp, ip, vp, ip, fp,
                                               vp, ip])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOL[dt])

        def ref(value):  # Fortran takes every argument by address
            slot = cgutils.alloca_once(builder, value.type)
            builder.store(value, slot)
            return slot

        def data(value, aty, first):
            base = context.make_array(aty)(context, builder, value).data
            return builder.bitcast(builder.gep(base, [first]), vp)

        def trans(flag):
            t = builder.icmp_signed("!=", flag, ir.Constant(flag.type, 0))
            return ref(builder.select(t, ir.Constant(i8, ord("T")), ir.Constant(i8, ord("N"))))

        # row-major C = op(A) @ op(B) is column-major C^T = op(B)^T @ op(A)^T: B goes first
        builder.call(fn, [trans(tb), trans(ta), ref(N), ref(M), ref(K), ref(ir.Constant(fl, 1)),
                          data(b, B, b0), ref(ldb), data(a, A, a0), ref(lda), ref(beta),
                          data(c, C, c0), ref(ldc)])
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
    if max(M, N, K, lda, ldb, ldc) > _INT_MAX:
        raise ValueError("gemm_at: a size is over 2**31 - 1, more than an LP64 BLAS takes")
    if K == 0:  # BLAS rejects a zero row stride; op(A) @ op(B) is then all zeros
        for i in range(M):
            for j in range(N):
                C[c0 + i * ldc + j] *= beta
    elif M > 0 and N > 0:
        _fortran_gemm(1 if trans_a else 0, 1 if trans_b else 0, M, N, K, A, a0, lda, B, b0,
                      ldb, C.dtype.type(beta), C, c0, ldc)


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
