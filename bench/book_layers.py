"""The book's Convolution, Pooling and Relu layers, over ``tests/naive.py``'s ``book_*``
functions (the book's im2col/col2im algorithm), and :func:`to_book` that swaps them into a
fastconv network: the baseline of the end-to-end benchmarks.

Affine, Dropout and SoftmaxWithLoss need no twin: fastconv's are the book's code already.
"""
import naive
from fastconv import layers as fc_layers

__all__ = ["Convolution", "Pooling", "Relu", "to_book"]


class Convolution:
    """The book's ``common.layers.Convolution``: keeps ``col`` and ``col_W`` for backward."""

    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x = None
        self.col = None
        self.col_W = None
        self.dW = None
        self.db = None

    def forward(self, x):
        out, self.col, self.col_W = naive.book_conv_forward(x, self.W, self.b, self.stride,
                                                            self.pad)
        self.x = x
        return out

    def backward(self, dout):
        dx, self.dW, self.db = naive.book_conv_backward(dout, self.x, self.W, self.col,
                                                        self.col_W, self.stride, self.pad)
        return dx


class Pooling:
    """The book's ``common.layers.Pooling`` (max pooling through im2col)."""

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None
        self.arg_max = None

    def forward(self, x):
        out, self.arg_max = naive.book_pool_forward(x, self.pool_h, self.pool_w, self.stride,
                                                    self.pad)
        self.x = x
        return out

    def backward(self, dout):
        return naive.book_pool_backward(dout, self.arg_max, self.x.shape, self.pool_h,
                                        self.pool_w, self.stride, self.pad)


class Relu:
    """The book's ``common.layers.Relu``."""

    def __init__(self):
        self.mask = None

    def forward(self, x):
        out, self.mask = naive.book_relu_forward(x)
        return out

    def backward(self, dout):
        return naive.book_relu_backward(dout, self.mask)


def _twin(layer):
    if isinstance(layer, fc_layers.Convolution):
        # same W and b arrays: the optimizer's in-place updates reach both
        return Convolution(layer.W, layer.b, layer.stride, layer.pad)
    if isinstance(layer, fc_layers.Pooling):
        return Pooling(layer.pool_h, layer.pool_w, layer.stride, layer.pad)
    if isinstance(layer, fc_layers.Relu):
        return Relu()
    return layer


def to_book(network):
    """Replace, in place, the fastconv layers of ``network`` (``layers`` an OrderedDict as in
    SimpleConvNet or a list as in DeepConvNet) by the book's; returns ``network``."""
    if hasattr(network.layers, "keys"):
        for key in list(network.layers.keys()):
            network.layers[key] = _twin(network.layers[key])
    else:
        network.layers[:] = [_twin(layer) for layer in network.layers]
    return network
