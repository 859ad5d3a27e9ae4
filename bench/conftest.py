"""pytest configuration of the benchmark suite (``pytest bench``).

* (``bench/__init__.py`` puts the repository root and ``tests/`` on ``sys.path``);
* ``--bench-smoke`` (or ``FASTCONV_BENCH_SMOKE=1``): batch 2 instead of 100, for CI;
* turns pytest-benchmark's warm-up on for every benchmark, so that no JIT compilation and no
  first-touch page fault lands in the timings (each test also calls its target once first);
* records the thread counts, threading layer, BLAS and versions in the saved JSON.
"""
import os
from pathlib import Path

import bench  # noqa: F401  (first: its OpenBLAS setting, before NumPy loads)

import pytest

BENCH_DIR = Path(__file__).resolve().parent
# iterations of warm-up before timing (pytest-benchmark's default, 100000, would spend
# --benchmark-max-time warming up every test)
WARMUP_ITERATIONS = int(os.environ.get("FASTCONV_BENCH_WARMUP", "3"))


def pytest_addoption(parser):
    group = parser.getgroup("fastconv bench")
    group.addoption("--bench-smoke", action="store_true", default=False,
                    help="tiny batch (2) for every shape: checks the suite runs, times nothing "
                         "useful (same as FASTCONV_BENCH_SMOKE=1)")


def pytest_configure(config):
    if config.getoption("bench_smoke", default=False):
        os.environ["FASTCONV_BENCH_SMOKE"] = "1"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BENCH_DIR not in Path(str(item.path)).resolve().parents:
            continue
        if "benchmark" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("benchmark")
        kwargs = {"warmup": True, "warmup_iterations": WARMUP_ITERATIONS}
        kwargs.update(marker.kwargs if marker else {})
        item.add_marker(pytest.mark.benchmark(**kwargs), append=False)


def pytest_benchmark_update_machine_info(config, machine_info):
    from bench import envinfo
    machine_info["fastconv"] = envinfo.describe()


def pytest_report_header(config):
    from bench import shapes
    return [f"fastconv bench: smoke={'on' if shapes.smoke() else 'off'}, "
            f"warm-up {WARMUP_ITERATIONS} iterations"]
