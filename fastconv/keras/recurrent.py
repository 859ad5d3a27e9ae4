"""The seed framework's ``Recurrent`` layer: a simple RNN over the rows of a batch.

The rows of one batch are consecutive time steps of one sequence (fit with
``shuffle=False``). The forward pass runs them in order,

    s_t = f(x_t @ U.T + s_{t-1} @ W.T),

and returns every state (batch, units). The last state becomes the initial state of the next
forward pass, so the state carries across batches (and across ``fit``, ``predict`` and
``evaluate`` calls, as in the seed); :meth:`Recurrent.set_state` sets it by hand. Backward is
backpropagation through time within the batch: the error of step t is the layer above's
error at t plus the recurrent error from step t+1. The time loop is the Numba kernel
:mod:`fastconv.kernels.recurrent`.

Differences from the seed: a ``theta`` of the wrong shape raises ``ValueError`` (the seed
silently drew new weights), ``softmax`` is refused (its slope is not a function of the
output alone), and ``state`` is always an array of shape (1, units).
"""
import math

import numpy as np

from ..kernels import recurrent as _k
from .activations import canonical_name
from .layers import _KAIMING_A, Layer, _positive_int

__all__ = ["Recurrent"]


class Recurrent(Layer):
    """``Recurrent(units, input_shape, activate_fcn, theta=None)``.

    Parameters
    ----------
    units : int
        Size of the state (and of the output per time step).
    input_shape : int or (int,), optional
        Features per time step; inferred by ``Model.add_layer`` when omitted.
    activate_fcn : str
        ``"tanh"``, ``"ReLU"``, ``"sigmoid"`` or ``"Linear"`` (any case).
    theta : ndarray (units, input_shape + units + 1), optional
        The seed's packed parameters ``[U | W | state]``: the state is the last column.
        Default: U and W Kaiming uniform (fan-in ``input_shape`` and ``units``), state zero.

    Attributes
    ----------
    U : ndarray (units, input_shape)
    W : ndarray (units, units)
    state : ndarray (1, units)
        The state the next forward pass starts from.
    dU, dW : ndarray
        Gradients of the last :meth:`backward`.
    """

    kind = "Recurrent"
    param_names = ("U", "W")
    state_names = ("state",)

    def __init__(self, units, input_shape=None, activate_fcn="tanh", theta=None):
        self.units = _positive_int(units, "units", self.kind)
        self.activation = canonical_name(activate_fcn)
        if self.activation not in _k.ACTIVATIONS:
            raise ValueError(f"Recurrent: activate_fcn must be one of {_k.ACTIVATIONS}, "
                             f"got {activate_fcn!r}")
        self._init_theta = None if theta is None else np.array(theta, dtype=np.float64)
        self.x = None
        self.a = None
        self._h0 = None  # the state the last forward pass started from
        super().__init__(input_shape)

    def _output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Recurrent: input_shape must be (features,), got {input_shape}")
        return (self.units,)

    def _create(self):
        n, units = self.input_shape[0], self.units
        if self._init_theta is not None:
            expected = (units, n + units + 1)
            if self._init_theta.shape != expected:
                raise ValueError(f"Recurrent: theta must have shape {expected} "
                                 f"(units, input_shape + units + 1), got "
                                 f"{self._init_theta.shape}")
            theta = self._init_theta
            self.U = theta[:, :n].copy()
            self.W = theta[:, n:n + units].copy()
            self.state = theta[:, -1].reshape(1, units).copy()
        else:
            self.U = self._kaiming_uniform(n, (units, n))
            self.W = self._kaiming_uniform(units, (units, units))
            self.state = np.zeros((1, units))
        self.dU = None
        self.dW = None

    @staticmethod
    def _kaiming_uniform(fan_in, shape):
        # as the seed's Dense and Output (PyTorch's Linear default): bound 1/sqrt(fan_in)
        bound = math.sqrt(6.0 / (1.0 + _KAIMING_A ** 2) / fan_in)
        return np.random.uniform(-bound, bound, size=shape)

    @property
    def theta(self):
        """The seed's packed parameters ``[U | W | state]`` (a new array)."""
        return np.concatenate([self.U, self.W, self.state.T], axis=1)

    def set_state(self, state):
        """Start the next forward pass from ``state`` (``units`` values, e.g. zeros)."""
        state = np.asarray(state, dtype=np.float64)
        if state.size != self.units or state.ndim > 2:
            raise ValueError(f"Recurrent: state must hold {self.units} values, shape "
                             f"({self.units},) or (1, {self.units}), got shape {state.shape}")
        self.state = state.reshape(1, self.units).copy()

    def forward(self, x):
        """Every state of the time steps ``x`` (T, features), in order: (T, units)."""
        x = np.asarray(x)
        n = self.input_shape[0]
        if x.ndim != 2 or x.shape[1] != n:
            raise ValueError(f"Recurrent: x must be 2-D (time steps, {n} features), got "
                             f"shape {x.shape}")
        self._h0 = self.state[0].copy()
        self.x = x
        self.a = _k.rnn_forward(x, self.U, self.W, self._h0, self.activation)
        if len(x):
            self.state = self.a[-1:].copy()
        return self.a

    def backward(self, dout):
        """BPTT over the last forward pass; sets ``dU``, ``dW`` and returns ``delta @ U``."""
        if self.a is None:
            raise RuntimeError("Recurrent: backward needs a forward pass first")
        dx, self.dU, self.dW = _k.rnn_backward(self.x, self.U, self.W, self._h0, self.a,
                                               dout, self.activation)
        return dx

    def get_config(self):
        return {"units": self.units, "activate_fcn": self.activation}
