"""fastconv: Numba kernels under the layer API of 'Deep Learning from Scratch'.

Use it as the book's ``common`` package: ``from fastconv.layers import *``,
``from fastconv.util import im2col`` ...
"""
import os
import sys

# Idle OpenBLAS threads otherwise spin for a long while after each GEMM and starve the Numba
# kernel that follows (see fastconv/config.py). OpenBLAS reads this when it loads; if NumPy
# came first (the book's scripts start with ``import numpy as np``), config re-reads it below.
_reread_blas_env = "numpy" in sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
from . import config  # noqa: E402
from .dropin import install  # noqa: E402 - fastconv.install(): serve the book's common/

if _reread_blas_env:
    config.reread_openblas_env()

__all__ = ["install"]
