"""Layers of the seed framework: Input, Conv2D, MaxPooling2D, AveragePooling2D, Flatten,
Dense, Output, and Recurrent (defined in :mod:`fastconv.keras.recurrent`).

The arithmetic is fastconv's: :class:`fastconv.layers.Convolution`, ``Pooling``,
``AvgPooling``, ``Affine`` and the activations of :mod:`fastconv.keras.activations`. These
classes add what the seed's layers carry on top: shapes known before any data flows
(``input_shape`` / ``output_shape`` with the seed's leading ``None``), weight initialisation,
the ``summary()`` triple and a plain-data config for ``save``.

Biases: the seed's layers have none ("偏置 b = 0": ``z = x @ theta.T``, conv without bias),
and its summary counts weights only (Conv2D 20*1*9*9 = 1620, Dense 2000*100 = 200000). The
fastconv layers underneath take a bias, so they are given a zero bias that is never updated;
networks, parameter counts and saved files are the seed's.

``input_shape`` may be left out (unlike in the seed): the model then builds the layer from the
previous layer's output shape in ``add_layer``. When it is given and does not match,
``add_layer`` raises ``ValueError``.
"""
import math

import numpy as np

from .. import layers as _fl
from .activations import canonical_name, get_activation

__all__ = ["Input", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dense",
           "Output", "Recurrent"]

_KAIMING_A = math.sqrt(5.0)  # the seed's (and PyTorch's default) negative slope


def _as_shape(shape, where):
    """``shape`` as a tuple of positive Python ints (an int means a 1-tuple)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    # int() would truncate 2.5 and turn "28" into 28: only integers are sizes
    try:
        sizes = tuple(shape)
    except TypeError:
        sizes = None
    if sizes is None or isinstance(shape, str) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
        raise TypeError(f"{where}: input_shape must be an int or a tuple of ints, "
                        f"got {shape!r}")
    out = tuple(int(s) for s in sizes)
    if not out or any(s < 1 for s in out):
        raise ValueError(f"{where}: input_shape must hold positive sizes, got {shape!r}")
    return out


def _positive_int(value, what, where):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r}")
    return int(value)


class Layer:
    """Base class: shape bookkeeping, parameters, summary and config.

    Subclasses set ``kind`` (the name the seed prints and saves), implement
    ``_output_shape(input_shape)``, ``forward(x)`` and ``backward(dout)``, and may override
    ``_create()`` (allocate fastconv layers / weights) and ``get_config()``.
    """

    kind = "Layer"
    param_names = ()  # attributes updated by the optimizer, in save order
    state_names = ()  # arrays saved and loaded with the weights but never trained

    def __init__(self, input_shape=None):
        self.input_shape = None
        self.output_shape = None
        if input_shape is not None:
            self.build(input_shape)

    @property
    def built(self):
        return self.input_shape is not None

    def build(self, input_shape):
        """Fix the input shape (without the batch axis) and create the weights."""
        shape = _as_shape(input_shape, self.kind)
        out = self._output_shape(shape)
        self.input_shape = shape
        self.output_shape = (None,) + out
        self._create()

    def _output_shape(self, input_shape):
        raise NotImplementedError

    def _create(self):
        pass

    def params(self):
        """``{name: array}`` of the trainable arrays (updated in place by the optimizer)."""
        return {name: getattr(self, name) for name in self.param_names}

    def grads(self):
        """``{name: array}`` of the gradients of the last ``backward``."""
        return {name: getattr(self, "d" + name) for name in self.param_names}

    def count_params(self):
        """Number of weights, the seed's count (no biases exist)."""
        return int(sum(np.prod(a.shape) for a in self.params().values()))

    def summary(self):
        """The seed's triple ``(layer name, output shape, parameter count)``."""
        return self.kind, self.output_shape, self.count_params()

    def get_config(self):
        """Constructor arguments other than ``input_shape`` and weights (plain data)."""
        return {}

    def saved_arrays(self):
        """``{name: array}`` of what ``save`` stores: the weights, then any state."""
        return {name: getattr(self, name) for name in self.param_names + self.state_names}

    def set_params(self, arrays):
        """Replace the weights (and state) by copies of ``arrays`` (``{name: array}``),
        checking shapes."""
        for name in self.param_names + self.state_names:
            cur = getattr(self, name)
            new = np.asarray(arrays[name], dtype=cur.dtype)
            if new.shape != cur.shape:
                raise ValueError(f"{self.kind}: parameter {name} must have shape "
                                 f"{cur.shape}, got {new.shape}")
            cur[...] = new  # in place: the fastconv layer underneath holds this array

    def __repr__(self):
        return f"{self.kind}(input_shape={self.input_shape}, output_shape={self.output_shape})"


