"""What the numbers depend on: CPU, library versions, BLAS, thread counts, threading layer.

:func:`describe` goes into the saved JSON (``machine_info["fastconv"]``) and the report.
"""
import os
import platform

import numba
import numpy as np

__all__ = ["describe", "cpu_model", "blas_info"]

_ENV_KEYS = ("FASTCONV_NUM_THREADS", "FASTCONV_PARALLEL", "FASTCONV_FASTMATH", "FASTCONV_CACHE",
             "FASTCONV_BENCH_SMOKE", "FASTCONV_BENCH_TORCH", "FASTCONV_BENCH_ROUNDS",
             "FASTCONV_BENCH_WARMUP", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER",
             "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS",
             "OPENBLAS_THREAD_TIMEOUT", "MKL_NUM_THREADS")


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info():
    """BLAS NumPy was built against, and its runtime thread pools if threadpoolctl is here."""
    info = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["build"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")
                         if blas.get(k)}
    except Exception as exc:  # the layout of show_config has changed between NumPy versions
        info["build"] = f"unknown ({type(exc).__name__})"
    try:
        import threadpoolctl
        info["threadpools"] = [{k: pool.get(k) for k in ("internal_api", "version",
                                                         "num_threads", "threading_layer")}
                               for pool in threadpoolctl.threadpool_info()]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    return info


def _threading_layer():
    # numba only knows its layer once a parallel kernel has run
    from fastconv.kernels.im2col import im2col
    from fastconv import config
    before = config.parallel_enabled()
    config.set_parallel(True)
    try:
        im2col(np.zeros((1, 1, 2, 2)), 1, 1)
    finally:
        config.set_parallel(before)
    try:
        return numba.threading_layer()
    except ValueError as exc:
        return f"unknown ({exc})"


def describe():
    """A JSON-ready dict describing this machine and run configuration."""
    import registry  # bench/conftest.py puts tests/ on sys.path
    from fastconv import config
    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": config.get_num_threads(),
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": _threading_layer(),
        "fastmath": config.FASTMATH,
        "blas": blas_info(),
        "env": {k: os.environ[k] for k in _ENV_KEYS if k in os.environ},
    }
    if registry.HAS_TORCH:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    else:
        info["torch"] = None
    return info
