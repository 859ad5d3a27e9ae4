"""Bit-identical results for 1, 2 and 8 Numba threads and for the serial variants."""
import json
import os
import subprocess
import sys


def test_results_identical_for_1_2_8_threads_and_serial():
    env = dict(os.environ, NUMBA_NUM_THREADS="8")
    probe = os.path.join(os.path.dirname(__file__), "_thread_probe.py")
    done = subprocess.run([sys.executable, probe], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    digests = json.loads(done.stdout)
    assert set(digests) == {"parallel-1", "parallel-2", "parallel-8", "serial"}
    assert len(set(digests.values())) == 1, digests


def test_forked_child_runs_the_convolution_and_pooling():
    """A child forked after the parent ran the parallel kernels gets the same numbers. It used
    to hang (the parent's task pool had no threads in the child); on GNU OpenMP, which cannot
    start again after fork, Numba killed it, so there the child runs the serial kernels."""
    import multiprocessing as mp

    import numpy as np
    import pytest

    from fastconv import config
    from fastconv.kernels import conv, pooling

    if "fork" not in mp.get_all_start_methods() or config.get_num_threads() < 2:
        pytest.skip("needs fork and two threads")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2, 9, 9))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    ref = conv.conv_forward(x, W, b)  # starts the parallel kernels in this process
    ref_pool = pooling.maxpool_forward(ref, 2, 2, 2)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_conv, args=(queue, x, W, b))
    child.start()
    got, got_pool, parallel = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, ref)
    for a, c in zip(got_pool, ref_pool, strict=True):
        np.testing.assert_array_equal(a, c)
    assert parallel == (not config._gnu_openmp_started())
    assert config.parallel_enabled()  # the parent keeps its parallel kernels


def _child_conv(queue, x, W, b):
    from fastconv import config
    from fastconv.kernels import conv, pooling
    out = conv.conv_forward(x, W, b)
    queue.put((out, pooling.maxpool_forward(out, 2, 2, 2), config.parallel_enabled()))


def test_malloc_tuning_is_on_by_default_and_can_be_switched_off():
    import platform

    import pytest

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    code = "import fastconv.config as c; print(c.MALLOC_TUNED)"
    assert _printed_with(code, "FASTCONV_MALLOC", None) == "True"
    assert _printed_with(code, "FASTCONV_MALLOC", "0") == "False"


def _printed_with(code, name, value):
    """What ``python -c code`` prints with the environment variable ``name`` set to
    ``value`` (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != name}
    if value is not None:
        env[name] = value
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_numba_blas_path_follows_scipy_and_can_be_switched_off():
    import importlib.util

    code = "from fastconv.kernels import conv; print(conv.conv_path((2, 1, 5, 5), (3, 1, 2, 2)))"
    have_scipy = importlib.util.find_spec("scipy") is not None
    default = _printed_with(code, "FASTCONV_NUMBA_BLAS", None)
    assert default == ("blas_numba" if have_scipy else "blas")
    assert _printed_with(code, "FASTCONV_NUMBA_BLAS", "0") == "blas"


def test_every_blas_library_runs_one_thread_inside_worker_tasks():
    """The BLAS libraries fastconv calls are held to one thread inside its tasks: NumPy's,
    and SciPy's when Numba calls it. Two workers each calling a multithreaded BLAS made
    DeepConvNet's conv2 backward 10-100x slower."""
    import pytest

    from fastconv import config
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}

    config.run_tasks(lambda i: None, 2)  # the limiter lists the libraries on first use
    held = {c.filepath for c in config._pool["blas"].lib_controllers
            if c.user_api == "blas"} if config._pool["blas"] else set()
    assert held, "no BLAS library held"
    seen = []
    config.run_tasks(lambda i: seen.append(blas_threads()), 4)
    assert len(seen) == 4 and all(s[path] == 1 for s in seen for path in held), (held, seen)
    if config.NUMBA_BLAS:  # SciPy's BLAS, which Numba calls, is among those held
        import scipy.linalg.cython_blas  # noqa: F401
        assert set(blas_threads()) <= held



_TIMEOUT_PROBE = """
import json
import numpy as np
a = np.ones((300, 300)); a @ a  # NumPy's OpenBLAS loaded and its threads started
from threadpoolctl import ThreadpoolController
libs = [c.dynlib for c in ThreadpoolController().lib_controllers
        if c.internal_api == "openblas" and hasattr(c.dynlib, "openblas_thread_timeout")]
before = [lib.openblas_thread_timeout() for lib in libs]
import fastconv
after = [lib.openblas_thread_timeout() for lib in libs]
print(json.dumps([before, after, float((a @ a)[0, 0])]))  # the threads restart here
"""


def test_openblas_thread_timeout_is_set_when_numpy_was_imported_first():
    """The book's scripts import NumPy before fastconv: OpenBLAS has then read its
    environment already, and ``import fastconv`` makes it read the timeout again. A value the
    user set is left as it is."""
    import pytest

    pytest.importorskip("threadpoolctl")
    before, after, value = json.loads(_printed_with(_TIMEOUT_PROBE, "OPENBLAS_THREAD_TIMEOUT",
                                                    None))
    if not before:
        pytest.skip("NumPy's BLAS is not an OpenBLAS exporting openblas_thread_timeout")
    assert set(before) == {0} and set(after) == {4}, (before, after)
    assert value == 300.0  # GEMMs still right after the restart
    before, after, value = json.loads(_printed_with(_TIMEOUT_PROBE, "OPENBLAS_THREAD_TIMEOUT",
                                                    "10"))
    assert set(before) == set(after) == {10}, (before, after)
