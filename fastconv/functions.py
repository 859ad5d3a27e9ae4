"""The book's ``common/functions.py`` (pure NumPy: these are not the hot spots)."""
import numpy as np

__all__ = ["identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad",
           "softmax", "sum_squared_error", "mean_squared_error", "cross_entropy_error",
           "softmax_loss"]


def identity_function(x):
    return x


def step_function(x):
    return np.array(x > 0, dtype=int)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    return (1.0 - sigmoid(x)) * sigmoid(x)


def relu(x):
    return np.maximum(0, x)


def relu_grad(x):
    grad = np.zeros_like(x)
    grad[x >= 0] = 1
    return grad


def softmax(x):
    """Softmax over the last axis, shifted by the max against overflow.

    The book's expression with ``np.exp(x)`` computed once, and the reductions called as
    methods (``np.max`` and ``np.sum`` call them): the same numbers, sooner."""
    x = np.asarray(x)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def sum_squared_error(y, t):
    return 0.5 * np.sum((y - t) ** 2)


# the first printing of the book calls it mean_squared_error
mean_squared_error = sum_squared_error


def cross_entropy_error(y, t):
    """Mean cross entropy of a batch; ``t`` one-hot or class indices (the book's +1e-7).

    As in the book, a negative index counts from the end (-1: the last class). An index
    outside -classes..classes-1, float indices, or labels for another batch size raise
    ValueError or TypeError naming ``t`` and the sizes.
    """
    if type(t) is not np.ndarray:
        t = np.asarray(t)
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    # one-hot labels -> indices of the correct class
    if t.size == y.size:
        if t.shape != y.shape:
            raise ValueError(f"cross_entropy_error: one-hot t must have y's shape {y.shape}, "
                             f"got {t.shape}")
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    if t.shape[0] != batch_size or t.size != batch_size or (t.ndim > 1 and batch_size > 1):
        # (N, 1) labels would broadcast against arange(N) into an (N, N) pick
        raise ValueError(f"cross_entropy_error: y has {batch_size} rows, so t must hold "
                         f"{batch_size} labels or one-hot rows of shape {y.shape}, got shape "
                         f"{t.shape}")
    if t.dtype.kind not in "iub":
        _check_indices(t, y.shape)
    try:
        picked = y[np.arange(batch_size), t]
    except IndexError:  # an index out of range: NumPy's message names neither t nor classes
        _check_indices(t, y.shape)
        raise
    # the book's -np.sum(...): the method, without the function's dispatch
    return -np.log(picked + 1e-7).sum() / batch_size


def _check_indices(t, y_shape):
    # NumPy's own IndexError would name neither t nor the number of classes
    if t.dtype.kind not in "iub":
        raise TypeError(f"cross_entropy_error: t must hold integer class indices (or one-hot "
                        f"rows of y's shape {y_shape}), got dtype {t.dtype}")
    classes = y_shape[1]
    if t.size and (t.min() < -classes or t.max() >= classes):
        bad = t[(t < -classes) | (t >= classes)].flat[0]
        raise ValueError(f"cross_entropy_error: t holds the label {bad} but y has {classes} "
                         f"classes (labels -{classes}..{classes - 1})")


def softmax_loss(X, t):
    y = softmax(X)
    return cross_entropy_error(y, t)
