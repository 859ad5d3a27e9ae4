"""fastconv.kernels._blas: the GEMM the convolution and Affine kernels call from Numba."""
import json
import os
import subprocess
import sys

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


# one process per route: the route is bound at import
_ROUTE_PROBE = """
import json, sys
import numpy as np
from fastconv.kernels import _blas
from fastconv.kernels.matmul import matmul
A = np.array([[1., 2., 3.], [4., 5., 6.]])       # hand-computed: A @ B = [[4, 2], [10, 5]]
B = np.array([[1., 0.], [0., 1.], [1., 0.]])
got = {}
for dt in ("float64", "float32"):
    a, b = A.astype(dt), B.astype(dt)
    got[dt] = [matmul(a, b).tolist(), matmul(a.T.copy(), b, trans_a=True).tolist(),
               matmul(a, b.T.copy(), trans_b=True).tolist(), str(matmul(a, b).dtype)]
print(json.dumps({"route": _blas.ROUTE.name, "offered": [r.name for r in _blas.ROUTES],
                  "got": got}))
"""


def _route_probe(route):
    env = dict(os.environ, FASTCONV_BLAS=route)
    done = subprocess.run([sys.executable, "-c", _ROUTE_PROBE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_scipy_route_is_offered_everywhere_and_preferred_after_numpys():
    assert "scipy" in [r.name for r in _blas.ROUTES]
    assert [r.name for r in _blas.ROUTES] in (["scipy"], ["numpy", "scipy"])
    for r in _blas.ROUTES:
        assert r.dgemm and r.sgemm and r.libraries


@pytest.mark.parametrize("route", ["numpy", "scipy"])
def test_each_route_computes_the_product(route):
    """Through each route the process offers, both dtypes, op(A) and op(B) transposed."""
    if route not in [r.name for r in _blas.ROUTES]:
        pytest.skip(f"this NumPy's BLAS exports no Fortran GEMM: no {route} route")
    out = _route_probe(route)
    assert out["route"] == route
    for dt, (plain, ta, tb, dtype) in out["got"].items():
        for got in (plain, ta, tb):
            assert got == [[4, 2], [10, 5]]
        assert dtype == dt


def test_an_unknown_route_is_refused_naming_the_variable():
    env = dict(os.environ, FASTCONV_BLAS="blis")
    done = subprocess.run([sys.executable, "-c", "import fastconv.kernels.matmul"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "FASTCONV_BLAS='blis'" in done.stderr and "scipy" in done.stderr


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


def test_gemm_refuses_sizes_an_lp64_blas_cannot_take():
    C = np.zeros(2)
    with pytest.raises(ValueError, match="2\\*\\*31"):
        _call_gemm_at(False, False, 1, 2, 2, np.ones(4), 0, 2 ** 31, np.ones(4), 0, 2, 0.0, C,
                      0, 2)
