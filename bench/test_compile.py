"""JIT compile time, on its own: fresh processes that call every fastconv layer once.

``cold``: ``NUMBA_CACHE_DIR`` is a new empty directory each round, so every kernel compiles.
``cached``: the directory was filled by one earlier process, so every kernel loads from disk.
The timing is the child process's whole wall time (interpreter start, imports, first calls);
``extra_info`` holds its own breakdown per layer (median over the rounds). Group:
``jit_compile|all_layers|float64`` (``jit_compile|im2col|float64`` in smoke mode).
"""
import json
import os
import statistics
import subprocess
import sys

import pytest

from bench import shapes
from bench.common import rounds
from bench import ROOT


def _probe(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), FASTCONV_CACHE="1")
    cmd = [sys.executable, "-m", "bench.compile_probe"] + (["--smoke"] if shapes.smoke() else [])
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _medians(reports):
    first = {name: statistics.median(r["first_call_s"][name] for r in reports)
             for name in reports[0]["first_call_s"]}
    return {"import_s": statistics.median(r["import_s"] for r in reports),
            "total_s": statistics.median(r["total_s"] for r in reports),
            "first_call_s": first}


@pytest.mark.parametrize("cache", ["cold", "cached"])
def test_jit_compile(benchmark, tmp_path, cache):
    reports = []
    made = []

    def setup():
        if cache == "cold":
            made.append(tmp_path / f"cold{len(made)}")
            return (made[-1],), {}
        return (tmp_path / "filled",), {}

    if cache == "cached":
        _probe(tmp_path / "filled")  # compile once, untimed, to fill the cache

    kernels = "im2col" if shapes.smoke() else "all_layers"
    benchmark.group = f"jit_compile|{kernels}|float64"
    benchmark.name = cache
    benchmark.pedantic(lambda d: reports.append(_probe(d)), setup=setup,
                       rounds=rounds(2 if cache == "cold" else 5), iterations=1)
    benchmark.extra_info.update(op="jit_compile", shape=kernels, dtype="float64", impl=cache,
                                variant="parallel", **_medians(reports))
