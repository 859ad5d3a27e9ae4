"""fastconv: Numba kernels under the layer API of 'Deep Learning from Scratch'.

Use it as the book's ``common`` package: ``from fastconv.layers import *``,
``from fastconv.util import im2col`` ...
"""
import os

# Idle OpenBLAS threads otherwise spin for a long while after each GEMM and starve the Numba
# kernel that follows (see fastconv/config.py); effective only if NumPy is not imported yet.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
from .dropin import install  # noqa: E402 - fastconv.install(): serve the book's common/

__all__ = ["install"]
