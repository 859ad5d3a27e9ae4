"""An upgrade never runs stale machine code: the kernels' disk cache is keyed on every source
they are compiled from, and the launcher survives a reload of its module."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np

import fastconv
from fastconv import config

PACKAGE = pathlib.Path(fastconv.__file__).parent

# the convolution of a fixed input, bias 0, through the public wrapper, saved to a file
_CONV_PROBE = """
import numpy as np
from fastconv.kernels import conv
x = np.arange(2 * 3 * 5 * 5, dtype=float).reshape(2, 3, 5, 5) / 7
W = np.linspace(-1, 1, 4 * 3 * 3 * 3).reshape(4, 3, 3, 3)
np.save({out!r}, conv.conv_forward(x, W, np.zeros(4)))
"""


def _run(code, env, cwd):
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600, cwd=cwd)  # not here: "" leads sys.path
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _conv_in_new_process(tmp_path, env, name):
    out = tmp_path / f"{name}.npy"
    log = _run(_CONV_PROBE.format(out=str(out)), env, tmp_path)
    return np.load(out), log


def test_a_changed_source_the_convolution_calls_into_is_compiled_again(tmp_path):
    """Compile, change the GEMM's code in kernels/_blas.py (not conv.py), run again in a new
    process: the convolution is compiled again with the new code (here: alpha 2)."""
    shutil.copytree(PACKAGE, tmp_path / "pkg" / "fastconv",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # no .pyc: Python checks one by mtime in whole seconds, and this test edits within one
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "pkg"), FASTCONV_CACHE="1",
               PYTHONDONTWRITEBYTECODE="1",
               NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_DEBUG_CACHE="1")
    first, _ = _conv_in_new_process(tmp_path, env, "first")
    x = np.arange(2 * 3 * 5 * 5, dtype=float).reshape(2, 3, 5, 5) / 7
    W = np.linspace(-1, 1, 4 * 3 * 3 * 3).reshape(4, 3, 3, 3)
    want = np.zeros((2, 4, 3, 3))  # the textbook sum, written out
    for n in range(2):
        for f in range(4):
            for i in range(3):
                for j in range(3):
                    want[n, f, i, j] = np.sum(x[n, :, i:i + 3, j:j + 3] * W[f])
    np.testing.assert_allclose(first, want, rtol=1e-12, atol=1e-12)

    again, log = _conv_in_new_process(tmp_path, env, "again")
    np.testing.assert_array_equal(again, first)
    assert "data loaded" in log  # the cache is used while nothing changed

    blas = tmp_path / "pkg" / "fastconv" / "kernels" / "_blas.py"
    source = blas.read_text()
    alpha_one = "ref(ir.Constant(fl, 1))"
    assert source.count(alpha_one) == 1, "the test's patch no longer fits _blas.py"
    blas.write_text(source.replace(alpha_one, "ref(ir.Constant(fl, 2))"))
    upgraded, _ = _conv_in_new_process(tmp_path, env, "upgraded")
    np.testing.assert_allclose(upgraded, 2 * want, rtol=1e-12, atol=1e-12)


def test_the_launcher_survives_a_reload_of_its_module(tmp_path):
    """IPython's autoreload runs a changed module again: the launcher's Numba pass is
    registered again and launches still run, new and old runs alike."""
    code = """
import importlib, numpy as np
from fastconv.kernels import _launch
from fastconv.kernels.matmul import matmul
a = np.arange(40 * 3, dtype=float).reshape(40, 3)
before = matmul(a, np.ones((3, 2)))
importlib.reload(_launch)
def fill(r, n_runs, out):
    out[r] = r + 1
fill = _launch.launchable(fill)
out = np.zeros(3)
_launch.launch(fill, 3, out)
print(out.tolist(), (matmul(a, np.ones((3, 2))) == before).all(), before[-1].tolist())
"""
    script = tmp_path / "reload_probe.py"  # a file: Numba caches only functions in files
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[0] == "[1.0, 2.0, 3.0] True [354.0, 354.0]"


def test_numba_code_lives_only_in_the_hashed_sources():
    """The cache key hashes config.py and kernels/*.py: no other module may hold code that
    Numba compiles, or a change to it would not reach the cache key."""
    hashed = {PACKAGE / "config.py", *PACKAGE.glob("kernels/*.py")}
    compiled = re.compile(r"@(kernel|helper|launchable|inline|njit|numba\.njit|jit)\b|"
                          r"numba\.(njit|jit|cfunc)\(|config\.jit\(|^from numba import.*\bnjit",
                          re.MULTILINE)
    outside = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p not in hashed and compiled.search(p.read_text(encoding="utf-8"))]
    assert outside == []
    assert len(config.SOURCES_KEY) == 64
    assert compiled.search("@helper\ndef f(): pass")  # the pattern finds what it looks for