class Input(Layer):
    """Input layer: declares the per-sample shape and checks the data against it."""

    kind = "Input"

    def __init__(self, input_shape):
        super().__init__(input_shape)

    def _output_shape(self, input_shape):
        return input_shape

    def forward(self, x):
        x = np.asarray(x)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"Input: data of shape {x.shape} does not match the model's "
                             f"input shape (N,) + {self.input_shape}")
        return x

    def backward(self, dout):
        return dout


class Conv2D(Layer):
    """2-D convolution + activation on :class:`fastconv.layers.Convolution`.

    Parameters
    ----------
    filters : int
        Number of kernels.
    kernel_size : int
        Square kernel side.
    activate_fcn : str
        ``"ReLU"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"`` or ``"linear"``.
    input_shape : tuple (C, H, W), optional
        Inferred by ``Model.add_layer`` when omitted.
    stride : int
    padding : {"valid", "same", "full"}
        Zero padding of 0, ``kernel_size // 2`` and ``kernel_size - 1`` (the seed's table);
        ``"same"`` keeps H and W for odd kernels and stride 1.
    kernel : ndarray (filters, C, k, k), optional
        Initial weights; default Kaiming normal with fan-in ``C*k*k``.
    """

    kind = "Conv2D"
    param_names = ("W",)
    PADDINGS = ("valid", "same", "full")

    def __init__(self, filters, kernel_size, activate_fcn="ReLU", input_shape=None,
                 stride=1, padding="valid", kernel=None):
        self.filters = _positive_int(filters, "filters", self.kind)
        self.kernel_size = _positive_int(kernel_size, "kernel_size", self.kind)
        self.stride = _positive_int(stride, "stride", self.kind)
        if padding not in self.PADDINGS:
            raise ValueError(f"Conv2D: padding must be one of {self.PADDINGS}, got {padding!r}")
        self.padding = padding
        k = self.kernel_size
        self.pad = {"valid": 0, "same": k // 2, "full": k - 1}[padding]
        self.activation = canonical_name(activate_fcn)
        self._init_kernel = None if kernel is None else np.array(kernel, dtype=np.float64)
        super().__init__(input_shape)

    def _output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D: input_shape must be (C, H, W), got {input_shape}")
        C, H, W = input_shape
        k, p, s = self.kernel_size, self.pad, self.stride
        out_h, out_w = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        if H + 2 * p < k or W + 2 * p < k:
            raise ValueError(f"Conv2D: a {k}x{k} kernel with padding {self.padding!r} does "
                             f"not fit an input of shape {input_shape}")
        return (self.filters, out_h, out_w)

    def _create(self):
        C = self.input_shape[0]
        shape = (self.filters, C, self.kernel_size, self.kernel_size)
        if self._init_kernel is not None:
            if self._init_kernel.shape != shape:
                raise ValueError(f"Conv2D: kernel must have shape {shape}, got "
                                 f"{self._init_kernel.shape}")
            W = self._init_kernel.copy()
        else:
            # Kaiming normal; fan-in of one output neuron is C*k*k (the seed passed C*H*W)
            fan_in = C * self.kernel_size ** 2
            std = math.sqrt(2.0 / (1.0 + _KAIMING_A ** 2) / fan_in)
            W = np.random.normal(0.0, std, size=shape)
        self.W = W
        self.dW = None
        self._conv = _fl.Convolution(W, np.zeros(self.filters), self.stride, self.pad)
        self.act = get_activation(self.activation)

    def forward(self, x):
        return self.act.forward(self._conv.forward(x))

    def backward(self, dout):
        dx = self._conv.backward(self.act.backward(dout))
        self.dW = self._conv.dW
        return dx

    def get_config(self):
        return {"filters": self.filters, "kernel_size": self.kernel_size,
                "activate_fcn": self.activation, "stride": self.stride,
                "padding": self.padding}


class _Pooling2D(Layer):
    """Square pooling window; ``stride=0`` means ``stride = pool_size`` (the seed's default).

    Only ``padding="valid"`` exists: the seed accepted other strings and ignored them.
    """

    _impl = None

    def __init__(self, pool_size, stride=0, input_shape=None, padding="valid"):
        self.pool_size = _positive_int(pool_size, "pool_size", self.kind)
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 0:
            raise ValueError(f"{self.kind}: stride must be an int >= 0, got {stride!r}")
        self.stride = int(stride) or self.pool_size
        if padding != "valid":
            raise ValueError(f"{self.kind}: only padding='valid' is supported, got {padding!r}")
        self.padding = padding
        super().__init__(input_shape)

    def _output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.kind}: input_shape must be (C, H, W), got {input_shape}")
        C, H, W = input_shape
        k, s = self.pool_size, self.stride
        if H < k or W < k:
            raise ValueError(f"{self.kind}: a {k}x{k} window does not fit an input of "
                             f"shape {input_shape}")
        return (C, (H - k) // s + 1, (W - k) // s + 1)

    def _create(self):
        self._pool = self._impl(self.pool_size, self.pool_size, self.stride, 0)

    def forward(self, x):
        return self._pool.forward(x)

    def backward(self, dout):
        return self._pool.backward(dout)

    def get_config(self):
        return {"pool_size": self.pool_size, "stride": self.stride, "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """Max pooling on :class:`fastconv.layers.Pooling`."""

    kind = "MaxPooling2D"
    _impl = _fl.Pooling


class AveragePooling2D(_Pooling2D):
    """Average pooling on :class:`fastconv.layers.AvgPooling`."""

    kind = "AveragePooling2D"
    _impl = _fl.AvgPooling


class Flatten(Layer):
    """Flattens (C, H, W) to C*H*W per sample."""

    kind = "Flatten"

    def __init__(self, input_shape=None):
        self._x_shape = None
        super().__init__(input_shape)

    def _output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._x_shape)


class _DenseBase(Layer):
    """Fully connected layer ``act(x @ W)`` on :class:`fastconv.layers.Affine`.

    ``W`` has the book's (input_dim, units) layout; the seed's ``theta`` is its transpose
    (units, input_dim) and is accepted as initial weights.
    """

    param_names = ("W",)

    def __init__(self, units, input_dim=None, activate_fcn="linear", theta=None):
        self.units = _positive_int(units, "units", self.kind)
        self.activation = canonical_name(activate_fcn)
        self._init_theta = None if theta is None else np.array(theta, dtype=np.float64)
        self.z = None
        self.a = None
        super().__init__(input_dim)

    def _output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{self.kind}: input must be flat (n,), got {input_shape}; "
                             f"add a Flatten layer first")
        return (self.units,)

    def _create(self):
        n_in = self.input_shape[0]
        if self._init_theta is not None:
            if self._init_theta.shape != (self.units, n_in):
                raise ValueError(f"{self.kind}: theta must have shape {(self.units, n_in)}, "
                                 f"got {self._init_theta.shape}")
            W = np.ascontiguousarray(self._init_theta.T)
        else:
            # Kaiming uniform as the seed (PyTorch's Linear default): bound 1/sqrt(fan_in)
            bound = math.sqrt(6.0 / (1.0 + _KAIMING_A ** 2) / n_in)
            W = np.random.uniform(-bound, bound, size=(n_in, self.units))
        self.W = W
        self.dW = None
        self._affine = _fl.Affine(W, np.zeros(self.units))
        self.act = get_activation(self.activation)

    @property
    def theta(self):
        """The seed's (units, input_dim) view of the weights."""
        return self.W.T

    def forward(self, x):
        self.z = self._affine.forward(x)
        self.a = self.act.forward(self.z)
        return self.a

    def backward(self, dout):
        return self.backward_logits(self.act.backward(dout))

    def backward_logits(self, dz):
        """Back-propagate a gradient given w.r.t. the pre-activation ``z``."""
        dx = self._affine.backward(dz)
        self.dW = self._affine.dW
        return dx

    def get_config(self):
        return {"units": self.units, "activate_fcn": self.activation}


class Dense(_DenseBase):
    """Hidden fully connected layer ``Dense(units, input_dim, activate_fcn)``."""

    kind = "Dense"

    def __init__(self, units, input_dim=None, activate_fcn="ReLU", theta=None):
        super().__init__(units, input_dim, activate_fcn, theta)


class Output(_DenseBase):
    """Output layer ``Output(units, input_dim, activate_fcn="softmax")``.

    Must be the model's last layer; the loss computes the gradient w.r.t. its logits
    (``z``) and hands it to :meth:`backward_logits`.
    """

    kind = "Output"

    def __init__(self, units, input_dim=None, activate_fcn="softmax", theta=None):
        super().__init__(units, input_dim, activate_fcn, theta)


from .recurrent import Recurrent  # noqa: E402  (it builds on Layer above)

LAYER_CLASSES = {cls.kind: cls for cls in (Conv2D, MaxPooling2D, AveragePooling2D, Flatten,
                                           Dense, Output, Recurrent)}
