"""fastconv.kernels._launch: runs of a serial function on the one parallel loop."""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from fastconv import config
from fastconv.config import helper
from fastconv.kernels._launch import launch, launchable


@launchable
def _scaled(r, n_runs, x, out, scale, shift, offset, flag, extra):
    # the rows r, r + n_runs, ... of out = x * scale + shift + offset (+ 100 with flag)
    # (+ extra, unless None)
    for i in range(r, x.shape[0], n_runs):
        for j in range(x.shape[1]):
            v = x[i, j] * scale + shift + offset + (100 if flag else 0)
            out[i, j] = v if extra is None else v + extra[i, j]


@launchable
def _raises_in_run_1(r, n_runs, out):
    out[r] = 1
    if r == 1:
        raise ValueError("run 1 fails")


@launchable
def _returns(r, n_runs, out):
    return r


@pytest.mark.parametrize("n_runs", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_run_gets_the_arguments(n_runs, dtype):
    """Arrays (strided too) and every kind of scalar arrive as passed, in each run."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 10)).astype(dtype)
    extra = rng.standard_normal((7, 5))
    for xs, ex in ((x, None), (x[:, ::2], extra)):
        out = np.full(xs.shape, np.nan, dtype=dtype)
        launch(_scaled, n_runs, xs, out, dtype(1.5), 0.25, np.int32(-3), np.bool_(True), ex)
        want = xs.astype(np.float64) * 1.5 + 0.25 - 3 + 100 + (0 if ex is None else ex)
        np.testing.assert_allclose(out, want, rtol=1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("parallel", [False, True])
def test_an_exception_in_a_run_is_raised_in_the_caller(parallel):
    before = config.parallel_enabled()
    config.set_parallel(parallel)
    try:
        out = np.zeros(4)
        with pytest.raises(ValueError, match="run 1 fails"):
            launch(_raises_in_run_1, 4, out)
        assert out[0] == 1
    finally:
        config.set_parallel(before)


def test_bad_arguments_and_runs_are_refused():
    with pytest.raises(TypeError, match="argument 0 of _raises_in_run_1 is a str"):
        launch(_raises_in_run_1, 1, "text")
    with pytest.raises(TypeError, match="must return None"):
        launch(_returns, 1, np.zeros(1))
    out = np.zeros(4)
    launch(_raises_in_run_1, 1, out)
    with pytest.raises(TypeError, match="dtype >f8"):  # not read as the native float64 above
        launch(_raises_in_run_1, 1, out.astype(">f8"))


def test_the_entry_comes_from_the_cache_in_a_new_process(tmp_path):
    """A second process loads the compiled run, its entry included, from the disk cache."""
    code = ("import numpy as np, sys; sys.path.insert(0, sys.argv[1]); import test_launch as t;"
            "out = np.zeros((2, 3)); t.launch(t._scaled, 2, np.ones((2, 3)), out, 2.0, 0.0, 0,"
            " False, None); print(out.sum(), len(t._scaled.stats.cache_hits))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTCONV_CACHE="1")
    outputs = [subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)], env=env,
                              capture_output=True, text=True, check=True).stdout.split()
               for _ in range(2)]
    assert outputs == [["12.0", "0"], ["12.0", "1"]]


@helper
def _twice(a, k):
    return 2 * a + k


@numba.njit
def _calls_twice_with_constants(a):
    return _twice(a, 1) + _twice(a, 2)


def test_a_helper_compiles_once_for_constant_arguments():
    """Constants at the call sites do not make one compiled variant each."""
    assert _calls_twice_with_constants(1.0) == 4.0 + 1 + 2
    assert len(_twice.signatures) == 1
