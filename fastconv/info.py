"""``fastconv info``: what fastconv runs on, for "why is it slow here?" and bug reports.

Versions, the BLAS the kernels call and NumPy's own, threads and the threading layer, the
kernel cache and the modes: what ``numba -s`` and ``torch.utils.collect_env`` are to their
users.
"""
import os
import platform
import sys
from importlib import metadata

__all__ = ["collect", "format_info"]

_PACKAGES = ("fastconv", "numpy", "scipy", "numba", "llvmlite", "threadpoolctl")


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _libraries():
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries, by path."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {i["filepath"]: i for i in threadpool_info()}


def _numpy_blas():
    try:
        blas = __import__("numpy").show_config(mode="dicts")["Build Dependencies"]["blas"]
        return " ".join(str(blas[k]) for k in ("name", "version") if blas.get(k))
    except Exception:  # NumPy 1's show_config has no dict mode
        return "unknown (NumPy < 2 does not say)"


def _threading_layer():
    # Numba knows the layer in use only once a parallel loop has run: run an empty one
    import numpy as np

    from . import config
    from .kernels import _launch
    _launch._each_run(0, 0, 0, np.zeros(0, dtype=np.int32))
    return config.threading_layer()


def collect():
    """A JSON-ready dict of what fastconv runs on."""
    import numba

    from . import config
    from .kernels import _blas
    libs = _libraries()

    def lib(path):
        info = libs.get(path, {})
        return {"path": path, "library": info.get("internal_api"),
                "version": info.get("version"), "threads": info.get("num_threads")}

    return {
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in _PACKAGES}},
        "python": sys.executable,
        "platform": platform.platform(),
        "blas": {
            "route": _blas.ROUTE.name,
            "routes offered": [r.name for r in _blas.ROUTES],
            "kernels call": [lib(p) for p in _blas.ROUTE.libraries],
            "numpy built with": _numpy_blas(),
            "all loaded": [lib(p) for p, i in libs.items() if i.get("user_api") == "blas"],
            "bundled with numpy": [p for p, i in libs.items()
                                   if i.get("user_api") == "blas" and _blas._is_numpys(p)],
        },
        "threads": {"fastconv": config.get_num_threads(),
                    "numba max": numba.config.NUMBA_NUM_THREADS,
                    "threading layer": _threading_layer(),
                    "parallel kernels": config.parallel_enabled(),
                    "cpu count": os.cpu_count()},
        "cache": {"enabled": config.CACHE, "folder": config.cache_dir(),
                  "sources key": config.SOURCES_KEY[:16]},
        "modes": {"float32 mode": config.keep_dtype(), "fastmath": config.FASTMATH},
        "environment": {k: v for k, v in sorted(os.environ.items())
                        if k.startswith(("FASTCONV_", "NUMBA_", "OMP_", "OPENBLAS_", "MKL_",
                                         "GOMP_"))},
    }


def format_info(info):
    """The dict of :func:`collect` as indented ``key: value`` lines."""
    lines = []

    def add(key, value, depth):
        pad = "  " * depth
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            for k, v in value.items():
                add(k, v, depth + 1)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{pad}{key}:")
            for item in value:
                lines.append(f"{pad}  - " + ", ".join(f"{k}={v}" for k, v in item.items()))
        else:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            lines.append(f"{pad}{key}: {shown if shown not in ('', {}) else '-'}")

    for key, value in info.items():
        add(key, value, 0)
    return "\n".join(lines)
