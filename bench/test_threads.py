"""Thread scaling: the parallel implementations at 1 and at 2 threads.

Groups ``threads|op|shape|dtype``, names ``<impl>@<n>t``. The thread count is set for
fastconv's Numba kernels, for torch, and (when threadpoolctl is installed) for BLAS, whose
GEMMs fastconv's convolutions call; ``extra_info["blas_threads"]`` says which.
"""
import numba
import pytest

import registry
from bench import shapes
from bench.common import op_args, rounds, thread_info, threads
from bench.twins import make_runner

THREADS = (1, 2)
IMPLS = ("numba_parallel", "torch")
# one layer of each convolution branch (simple_conv1: unfold + GEMM, deep_conv2: per-tap
# GEMMs), the largest pooling
_PICK = {"conv": ("simple_conv1", "deep_conv2"), "pool": ("simple_pool1",)}


def _shapes(op):
    wanted = _PICK["pool" if "pool" in op else "conv"]
    return [s for s in shapes.shapes_for(op) if s.name.split("@")[0] in wanted]


CASES = [(op, shape, n, impl) for op in registry.OPS for shape in _shapes(op)
         for impl in IMPLS for n in THREADS]


def _check(impl, n):
    if impl == "torch" and not registry.HAS_TORCH:
        pytest.skip("torch is not installed (pip install fastconv[torch])")
    if n > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"Numba has {numba.config.NUMBA_NUM_THREADS} thread(s) on this machine")


@pytest.mark.parametrize("op, shape, n, impl", CASES,
                         ids=[f"{op}|{s.name}|{impl}@{n}t" for op, s, n, impl in CASES])
def test_op_threads(benchmark, op, shape, n, impl):
    _check(impl, n)
    run = registry.REGISTRY[op][impl]
    with threads(n) as blas_threads:
        state = run.prepare(*op_args(op, shape, "float64"))
        run.run(state)
        benchmark.group = f"threads|{op}|{shape.name}|float64"
        benchmark.name = f"{impl}@{n}t"
        benchmark.extra_info.update(op=op, shape=shape.name, dtype="float64", impl=impl,
                                    threads=n, blas_threads=blas_threads, **thread_info())
        benchmark(run.run, state)


@pytest.mark.parametrize("net", ["SimpleConvNet", "DeepConvNet"])
@pytest.mark.parametrize("n", THREADS)
def test_train_step_threads(benchmark, net, n):
    _check("numba_parallel", n)
    runner = make_runner("numba_parallel", net, "float64", 4 if shapes.smoke() else shapes.BATCH)
    with threads(n) as blas_threads:
        runner.step()
        benchmark.group = f"threads|train_step|{net}|float64"
        benchmark.name = f"numba_parallel@{n}t"
        benchmark.extra_info.update(op="train_step", shape=net, dtype="float64",
                                    impl="numba_parallel", threads=n, blas_threads=blas_threads,
                                    **thread_info())
        benchmark.pedantic(runner.step, rounds=rounds(5), warmup_rounds=1,
                           iterations=1)
