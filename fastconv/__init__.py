"""fastconv: Numba kernels under the layer API of 'Deep Learning from Scratch'.

Use it as the book's ``common`` package: ``from fastconv.layers import *``,
``from fastconv.util import im2col`` ...; ``fastconv.install()`` serves the book's own
``common`` imports from fastconv (``python -m fastconv run script.py`` does it for a script).
"""
__version__ = "0.1.0"
from .dropin import install  # noqa: E402

__all__ = ["install"]
