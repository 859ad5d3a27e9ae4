"""The book's ``common/layers.py``: same classes, constructors, attributes and numbers.

Relu, Convolution, Pooling and AvgPooling call the Numba kernels of ``fastconv.kernels``
(Relu below the sizes of :mod:`fastconv.sizes` the book's lines); SoftmaxWithLoss, Dropout,
BatchNormalization and Sigmoid are one or two NumPy calls, as in the book. Affine's products
are the book's ``np.dot``, after a convolution from ``sizes.AFFINE_THREADS_FROM`` on
fastconv's threads (``kernels.matmul``).

dtype rule (the book's): im2col returns float64, so Convolution and Pooling return float64
whatever the input; in float32 mode (:func:`fastconv.config.set_keep_dtype`) float32 stays.
"""
import numpy as np

from . import config
from .functions import cross_entropy_error, sigmoid, softmax
from .kernels import _checks as chk, activation, conv, pooling
from .kernels.matmul import matmul
from .sizes import AFFINE_THREADS_FROM, BOOK_BELOW
from .util import im2col

_RELU_BOOK_BELOW = BOOK_BELOW["relu"]

__all__ = ["Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
           "Convolution", "Pooling", "AvgPooling"]


class Relu:
    """ReLU. ``mask`` is the book's boolean ``x <= 0``; ``backward`` writes into ``dout``."""

    def __init__(self):
        self.mask = None

    def forward(self, x):
        if type(x) is np.ndarray and x.size < _RELU_BOOK_BELOW:  # the book's lines
            self.mask = mask = x <= 0
            out = x.copy()
            np.putmask(out, mask, 0)  # out[mask] = 0, in one call
            return out
        out, self.mask = activation.relu_forward(x)
        return out

    def backward(self, dout):
        try:  # small: the book's dout[mask] = 0, in one call
            if dout.size < _RELU_BOOK_BELOW and dout.shape == self.mask.shape:
                np.putmask(dout, self.mask, 0)
                return dout
        except AttributeError:  # not an array, or no forward yet: the kernel's wrapper says so
            pass
        return activation.relu_backward(dout, self.mask)


class Sigmoid:
    """Logistic sigmoid; ``out`` keeps the forward output, from which backward computes
    ``dout * (1 - out) * out``."""

    def __init__(self):
        self.out = None

    def forward(self, x):
        out = sigmoid(x)
        self.out = out
        return out

    def backward(self, dout):
        out = self.out
        if out is None or getattr(dout, "shape", None) != out.shape:
            chk.dout_shape("Sigmoid.backward", dout, None if out is None else np.shape(out))
        return dout * (1.0 - out) * out


class Affine:
    """Fully connected layer ``x @ W + b``; 4-D input is flattened per sample, as the book."""

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        shape = x.shape
        x = x.reshape(shape[0], -1)
        W = self.W
        try:  # after a convolution, large products on fastconv's threads (see fastconv.sizes)
            if len(shape) == 4 and x.shape[0] * W.size >= AFFINE_THREADS_FROM:
                out = matmul(x, W) + self.b
            else:
                out = np.dot(x, W) + self.b
        except ValueError:
            if x.shape[1] != W.shape[0]:
                raise ValueError(f"Affine.forward: x has {x.shape[1]} features per sample "
                                 f"(shape {shape}) but W has shape {W.shape}") from None
            raise
        self.original_x_shape, self.x = shape, x
        return out

    def backward(self, dout, need_dx=True):
        """Set ``dW``, ``db`` and return dx (None with ``need_dx=False``, not in the book)."""
        x, W = self.x, self.W
        if getattr(dout, "shape", None) != (x.shape[0], W.shape[1]):
            raise ValueError(f"Affine.backward: dout must have shape {(x.shape[0], W.shape[1])}"
                             f", got {np.shape(dout)}")
        threads = len(self.original_x_shape) == 4 and x.shape[0] * W.size >= AFFINE_THREADS_FROM
        self.dW = matmul(x, dout, trans_a=True) if threads else np.dot(x.T, dout)
        self.db = dout.sum(axis=0)  # the book's np.sum(dout, axis=0), without its dispatch
        if need_dx:
            dx = matmul(dout, W, trans_b=True) if threads else np.dot(dout, W.T)
            return dx.reshape(*self.original_x_shape)
        return None


