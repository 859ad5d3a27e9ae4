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
    """Softmax over the last axis, shifted by the max against overflow."""
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def sum_squared_error(y, t):
    return 0.5 * np.sum((y - t) ** 2)


# the first printing of the book calls it mean_squared_error
mean_squared_error = sum_squared_error


def cross_entropy_error(y, t):
    """Mean cross entropy of a batch; ``t`` one-hot or class indices (the book's +1e-7)."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    # one-hot labels -> indices of the correct class
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    if t.shape[0] != batch_size:
        raise ValueError(f"cross_entropy_error: y has {batch_size} rows but t has {t.shape[0]}")
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def softmax_loss(X, t):
    y = softmax(X)
    return cross_entropy_error(y, t)
