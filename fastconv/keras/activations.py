"""Activation functions of the seed framework, as stateful forward/backward objects.

The seed looks activations up by name ("ReLU", "sigmoid", "softmax", "tanh") and silently
falls back to the identity for any other string, so a typo such as ``"relu "`` trained a
linear network. Here names are matched case-insensitively, ``"linear"`` (or ``None``) asks for
the identity explicitly, and an unknown name raises ``ValueError``.

ReLU and sigmoid are fastconv's own layers (:class:`fastconv.layers.Relu` runs the Numba
kernel); the others are one NumPy expression each.
"""
import numpy as np

from .. import layers as _fl
from ..functions import softmax as _softmax

__all__ = ["get_activation", "canonical_name", "ACTIVATIONS"]


class Tanh:
    """Hyperbolic tangent; ``backward`` uses the saved output."""

    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out ** 2)


class Linear:
    """Identity (the seed's ``Linear``)."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class Softmax:
    """Softmax over the last axis with its full Jacobian-vector product in ``backward``.

    Only needed when softmax is used without the cross-entropy shortcut (hidden layers, or
    an ``Output`` trained with MSE).
    """

    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = _softmax(x)
        return self.out

    def backward(self, dout):
        y = self.out
        return y * (dout - np.sum(dout * y, axis=-1, keepdims=True))


# canonical name (the seed's spelling) -> class
ACTIVATIONS = {
    "ReLU": _fl.Relu,
    "sigmoid": _fl.Sigmoid,
    "softmax": Softmax,
    "tanh": Tanh,
    "linear": Linear,
}
_BY_LOWER = {name.lower(): name for name in ACTIVATIONS}
_BY_LOWER.update({"identity": "linear", "none": "linear"})


def canonical_name(name):
    """The seed's spelling of an activation name.

    Parameters
    ----------
    name : str or None
        Any case of ``ReLU``, ``sigmoid``, ``softmax``, ``tanh``, ``linear``; ``None`` and
        ``"identity"`` mean ``"linear"``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If the name is not one of the above.
    """
    key = "none" if name is None else str(name).strip().lower()
    if key not in _BY_LOWER:
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{sorted(ACTIVATIONS)} (case-insensitive)")
    return _BY_LOWER[key]


def get_activation(name):
    """A fresh activation object (``forward(x)``, ``backward(dout)``) for ``name``.

    Parameters
    ----------
    name : str or None
        See :func:`canonical_name`.

    Returns
    -------
    object
        Has ``forward`` and ``backward`` with the book's layer semantics.
    """
    return ACTIVATIONS[canonical_name(name)]()