class SoftmaxWithLoss:
    """Softmax and the mean cross-entropy loss over a batch.

    ``x`` is (N, classes); ``t`` holds one-hot rows of x's shape or N class indices. As in
    the book, a negative index counts from the end (NumPy indexing): -1 is the last class.
    Anything else (1-D ``x``, labels for another batch size, an index >= classes or
    < -classes, float indices) raises ValueError or TypeError naming ``x`` or ``t``.
    """

    def __init__(self):
        self.loss = None
        self.y = None  # softmax output
        self.t = None  # labels: one-hot or indices

    def forward(self, x, t):
        if getattr(x, "ndim", None) != 2 and np.ndim(x) != 2:
            raise ValueError(f"SoftmaxWithLoss.forward: x must be 2-D (batch, classes), got "
                             f"shape {np.shape(x)}")
        y = softmax(x)
        loss = cross_entropy_error(y, t)  # checks t against y's shape
        if config.keep_dtype():  # NumPy 1 divides the float32 sum by the batch in float64
            loss = y.dtype.type(loss)
        self.t, self.y, self.loss = t, y, loss
        return loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:  # one-hot labels
            dx = (self.y - self.t) / batch_size
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
            dx = dx / batch_size
        return dx


class Dropout:
    """Dropout as the book: not inverted (test time scales by ``1 - dropout_ratio``), mask
    drawn with ``np.random.rand`` so a seeded run follows the book's."""

    def __init__(self, dropout_ratio=0.5):
        if not 0.0 <= dropout_ratio <= 1.0:
            raise ValueError(f"Dropout: dropout_ratio must be in [0, 1], got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        if self.mask is None:
            raise ValueError("Dropout.backward: no mask; call forward(x, train_flg=True) first")
        if getattr(dout, "shape", None) != self.mask.shape:
            chk.dout_shape("Dropout.backward", dout, self.mask.shape)
        return dout * self.mask


class BatchNormalization:
    """Batch normalisation (http://arxiv.org/abs/1502.03167), per activation as the book:
    4-D input is normalised over N for each of the C*H*W positions. ``gamma``, ``beta`` and
    the running statistics have one value per activation (D = C*H*W); ``train_flg=False``
    normalises with the running statistics, which start at zero as in the book."""

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.input_shape = None  # 4-D for Conv layers, 2-D for Affine layers
        # used at test time
        self.running_mean = running_mean
        self.running_var = running_var
        # used in backward
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x, train_flg=True):
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(f"BatchNormalization.forward: x must have a batch axis, (N, D) or "
                             f"(N, C, H, W), got shape {np.shape(x)}")
        self.input_shape = x.shape
        if x.ndim != 2:
            x = x.reshape(x.shape[0], -1)
        self._check_sizes(x.shape[1])
        out = self.__forward(x, train_flg)
        return out.reshape(*self.input_shape)

    def __forward(self, x, train_flg):
        if self.running_mean is None:
            N, D = x.shape
            dt = chk.layer_dtype(x)  # the book's float64, float32 in float32 mode
            self.running_mean = np.zeros(D, dtype=dt)
            self.running_var = np.zeros(D, dtype=dt)
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc ** 2, axis=0)
            std = np.sqrt(var + 10e-7)
            xn = xc / std
            self.batch_size = x.shape[0]
            self.xc = xc
            self.xn = xn
            self.std = std
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            xc = x - self.running_mean
            xn = xc / ((np.sqrt(self.running_var + 10e-7)))
        return self.gamma * xn + self.beta

    def _check_sizes(self, D):
        # gamma * xn would broadcast a wrong-sized gamma silently (a size-1 one, say)
        g, b, m, v = self.gamma, self.beta, self.running_mean, self.running_var
        if (getattr(g, "size", -1) == getattr(b, "size", -1) == D
                and getattr(m, "size", D) == getattr(v, "size", D) == D):
            return  # all fit (the running statistics may not exist yet)
        for name in ("gamma", "beta", "running_mean", "running_var"):
            value = getattr(self, name)
            if value is not None and np.size(value) != D:
                raise ValueError(f"BatchNormalization.forward: x has {D} activations per "
                                 f"sample but {name} has shape {np.shape(value)}")

    def backward(self, dout):
        if getattr(dout, "shape", None) != self.input_shape or self.input_shape is None:
            chk.dout_shape("BatchNormalization.backward", dout, self.input_shape)
        if dout.ndim != 2:
            dout = dout.reshape(dout.shape[0], -1)
        dx = self.__backward(dout)
        return dx.reshape(*self.input_shape)

    def __backward(self, dout):
        dbeta = dout.sum(axis=0)
        dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc += (2.0 / self.batch_size) * self.xc * dvar
        dmu = np.sum(dxc, axis=0)
        dx = dxc - dmu / self.batch_size
        self.dgamma = dgamma
        self.dbeta = dbeta
        return dx


