"""The book's ``common/util.py``: same functions, same signatures, same results.

``im2col`` and ``col2im`` run as parallel Numba kernels and return float64 like the book.
"""
import numpy as np

from .kernels.im2col import col2im, im2col

__all__ = ["smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"]


def smooth_curve(x):
    """Smooth a loss curve for plotting (a Kaiser window of 11, as the book).

    http://glowingpython.blogspot.jp/2012/02/convolution-with-numpy.html
    """
    window_len = 11
    s = np.r_[x[window_len - 1:0:-1], x, x[-1:-window_len:-1]]
    w = np.kaiser(window_len, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[5:len(y) - 5]


def shuffle_dataset(x, t):
    """Shuffle samples and labels with one ``np.random.permutation`` (the book's draw).

    Parameters
    ----------
    x : ndarray, 2-D (N, D) or 4-D (N, C, H, W)
    t : ndarray, labels, first axis N

    Returns
    -------
    x, t : shuffled copies
    """
    if len(x) != len(t):
        raise ValueError(f"shuffle_dataset: x has {len(x)} samples but t has {len(t)}")
    permutation = np.random.permutation(x.shape[0])
    x = x[permutation, :] if x.ndim == 2 else x[permutation, :, :, :]
    t = t[permutation]
    return x, t


def conv_output_size(input_size, filter_size, stride=1, pad=0):
    """``(input_size + 2*pad - filter_size) / stride + 1``.

    As in the book this is true division (a float, e.g. 24.0); layers floor it.
    """
    return (input_size + 2 * pad - filter_size) / stride + 1
