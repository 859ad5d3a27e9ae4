"""fastconv: Numba kernels under the layer API of 'Deep Learning from Scratch'.

Use it as the book's ``common`` package: ``from fastconv.layers import *``,
``from fastconv.util import im2col`` ...
"""
__version__ = "0.1.0"
