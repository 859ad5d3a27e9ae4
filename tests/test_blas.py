"""fastconv.kernels._blas: the GEMM the convolution and Affine kernels call from Numba."""
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
    found, path = _blas._find_cblas(_blas._BLAS)
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


@numba.njit
def _call_gemm_at(ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    # gemm_at takes flat arrays
    _blas.gemm_at(ta, tb, M, N, K, A.reshape(A.size), a0, lda, B.reshape(B.size), b0, ldb,
                  beta, C.reshape(C.size), c0, ldc)


@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_at_reads_sub_matrices_at_offsets(trans_a):
    """Rows 2..5 of op(A) (a column block of A when transposed) times B into rows 1..4 of a
    wider C, beta 1: only that block of C changes."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((7, 9))  # op(A) = A[2:5, :6] or A.T[2:5, :7]
    B = rng.standard_normal((7 if trans_a else 6, 3))
    C0 = rng.standard_normal((6, 5))
    C = C0.copy()
    K = 7 if trans_a else 6
    _call_gemm_at(trans_a, False, 3, 3, K, A, 2 if trans_a else 2 * 9, 9, B, 0, 3, 1.0, C,
                  1 * 5 + 1, 5)
    opA = A.T[2:5, :7] if trans_a else A[2:5, :6]
    want = C0.copy()
    want[1:4, 1:4] += opA @ B
    np.testing.assert_allclose(C, want, rtol=1e-12)
    with pytest.raises(ValueError, match="reaches past"):
        _call_gemm_at(trans_a, False, 3, 3, K, A, 60, 9, B, 0, 3, 1.0, C, 0, 5)


def test_gemm_with_nothing_to_sum_scales_c():
    C = np.full((2, 3), 2.0)
    _call_gemm_at(False, False, 2, 3, 0, np.empty((2, 0)), 0, 0, np.empty((0, 3)), 0, 3, 0.5,
                  C, 0, 3)
    np.testing.assert_array_equal(C, np.ones((2, 3)))
