"""Helpers shared by the benchmark modules: arguments, thread settings, extra_info."""
import functools
import os
import time
import zlib
from contextlib import contextmanager

import numpy as np

import registry
from fastconv import config

DTYPES = {"float64": np.float64, "float32": np.float32}


def interleaved_timings(funcs, rounds, warmup=1):
    """Seconds of ``rounds`` calls of each function, the rounds interleaved (one call of each
    in turn) so that the machine's slow phases hit every contender alike."""
    for func in funcs:
        for _ in range(warmup):
            func()
    times = [[] for _ in funcs]
    for _ in range(rounds):
        for func, out in zip(funcs, times):
            t0 = time.perf_counter()
            func()
            out.append(time.perf_counter() - t0)
    return times


def timings(func, rounds, warmup=1):
    """Seconds of ``rounds`` calls of ``func`` after ``warmup`` untimed ones (for the scripts
    that time outside pytest-benchmark: bench.targets, bench.conv_paths)."""
    return interleaved_timings([func], rounds, warmup)[0]


NAIVE_NOTE = ("naive loops are timed on the small shape only: on the networks' shapes one "
              "call takes seconds (pooling, im2col) to minutes (convolution)")


def rounds(default):
    """Rounds of the slow (pedantic) benchmarks; ``FASTCONV_BENCH_ROUNDS`` overrides."""
    return max(1, int(os.environ.get("FASTCONV_BENCH_ROUNDS", default)))


@functools.lru_cache(maxsize=2)
def op_args(op, shape, dtype):
    """Arguments of ``op`` on ``shape`` (cached: every implementation gets the same arrays)."""
    return registry.make_args(op, shape.spec, DTYPES[dtype], seed=zlib.crc32(shape.name.encode()))


def thread_info():
    info = {"numba_threads": config.get_num_threads()}
    if registry.HAS_TORCH:
        import torch
        info["torch_threads"] = torch.get_num_threads()
    return info


@contextmanager
def threads(n):
    """Run with ``n`` threads in fastconv's kernels, torch and (with threadpoolctl) BLAS."""
    before = config.get_num_threads()
    registry.set_num_threads(n)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield "unchanged (no threadpoolctl)"
        else:
            with threadpool_limits(limits=n, user_api="blas"):
                yield n
    finally:
        registry.set_num_threads(before)


def skip_reason(op, shape, impl_name):
    """Why ``impl_name`` does not run ``op`` on ``shape`` (None when it does)."""
    if impl_name not in registry.REGISTRY[op]:
        return "torch is not installed (pip install fastconv[torch])"
    if impl_name == "naive" and not shape.small:
        return NAIVE_NOTE
    return None
