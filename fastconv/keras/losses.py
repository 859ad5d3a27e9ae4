"""Losses of the seed framework with gradients that match their values.

The seed computes the loss it reports with one formula and back-propagates ``a - y`` whatever
that formula is. That is right for a sigmoid output under its ``cross_tropy`` (the sum over
classes of binary cross-entropies) and for a softmax output under categorical cross-entropy,
but the seed pairs softmax with the binary formula, and with MSE it still sends ``a - y``
straight to the logits. Here every loss returns both its value and its exact gradient with
respect to the output layer's logits:

``"cross_tropy"`` (aliases ``"cross_entropy"``, ``"categorical_crossentropy"``)
    softmax output: categorical cross-entropy, computed by
    :class:`fastconv.layers.SoftmaxWithLoss`; sigmoid output: the seed's binary formula.
    Either way the logit gradient is the seed's ``a - y``. Other output activations are
    refused at ``compile``.
``"MSE"`` (alias ``"mse"``)
    the seed's ``sum((a - y)**2) / 2 / m``, back-propagated through the output activation.

Unknown names raise ``ValueError`` (the seed silently used MSE).

Gradient convention: :meth:`Loss.logit_grad` returns the gradient of the batch *sum* of the
per-sample losses, i.e. ``a - y`` not divided by the batch size, which is what the seed's
Dense and Output layers step on (see ``fastconv.keras.models`` for why).
"""
import numpy as np

from .. import layers as _fl
from ..functions import cross_entropy_error

__all__ = ["get_loss", "CrossTropy", "MSE", "LOSSES"]

_EPS = 1e-7  # the book's guard inside log()


class Loss:
    """Base class. ``name`` is what ``save`` stores and ``compile`` accepts."""

    name = None

    def check_output(self, activation):
        """Raise ``ValueError`` if this loss cannot train an output with ``activation``."""

    def value(self, a, y):
        """Mean loss over the batch of outputs ``a`` (m, k) for one-hot targets ``y``."""
        raise NotImplementedError

    def forward_backward(self, output, y):
        """Loss of the output layer's last forward and the gradient w.r.t. its logits.

        Parameters
        ----------
        output : fastconv.keras.layers.Output
            Layer whose ``forward`` was just called (``output.z`` logits, ``output.a``).
        y : ndarray (m, k)
            One-hot (or soft) targets.

        Returns
        -------
        loss : float
            Mean over the batch.
        dz : ndarray (m, k)
            Gradient of the batch *sum* of losses w.r.t. ``output.z``.
        """
        raise NotImplementedError


class CrossTropy(Loss):
    """The seed's ``cross_tropy`` with the seed's ``a - y`` logit gradient (see module)."""

    name = "cross_tropy"

    def __init__(self):
        self._swl = _fl.SoftmaxWithLoss()

    def check_output(self, activation):
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"loss 'cross_tropy' needs an Output with softmax or sigmoid "
                             f"activation, got {activation!r}; use 'MSE' instead")

    def value(self, a, y, activation="softmax"):
        m = y.shape[0]
        if activation == "sigmoid":
            a = np.clip(a, _EPS, 1.0 - _EPS)
            return float(-np.sum(y * np.log(a) + (1.0 - y) * np.log(1.0 - a)) / m)
        return float(cross_entropy_error(a, y))

    def forward_backward(self, output, y):
        m = y.shape[0]
        if output.activation == "softmax":
            loss = self._swl.forward(output.z, y)
            # SoftmaxWithLoss divides by the batch; the step is on the sum (module doc)
            return float(loss), self._swl.backward() * m
        return self.value(output.a, y, "sigmoid"), output.a - y


class MSE(Loss):
    """The seed's ``MSE``: ``sum((a - y)**2) / 2 / m``."""

    name = "MSE"

    def value(self, a, y, activation=None):
        return float(np.sum((a - y) ** 2) / 2.0 / y.shape[0])

    def forward_backward(self, output, y):
        diff = output.a - y
        loss = float(np.sum(diff ** 2) / 2.0 / y.shape[0])
        return loss, output.act.backward(diff)


LOSSES = {"cross_tropy": CrossTropy, "MSE": MSE}
_ALIASES = {"cross_tropy": "cross_tropy", "cross_entropy": "cross_tropy",
            "categorical_crossentropy": "cross_tropy", "mse": "MSE"}


def get_loss(name):
    """A loss object for ``name`` (see module doc for the accepted names).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown loss {name!r}; expected 'cross_tropy' or 'MSE'")
    return LOSSES[_ALIASES[key]]()
