"""The book's ``ch07/simple_convnet.py`` on fastconv's layers."""
from collections import OrderedDict

import numpy as np

from ..gradient import numerical_gradient
from ..fusion import backward_layers, forward_layers
from ..layers import Affine, Convolution, Pooling, Relu, SoftmaxWithLoss
from ._params import ParamsIOMixin

__all__ = ["SimpleConvNet"]


def backprop(last_layer, layers, param_layers):
    """The book's backward pass: ``last_layer`` then ``layers`` in reverse order; returns the
    grads dict ``W1, b1, ...`` from the ``dW``/``db`` of ``param_layers``.

    Convolution -> Relu -> Pooling runs go through one fused pass, and the input layer's dx
    is not needed, so a Convolution there skips it (``fusion.backward_layers``).
    """
    backward_layers(layers, last_layer.backward(1))
    grads = {}
    for i, layer in enumerate(param_layers, start=1):
        grads['W' + str(i)], grads['b' + str(i)] = layer.dW, layer.db
    return grads


def batched_accuracy(predict, x, t, batch_size):
    """Share of ``x`` whose arg-max of ``predict`` equals ``t`` (indices or one-hot).

    As the book, ``predict`` runs on slices of ``batch_size``; unlike the book, a last partial
    batch is evaluated too (the book skips it but still divides by ``x.shape[0]``).
    """
    if t.ndim != 1:
        t = np.argmax(t, axis=1)
    acc = 0.0
    for i in range(0, x.shape[0], batch_size):
        y = np.argmax(predict(x[i:i + batch_size]), axis=1)
        acc += np.sum(y == t[i:i + batch_size])
    return acc / x.shape[0]


class SimpleConvNet(ParamsIOMixin):
    """conv - relu - pool - affine - relu - affine - softmax (the book's ch07 network).

    Parameters
    ----------
    input_dim : tuple of int
        (channels, height, width) of one sample.
    conv_param : dict
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of the convolution.
    hidden_size : int
        Units of the hidden affine layer.
    output_size : int
        Classes.
    weight_init_std : float
        Standard deviation of the Gaussian initial weights (the book's 0.01).
    dtype : dtype, keyword-only, default float64
        dtype of the parameters. The initial weights are drawn in float64 in the book's
        order and then cast, so a seeded float32 network starts from the book's numbers
        rounded. Use float32 together with :func:`fastconv.config.set_keep_dtype`.
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param={'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1},
                 hidden_size=100, output_size=10, weight_init_std=0.01, *,
                 dtype=np.float64):
        filter_num = conv_param['filter_num']
        filter_size = conv_param['filter_size']
        filter_pad = conv_param['pad']
        filter_stride = conv_param['stride']
        input_size = input_dim[1]
        conv_output_size = (input_size - filter_size + 2 * filter_pad) // filter_stride + 1
        pool_output_size = self._pool_output_size(input_dim, conv_param)
        if conv_output_size < 2:
            raise ValueError(f"SimpleConvNet: input {input_dim} is too small for the "
                             f"convolution {conv_param} and a 2x2 pooling")

        # drawn in the book's order, so a seeded network has the book's initial weights
        self.params = {}
        self.params['W1'] = weight_init_std * \
            np.random.randn(filter_num, input_dim[0], filter_size, filter_size)
        self.params['b1'] = np.zeros(filter_num)
        self.params['W2'] = weight_init_std * np.random.randn(pool_output_size, hidden_size)
        self.params['b2'] = np.zeros(hidden_size)
        self.params['W3'] = weight_init_std * np.random.randn(hidden_size, output_size)
        self.params['b3'] = np.zeros(output_size)
        for key in self.params:
            self.params[key] = self.params[key].astype(dtype, copy=False)

        self.layers = OrderedDict()
        self.layers['Conv1'] = Convolution(self.params['W1'], self.params['b1'],
                                           conv_param['stride'], conv_param['pad'])
        self.layers['Relu1'] = Relu()
        self.layers['Pool1'] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers['Affine1'] = Affine(self.params['W2'], self.params['b2'])
        self.layers['Relu2'] = Relu()
        self.layers['Affine2'] = Affine(self.params['W3'], self.params['b3'])
        self.last_layer = SoftmaxWithLoss()

    @staticmethod
    def _pool_output_size(input_dim, conv_param):
        """Inputs of Affine1: the pooled convolution's size. The book computes it with true
        division, which is wrong for odd convolution outputs; floor division matches what
        the 2x2 pooling returns."""
        conv_output_size = (input_dim[1] - conv_param['filter_size'] + 2 * conv_param['pad']) \
            // conv_param['stride'] + 1
        return conv_param['filter_num'] * (conv_output_size // 2) * (conv_output_size // 2)

    def _param_layers(self):
        return [self.layers['Conv1'], self.layers['Affine1'], self.layers['Affine2']]

    def predict(self, x):
        """Scores (before softmax), shape (N, output_size). Conv1, Relu1 and Pool1 run as
        one fused pass (``fusion.forward_layers``); the layers end as the book's loop leaves
        them."""
        return forward_layers(self.layers.values(), x)

    def loss(self, x, t):
        """Cross-entropy loss of the batch ``x`` with labels ``t`` (indices or one-hot)."""
        y = self.predict(x)
        return self.last_layer.forward(y, t)

    def accuracy(self, x, t, batch_size=100):
        """Share of correctly classified samples, predicted ``batch_size`` at a time."""
        return batched_accuracy(self.predict, x, t, batch_size)

    def numerical_gradient(self, x, t):
        """Gradients by central differences (slow: for gradient checks only).

        Returns
        -------
        dict
            ``W1, b1, W2, b2, W3, b3`` like :meth:`gradient`.
        """
        loss_w = lambda w: self.loss(x, t)  # noqa: E731 (the book's form)

        grads = {}
        for idx in (1, 2, 3):
            grads['W' + str(idx)] = numerical_gradient(loss_w, self.params['W' + str(idx)])
            grads['b' + str(idx)] = numerical_gradient(loss_w, self.params['b' + str(idx)])
        return grads

    def gradient(self, x, t):
        """Gradients by backpropagation.

        Returns
        -------
        dict
            ``W1, b1, W2, b2, W3, b3``: the ``dW``/``db`` of the layers.
        """
        # forward
        self.loss(x, t)

        return backprop(self.last_layer, self.layers.values(), self._param_layers())
