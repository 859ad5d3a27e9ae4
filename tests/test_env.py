"""The FASTCONV_* environment variables, each read by a new process, and the end-to-end
determinism of training runs under every thread setting."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)


def _run(args, env=None, check=True):
    """``python args`` with FASTCONV_* and NUMBA_* unset, then ``env`` set (two Numba
    threads unless ``env`` says otherwise)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FASTCONV_", "NUMBA_"))}
    base["NUMBA_NUM_THREADS"] = "2"
    # the compiled kernels in the tree's cache, unless the test gives its own folder
    if "NUMBA_CACHE_DIR" in os.environ:
        base["NUMBA_CACHE_DIR"] = os.environ["NUMBA_CACHE_DIR"]
    done = subprocess.run([sys.executable, *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _report(code, env=None):
    """What ``code`` leaves in the dict ``r``, as JSON, from a new process."""
    head = "import json\nimport numpy as np\nfrom fastconv import config\nr = {}\n"
    done = _run(["-c", head + code + "\nprint(json.dumps(r))"], env)
    return json.loads(done.stdout)


# ------------------------------------------------------------------- determinism ----
def test_training_is_bit_identical_on_1_and_2_threads_and_serial():
    """Two epochs of SimpleConvNet and a DeepConvNet step, float64 and float32 mode: the same
    parameters bit for bit on one thread, two threads and with FASTCONV_PARALLEL=0."""
    probe = os.path.join(HERE, "_train_probe.py")
    threaded = json.loads(_run([probe, "threads-1", "threads-2"]).stdout)
    serial = json.loads(_run([probe, "as-started"], {"FASTCONV_PARALLEL": "0"}).stdout)
    assert threaded["threads-2 threads"] == 2 and threaded["parallel"]
    assert not serial["parallel"]
    for run in ("float64 simple", "float64 deep", "float32 simple", "float32 deep"):
        assert threaded["threads-1 " + run] == threaded["threads-2 " + run], run
        assert threaded["threads-1 " + run] == serial["as-started " + run], run
    for net in ("simple", "deep"):  # float32 mode did compute in float32
        assert threaded[f"threads-1 float64 {net}"] != threaded[f"threads-1 float32 {net}"]


# -------------------------------------------------------------------- variables ----
_FLAGS = """
from fastconv.kernels import activation
import numba
activation.relu_forward(np.ones(1 << 18))  # big enough for the parallel variant
try:
    r["layer"] = numba.threading_layer()
except ValueError:  # no parallel kernel has run
    r["layer"] = None
r["threads"] = config.get_num_threads()
r["parallel"] = config.parallel_enabled()
r["keep_dtype"] = config.keep_dtype()
from fastconv.layers import Pooling
r["layer_dtype"] = str(Pooling(2, 2).forward(np.ones((1, 1, 2, 2), np.float32)).dtype)
"""


def test_defaults_without_variables():
    r = _report(_FLAGS)
    assert r["threads"] == 2 and r["parallel"] and r["layer"] is not None
    assert not r["keep_dtype"] and r["layer_dtype"] == "float64"  # the book's rule


@pytest.mark.parametrize("name, value, expected", [
    ("FASTCONV_NUM_THREADS", "1", {"threads": 1}),
    ("FASTCONV_PARALLEL", "0", {"parallel": False, "layer": None}),
    ("FASTCONV_PARALLEL", "1", {"parallel": True}),
    ("FASTCONV_KEEP_DTYPE", "1", {"keep_dtype": True, "layer_dtype": "float32"}),
    ("FASTCONV_THREADING_LAYER", "workqueue", {"layer": "workqueue"}),
])
def test_variable_sets_its_switch(name, value, expected):
    r = _report(_FLAGS, {name: value})
    assert {k: r[k] for k in expected} == expected


def test_num_threads_beyond_numba_is_an_error():
    done = _run(["-c", "import fastconv.config"], {"FASTCONV_NUM_THREADS": "3"}, check=False)
    assert done.returncode != 0
    assert "threads must be in 1..2, got 3" in done.stderr


_RELU = """
from fastconv.kernels import activation
activation.relu_forward(np.ones(10))
"""


@pytest.mark.parametrize("value, written", [("0", False), ("1", True), (None, True)])
def test_cache_writes_compiled_kernels_or_not(tmp_path, value, written):
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    if value is not None:
        env["FASTCONV_CACHE"] = value
    _report(_RELU, env)
    index = [p.name for p in tmp_path.rglob("*.nbi")]
    assert any("_relu_forward" in name for name in index) == written, index


_AVGPOOL = """
import sys
sys.path.insert(0, {here!r})
import naive
from fastconv.kernels import pooling
x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
out = pooling.avgpool_forward(x, 3, 3, 2, 1)
ref = naive.loop_avgpool_forward(x, 3, 3, 2, 1)
r["fastmath"] = config.FASTMATH
r["kernel_fastmath"] = pooling._avgpool_forward.parallel.targetoptions.get("fastmath")
r["cache_hits"] = len(pooling._avgpool_forward.parallel.stats.cache_hits)
r["error"] = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
"""


def test_fastmath_compiles_fastmath_kernels_within_tolerance(tmp_path):
    """FASTCONV_FASTMATH=1 (fresh cache): LLVM may reorder the sums, so the numbers agree
    with the twin within rounding, not bit for bit."""
    code = _AVGPOOL.format(here=HERE)
    r = _report(code, {"FASTCONV_FASTMATH": "1", "NUMBA_CACHE_DIR": str(tmp_path)})
    assert r["fastmath"] and r["kernel_fastmath"]
    assert r["error"] < 1e-12
    assert not _report(code, {"NUMBA_CACHE_DIR": str(tmp_path / "b")})["kernel_fastmath"]


def test_fastmath_does_not_load_kernels_cached_without_it(tmp_path):
    code = _AVGPOOL.format(here=HERE)
    _report(code, {"NUMBA_CACHE_DIR": str(tmp_path)})
    r = _report(code, {"FASTCONV_FASTMATH": "1", "NUMBA_CACHE_DIR": str(tmp_path)})
    assert r["cache_hits"] == 0
