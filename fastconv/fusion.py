"""The book's Convolution -> Relu (-> Pooling) run as one pass, and the networks' layer walks.

The book's networks run ``Convolution -> Relu -> Pooling(2, 2, stride=2)`` and, in
DeepConvNet, ``Convolution -> Relu`` alone. As separate layers each writes its whole output
to memory for the next to read back; :class:`ConvRelu` runs them as one pass of
:mod:`fastconv.kernels.conv`, where each sample's output stays in cache.

It uses the layers' public API only (``W``, ``b``, ``x``, ``mask``, ``dW``, ``db`` and
:meth:`fastconv.layers.Pooling.keep`), and leaves them as their own calls would.

:func:`forward_layers` and :func:`backward_layers` are the book's ``predict`` loop and
gradient loop over a list of layers, with every run that :meth:`ConvRelu.span` accepts fused.
"""
import numpy as np

from .kernels import conv as conv_kernels
from .kernels._checks import layer_dtype
from .layers import Affine, Convolution, Dropout, Pooling, Relu

__all__ = ["ConvRelu", "forward_layers", "backward_layers"]


class ConvRelu:
    """A :class:`~fastconv.layers.Convolution`, a :class:`~fastconv.layers.Relu` and
    optionally a 2x2, stride-2 :class:`~fastconv.layers.Pooling`, run as one pass.

    Parameters
    ----------
    conv, relu : Convolution, Relu
    pool : Pooling or None
    """

    def __init__(self, conv, relu, pool=None):
        if ConvRelu.span([conv, relu] + ([pool] if pool is not None else []), 0) == 0:
            raise TypeError("ConvRelu: needs a Convolution, a Relu and optionally a 2x2, "
                            "stride-2 Pooling without padding")
        self.conv, self.relu, self.pool = conv, relu, pool

    @staticmethod
    def span(layers, i):
        """How many layers from ``layers[i]`` one fused pass can run: 3 (Convolution, Relu,
        Pooling 2x2 stride 2), 2 (Convolution, Relu) or 0. Exact types: a subclass may
        override what the pass would skip."""
        if not (i + 1 < len(layers) and type(layers[i]) is Convolution
                and type(layers[i + 1]) is Relu):
            return 0
        pool = layers[i + 2] if i + 2 < len(layers) else None
        if type(pool) is Pooling and (pool.pool_h, pool.pool_w, pool.stride, pool.pad) == (
                2, 2, 2, 0):
            return 3
        return 2

    def forward(self, x):
        """``pool.forward(relu.forward(conv.forward(x)))``, or without the pool."""
        conv = self.conv
        dt = layer_dtype(np.asarray(x), conv.W)
        W, b, stride, pad = conv.W, conv.b, conv.stride, conv.pad
        out, mask, idx = conv_kernels.conv_relu_forward(x, W, b, stride, pad, dtype=dt,
                                                        pool=self.pool is not None)
        if self.pool is not None:
            # the pooling's input is not written out; read, it is computed again (the
            # optimizer updates W and b in place, so from copies)
            W, b = np.array(W, copy=True), np.array(b, copy=True)
            self.pool.keep(lambda: conv_kernels.conv_relu_forward(x, W, b, stride, pad,
                                                                  dtype=dt)[0],
                           idx, x_shape=mask.shape)
        conv.x = x
        self.relu.mask = mask
        return out

    def ready(self, dout):
        """Whether the layers hold what the fused backward reads, shaped for ``dout``: the
        ReLU's mask and the pooling's ``window_idx`` (not an ``arg_max`` set by hand)."""
        mask = self.relu.mask
        if not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.ndim == 4):
            return False
        if self.pool is None:
            return mask.shape == np.shape(dout)
        idx = self.pool.window_idx
        N, FN, out_h, out_w = mask.shape
        return (isinstance(idx, np.ndarray) and idx.dtype == np.int8
                and idx.shape == (N, FN, out_h // 2, out_w // 2) == np.shape(dout))

    def backward(self, dout, need_dx=True):
        """``conv.backward(relu.backward(pool.backward(dout)))`` (or without the pool): sets
        ``conv.dW`` and ``conv.db``, returns dx (None when ``need_dx`` is False, for a
        network's input layer). ``dout`` is not written."""
        conv = self.conv
        dt = layer_dtype(conv.x, conv.W)
        idx = None if self.pool is None else self.pool.window_idx
        dx, dW, db = conv_kernels.conv_relu_backward(dout, self.relu.mask, conv.x, conv.W,
                                                     conv.stride, conv.pad, dtype=dt,
                                                     need_dx=need_dx, idx=idx)
        # the dtype of the gradient conv.backward would get: relu.backward keeps dout's,
        # pool.backward returns its compute dtype
        grad_dtype = np.asarray(dout).dtype if idx is None else layer_dtype(np.asarray(dout))
        conv.dW = dW
        conv.db = db.astype(np.result_type(grad_dtype, np.float32), copy=False)  # the book's
        return dx  # np.sum(dout) has its dout's dtype


def forward_layers(layers, x, train_flg=None):
    """``x`` through ``layers`` in order, as the book's ``predict`` loops, with every run
    :meth:`ConvRelu.span` accepts done as one fused pass. ``train_flg``, when given, goes to
    the Dropout layers."""
    layers = list(layers)
    i = 0
    while i < len(layers):
        k = ConvRelu.span(layers, i)
        if k:
            x = ConvRelu(*layers[i:i + k]).forward(x)
        elif train_flg is not None and isinstance(layers[i], Dropout):
            x = layers[i].forward(x, train_flg)
        else:
            x = layers[i].forward(x)
        i += max(k, 1)
    return x


def backward_layers(layers, dout):
    """The book's backward loop over ``layers`` in reverse order, with the runs
    :func:`forward_layers` fused done as one pass too. The first layer's dx is not needed
    (nothing reads it), so a Convolution or an Affine there skips it; returns None."""
    layers = list(layers)
    i = len(layers) - 1
    while i >= 0:
        for k in (3, 2):
            first = i - k + 1
            if first >= 0 and ConvRelu.span(layers[first:i + 1], 0) == k:
                fused = ConvRelu(*layers[first:i + 1])
                if fused.ready(dout):
                    dout = fused.backward(dout, need_dx=first > 0)
                    i = first - 1
                    break
        else:
            layer = layers[i]
            if isinstance(layer, (Convolution, Affine)) and i == 0:
                layer.backward(dout, need_dx=False)
            else:
                dout = layer.backward(dout)
            i -= 1
    return None
