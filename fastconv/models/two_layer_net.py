"""The book's ``ch05/two_layer_net.py``: affine - relu - affine - softmax, by backpropagation."""
from collections import OrderedDict

import numpy as np

from ..fusion import backward_layers
from ..gradient import numerical_gradient
from ..layers import Affine, Relu, SoftmaxWithLoss
from .multi_layer_net import one_batch_accuracy

__all__ = ["TwoLayerNet"]


class TwoLayerNet:
    """Two fully connected layers (the book's ch05 network; ``lastLayer`` is its name).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Units of the input, the hidden layer and the output (784, 50, 10 for MNIST).
    weight_init_std : float, default 0.01
        Standard deviation of the Gaussian initial weights, drawn in the book's order.
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        self.params = {}
        self.params['W1'] = weight_init_std * np.random.randn(input_size, hidden_size)
        self.params['b1'] = np.zeros(hidden_size)
        self.params['W2'] = weight_init_std * np.random.randn(hidden_size, output_size)
        self.params['b2'] = np.zeros(output_size)

        self.layers = OrderedDict()
        self.layers['Affine1'] = Affine(self.params['W1'], self.params['b1'])
        self.layers['Relu1'] = Relu()
        self.layers['Affine2'] = Affine(self.params['W2'], self.params['b2'])
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x):
        """Scores before the softmax, shape (N, output_size)."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        """Cross-entropy loss of ``x`` with labels ``t`` (indices or one-hot)."""
        y = self.predict(x)
        return self.lastLayer.forward(y, t)

    def accuracy(self, x, t):
        """Share of ``x`` classified as ``t`` (indices or one-hot), in one batch."""
        return one_batch_accuracy(self.predict(x), t)

    def numerical_gradient(self, x, t):
        """Gradients ``W1, b1, W2, b2`` by central differences (for gradient checks)."""
        loss_W = lambda W: self.loss(x, t)  # noqa: E731 (the book's form)
        return {key: numerical_gradient(loss_W, self.params[key])
                for key in ('W1', 'b1', 'W2', 'b2')}

    def gradient(self, x, t):
        """Gradients ``W1, b1, W2, b2`` by backpropagation."""
        self.loss(x, t)
        backward_layers(self.layers.values(), self.lastLayer.backward(1))  # Affine1: no dx
        grads = {}
        grads['W1'], grads['b1'] = self.layers['Affine1'].dW, self.layers['Affine1'].db
        grads['W2'], grads['b2'] = self.layers['Affine2'].dW, self.layers['Affine2'].db
        return grads
