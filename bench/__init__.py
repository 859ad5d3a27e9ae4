"""fastconv's benchmark suite: ``pytest bench`` runs it, ``python -m bench.report`` reports it.

See ``bench/report.py`` for the options and ``tests/registry.py`` for the implementations.
"""
import os
import sys

# The book twin's np.dot wakes OpenBLAS's threads, which then spin for a while after each
# GEMM, into the next contender's timed round. The benchmarks (not fastconv) ask them to
# sleep at once; OpenBLAS reads this when NumPy loads it, so only before that.
# bench.small measures what a user's process sees: it runs itself again without this
# (FASTCONV_BENCH_CHILD), so OPENBLAS_TIMEOUT_SET says whether this process set it.
OPENBLAS_TIMEOUT_SET = False
if ("numpy" not in sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in os.environ
        and not os.environ.get("FASTCONV_BENCH_CHILD")):
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    OPENBLAS_TIMEOUT_SET = True

# the scripts (``python -m bench.<name>``) and pytest alike import ``registry`` and ``naive``
# from tests/: put it, and the repository root, on the path once, here
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
for _path in (os.path.join(ROOT, "tests"), ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)
