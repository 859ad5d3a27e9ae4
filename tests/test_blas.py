"""fastconv.kernels._blas: the GEMM the convolution kernels call from Numba."""
import ctypes

import numba
import numpy as np
import pytest

from fastconv.kernels import _blas


@numba.njit
def _call_gemm(A, B, C, trans_b, beta):
    _blas.gemm(A, B, C, trans_b, beta)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("beta", [0, 1])
def test_gemm_matches_numpy(dtype, trans_b, beta):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 7)).astype(dtype)
    B = rng.standard_normal((3, 7) if trans_b else (7, 3)).astype(dtype)
    C0 = rng.standard_normal((5, 3)).astype(dtype)
    C = C0.copy()
    _call_gemm(A, B, C, trans_b, beta)
    want = A.astype(np.float64) @ (B.T if trans_b else B).astype(np.float64) + beta * C0
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(C, want, rtol=tol, atol=tol)


def test_gemm_rejects_mismatched_shapes():
    A, C = np.ones((4, 3)), np.zeros((4, 2))
    with pytest.raises(ValueError, match="shapes"):
        _call_gemm(A, np.ones((2, 2)), C, False, 0)
    with pytest.raises(ValueError, match="shapes"):
        _call_gemm(A, np.ones((3, 2)), np.zeros((4, 3)), False, 0)


def test_kernels_call_numpys_openblas_where_it_has_an_ilp64_cblas():
    """With NumPy's own OpenBLAS wheel (scipy-openblas64), the kernels call its CBLAS; the
    fallback is only for other BLAS builds."""
    found, path = _blas._find_cblas()
    if found is None:
        assert _blas.CBLAS_SOURCE.startswith("fallback")
        pytest.skip("NumPy's BLAS exports no ILP64 CBLAS GEMM")
    assert _blas.CBLAS_SOURCE == path


@pytest.mark.parametrize("kind, dtype, cfloat", [("d", np.float64, ctypes.c_double),
                                                 ("s", np.float32, ctypes.c_float)])
def test_fallback_has_the_cblas_signature_and_numbers(kind, dtype, cfloat):
    """The np.dot fallback, called through its C address as the kernels would call it:
    row-major, B transposed or not, alpha and beta."""
    fn = _blas._fallback(kind)
    i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    call = ctypes.CFUNCTYPE(None, i32, i32, i32, i64, i64, i64, cfloat, vp, i64, vp, i64,
                            cfloat, vp, i64)(fn.address)
    rng = np.random.default_rng(4)
    A = rng.standard_normal((5, 7)).astype(dtype)
    for trans_b, B in ((111, rng.standard_normal((7, 3))), (112, rng.standard_normal((3, 7)))):
        B = B.astype(dtype)
        C0 = rng.standard_normal((5, 3)).astype(dtype)
        C = C0.copy()
        call(101, 111, trans_b, 5, 3, 7, 2.0, A.ctypes.data, 7, B.ctypes.data, B.shape[1], 0.5,
             C.ctypes.data, 3)
        want = 2.0 * A @ (B.T if trans_b == 112 else B) + 0.5 * C0
        np.testing.assert_allclose(C, want, rtol=1e-5)
