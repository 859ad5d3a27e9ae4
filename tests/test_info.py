"""``fastconv info``: what fastconv runs on, as a user would print it."""
import json
import os
import subprocess
import sys

import numba
import numpy as np
import scipy


def _info(tmp_path, **env):
    done = subprocess.run([sys.executable, "-m", "fastconv", "info", "--json"],
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_info_names_versions_blas_threads_and_cache(tmp_path):
    info = _info(tmp_path)
    v = info["versions"]
    assert (v["numpy"], v["scipy"], v["numba"]) == (np.__version__, scipy.__version__,
                                                   numba.__version__)
    blas = info["blas"]
    assert blas["route"] in blas["routes offered"] and "scipy" in blas["routes offered"]
    assert blas["kernels call"] and all(os.path.exists(lib["path"])
                                        for lib in blas["kernels call"])
    assert info["threads"]["threading layer"] in ("omp", "tbb", "workqueue")
    assert 1 <= info["threads"]["fastconv"] <= info["threads"]["numba max"]
    assert os.path.isdir(info["cache"]["folder"])
    assert info["modes"] == {"float32 mode": False, "fastmath": False}


def test_info_follows_the_environment(tmp_path):
    info = _info(tmp_path, FASTCONV_BLAS="scipy", FASTCONV_CACHE="0", FASTCONV_KEEP_DTYPE="1",
                 FASTCONV_NUM_THREADS="1")
    assert info["blas"]["route"] == "scipy"
    assert info["cache"]["folder"] is None and info["cache"]["enabled"] is False
    assert info["modes"]["float32 mode"] is True
    assert info["threads"]["fastconv"] == 1
    assert info["environment"]["FASTCONV_BLAS"] == "scipy"


def test_info_prints_readable_lines(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastconv", "info"], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"  numpy: {np.__version__}" in lines
    assert any(line.startswith("  route: ") for line in lines)
    assert "cache:" in lines


def test_format_info_nests_and_marks_empty_values():
    from fastconv.info import format_info
    text = format_info({"a": {"b": 1, "c": []}, "d": [{"x": 1, "y": "z"}], "e": {}})
    assert text.splitlines() == ["a:", "  b: 1", "  c: -", "d:", "  - x=1, y=z", "e: -"]
