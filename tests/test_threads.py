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


_UNTOUCHED_PROBE = """
import json, os, sys
import numpy as np
a = np.ones((300, 300)); a @ a  # NumPy's OpenBLAS loaded and its threads started
import ctypes
from threadpoolctl import ThreadpoolController, threadpool_info
libs = [ctypes.CDLL(c.filepath) for c in ThreadpoolController().lib_controllers
        if c.internal_api == "openblas"]  # (threadpoolctl < 3.2 has no .dynlib)
libs = [lib for lib in libs if hasattr(lib, "openblas_thread_timeout")]
def state():
    return [dict(os.environ), [lib.openblas_thread_timeout() for lib in libs],
            {i["filepath"]: i["num_threads"] for i in threadpool_info()}]
before = state()
import fastconv, fastconv.layers, fastconv.fusion, fastconv.models, fastconv.optimizer
from fastconv.models import DeepConvNet
net = DeepConvNet(input_dim=(1, 12, 12), hidden_size=8)
net.gradient(np.random.rand(6, 1, 12, 12), np.arange(6) % 10)  # every kernel kind ran
after = state()
after[2] = {k: v for k, v in after[2].items() if k in before[2]}  # Numba's own libraries load
print(json.dumps([before, after]))
"""


def test_import_and_use_change_nothing_outside_fastconv():
    """``import fastconv`` and a training step leave the process as they found it: no
    environment variable, OpenBLAS's thread timeout and every library's thread count as
    before (fastconv holds BLAS to one thread only inside its own calls)."""
    import pytest

    pytest.importorskip("threadpoolctl")
    before, after = json.loads(_printed_with(_UNTOUCHED_PROBE, "FASTCONV_X", None))
    assert after == before


def test_blas_runs_one_thread_inside_fastconv_calls_only():
    import pytest

    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    from fastconv.kernels._blas import ROUTE, one_blas_thread

    def blas_threads():  # the library the kernels call, and all others
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}

    outside = blas_threads()
    with one_blas_thread():
        inside = blas_threads()
    assert blas_threads() == outside
    assert ROUTE.libraries and all(inside[path] == 1 for path in ROUTE.libraries)
