# coding: utf-8
# A module of the book's common/ that fastconv does not provide: it must load from here,
# and its own imports of common.layers / common.gradient must get fastconv's.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common.layers import Relu, Affine, SoftmaxWithLoss
from common.gradient import numerical_gradient

SOURCE = "book folder"


class TinyNet:
    """affine - relu - affine - softmax, as the book's MultiLayerNet with one hidden layer."""

    def __init__(self, input_size, hidden_size, output_size):
        self.params = {
            'W1': 0.5 * np.random.randn(input_size, hidden_size), 'b1': np.zeros(hidden_size),
            'W2': 0.5 * np.random.randn(hidden_size, output_size), 'b2': np.zeros(output_size)}
        self.layers = [Affine(self.params['W1'], self.params['b1']), Relu(),
                       Affine(self.params['W2'], self.params['b2'])]
        self.last_layer = SoftmaxWithLoss()

    def loss(self, x, t):
        for layer in self.layers:
            x = layer.forward(x)
        return self.last_layer.forward(x, t)

    def numerical_gradient(self, x, t):
        return {key: numerical_gradient(lambda w: self.loss(x, t), self.params[key])
                for key in self.params}