class Convolution:
    """Convolution layer. ``W`` (FN, C, FH, FW), ``b`` (FN,).

    Runs the book's im2col and GEMM one sample at a time (``kernels.conv``). ``col`` and
    ``col_W`` are the book's matrices, built when read: fastconv does not keep the
    (N*out_h*out_w, C*FH*FW) matrix between forward and backward.
    """

    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        # kept for backward
        self.x = None
        # gradients
        self.dW = None
        self.db = None

    @property
    def col(self):
        """The book's im2col matrix of the last forward input (computed when read)."""
        if self.x is None:
            return None
        FN, C, FH, FW = self.W.shape
        return im2col(self.x, FH, FW, self.stride, self.pad)

    @property
    def col_W(self):
        """The book's ``W.reshape(FN, -1).T``."""
        return self.W.reshape(self.W.shape[0], -1).T

    def forward(self, x):
        dt = chk.layer_dtype(x, self.W)
        out = conv.conv_forward(x, self.W, self.b, self.stride, self.pad, dtype=dt)
        self.x = x
        return out

    def backward(self, dout, need_dx=True):
        """Set ``dW``, ``db`` and return dx (None with ``need_dx=False``, not in the book)."""
        dx, self.dW, db = conv.conv_backward(dout, self.x, self.W, self.stride, self.pad,
                                             dtype=chk.layer_dtype(self.x, self.W),
                                             need_dx=need_dx)
        # the book's db is np.sum(dout), so it has dout's dtype
        self.db = db.astype(np.result_type(np.asarray(dout).dtype, np.float32), copy=False)
        return dx


class _PoolingBase:
    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None

    @property
    def x(self):
        """The last forward input (after a fused pass, computed when first read)."""
        if callable(self._x):
            self._x = self._x()
        return self._x

    @x.setter
    def x(self, value):
        self._x = value
        self._x_shape = None if value is None else np.shape(value)

    def _dtype(self, x):
        return chk.layer_dtype(np.asarray(x))


class Pooling(_PoolingBase):
    """Max pooling. ``arg_max`` has the book's flat (n, oh, ow, c) layout; ``window_idx``
    keeps the same in compact int8 planes (N, C, out_h, out_w), each the window position
    of a maximum. pad > 0 (which crashes in the book) follows PyTorch: pad <= pool/2,
    padded cells never win."""

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        super().__init__(pool_h, pool_w, stride, pad)
        self.window_idx = None

    @property
    def arg_max(self):
        """The book's flat int array (built from ``window_idx`` when read)."""
        idx = self.window_idx
        return pooling.book_arg_max(idx) if idx is not None and idx.ndim == 4 else idx

    @arg_max.setter
    def arg_max(self, value):
        # a book-layout array set by hand is kept as it is; backward reads either layout
        self.window_idx = None if value is None else np.asarray(value)

    def keep(self, x, window_idx, x_shape=None):
        """Keep what :meth:`forward` keeps for :meth:`backward`, for a pass that computed
        this pooling elsewhere (:class:`fastconv.fusion.ConvRelu`).

        Parameters
        ----------
        x : ndarray or callable
            The forward input, or a function computing it (called when ``x`` is read).
        window_idx : int8 ndarray (N, C, out_h, out_w)
            Window position of each maximum.
        x_shape : tuple, optional
            The input's shape (needed when ``x`` is a function).
        """
        self.x = x
        if x_shape is not None:
            self._x_shape = tuple(x_shape)
        self.window_idx = window_idx

    def forward(self, x):
        out, idx = pooling.maxpool_forward(x, self.pool_h, self.pool_w, self.stride,
                                           self.pad, dtype=self._dtype(x), layout="plane")
        self.keep(x, idx)
        return out

    def backward(self, dout):
        return pooling.maxpool_backward(dout, self.window_idx, self._x_shape, self.pool_h,
                                        self.pool_w, self.stride, self.pad,
                                        dtype=self._dtype(dout))


class AvgPooling(_PoolingBase):
    """Average pooling (not in the book; the seed framework's AveragePooling2D), same
    signature as :class:`Pooling`. Padded cells count as zeros."""

    def forward(self, x):
        out = pooling.avgpool_forward(x, self.pool_h, self.pool_w, self.stride, self.pad,
                                      dtype=self._dtype(x))
        self.x = x
        return out

    def backward(self, dout):
        return pooling.avgpool_backward(dout, self._x_shape, self.pool_h, self.pool_w,
                                        self.stride, self.pad, dtype=self._dtype(dout))
