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


def test_forked_child_can_run_the_worker_thread_convolution():
    """A child forked after the worker threads started gets a new pool (it used to hang:
    the parent's pool had no threads in the child)."""
    import multiprocessing as mp

    import numpy as np
    import pytest

    from fastconv import config
    from fastconv.kernels import conv

    if "fork" not in mp.get_all_start_methods() or config.get_num_threads() < 2:
        pytest.skip("needs fork and two threads")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2, 9, 9))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    ref = conv.conv_forward(x, W, b)  # starts the pool in this process
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_conv, args=(queue, x, W, b))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    np.testing.assert_array_equal(got, ref)


def _child_conv(queue, x, W, b):
    from fastconv.kernels import conv
    queue.put(conv.conv_forward(x, W, b))


def test_malloc_tuning_is_on_by_default_and_can_be_switched_off():
    import platform

    import pytest

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    code = "import fastconv.config as c; print(c.MALLOC_TUNED)"
    for value, expected in ((None, "True"), ("0", "False")):
        env = {k: v for k, v in os.environ.items() if k != "FASTCONV_MALLOC"}
        if value is not None:
            env["FASTCONV_MALLOC"] = value
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
