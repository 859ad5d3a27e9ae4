"""fastconv: Numba kernels under the layer API of 'Deep Learning from Scratch'.

Use it as the book's ``common`` package: ``from fastconv.layers import *``,
``from fastconv.util import im2col`` ...
"""
__version__ = "0.1.0"
from .dropin import install  # noqa: E402 - fastconv.install(): serve the book's common/

__all__ = ["install"]
