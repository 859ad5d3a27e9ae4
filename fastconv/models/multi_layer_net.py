"""The book's ``common/multi_layer_net.py`` and ``common/multi_layer_net_extend.py``.

Fully connected networks of any depth: ``MultiLayerNet`` (weight decay) and
``MultiLayerNetExtend`` (weight decay, dropout, batch normalization), with the book's
arguments, attributes, layer names and random draws.
"""
from collections import OrderedDict

import numpy as np

from ..fusion import backward_layers
from ..gradient import numerical_gradient
from ..layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid, SoftmaxWithLoss

__all__ = ["MultiLayerNet", "MultiLayerNetExtend", "one_batch_accuracy"]

ACTIVATIONS = {'sigmoid': Sigmoid, 'relu': Relu}


def init_scale(weight_init_std, fan_in):
    """The standard deviation of a layer's initial weights: a number, or 'relu'/'he'
    (He: sqrt(2 / fan_in)) or 'sigmoid'/'xavier' (Xavier: sqrt(1 / fan_in))."""
    name = str(weight_init_std).lower()
    if name in ('relu', 'he'):
        return np.sqrt(2.0 / fan_in)
    if name in ('sigmoid', 'xavier'):
        return np.sqrt(1.0 / fan_in)
    if isinstance(weight_init_std, str):
        raise ValueError(f"weight_init_std must be a number or one of 'relu', 'he', 'sigmoid', "
                         f"'xavier', got {weight_init_std!r}")
    return weight_init_std


def one_batch_accuracy(scores, t):
    """Share of rows whose arg-max is ``t`` (indices or one-hot), as the book's accuracy."""
    y = np.argmax(scores, axis=1)
    if t.ndim != 1:
        t = np.argmax(t, axis=1)
    return np.sum(y == t) / float(scores.shape[0])


class MultiLayerNet:
    """(affine - activation) x len(hidden_size_list) - affine - softmax, with weight decay.

    Parameters
    ----------
    input_size : int
        784 for MNIST.
    hidden_size_list : list of int
        Units of each hidden layer, e.g. ``[100, 100, 100]``.
    output_size : int
        10 for MNIST.
    activation : {'relu', 'sigmoid'}
    weight_init_std : float or {'relu', 'he', 'sigmoid', 'xavier'}
        Standard deviation of the initial weights, or the name of He's or Xavier's.
    weight_decay_lambda : float
        Strength of the L2 penalty ``0.5 * lambda * sum(W**2)`` added to the loss.
    """

    def __init__(self, input_size, hidden_size_list, output_size,
                 activation='relu', weight_init_std='relu', weight_decay_lambda=0):
        self._setup(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda)
        self._build_layers(activation)

    def _setup(self, input_size, hidden_size_list, output_size, activation, weight_init_std,
               weight_decay_lambda):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size_list = hidden_size_list
        self.hidden_layer_num = len(hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.params = {}
        # every weight is drawn before any layer exists, in the book's order
        all_size_list = [input_size] + list(hidden_size_list) + [output_size]
        for idx in range(1, len(all_size_list)):
            scale = init_scale(weight_init_std, all_size_list[idx - 1])
            self.params['W' + str(idx)] = scale * np.random.randn(all_size_list[idx - 1],
                                                                  all_size_list[idx])
            self.params['b' + str(idx)] = np.zeros(all_size_list[idx])

    def _affine(self, idx):
        return Affine(self.params['W' + str(idx)], self.params['b' + str(idx)])

    def _build_layers(self, activation):
        self.layers = OrderedDict()
        for idx in range(1, self.hidden_layer_num + 1):
            self.layers['Affine' + str(idx)] = self._affine(idx)
            self.layers['Activation_function' + str(idx)] = ACTIVATIONS[activation]()
        idx = self.hidden_layer_num + 1
        self.layers['Affine' + str(idx)] = self._affine(idx)
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        """Scores before the softmax, shape (N, output_size)."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def _weight_decay(self):
        weight_decay = 0
        for idx in range(1, self.hidden_layer_num + 2):
            W = self.params['W' + str(idx)]
            weight_decay += 0.5 * self.weight_decay_lambda * np.sum(W ** 2)
        return weight_decay

    def loss(self, x, t):
        """Cross-entropy loss plus the weight-decay penalty."""
        y = self.predict(x)
        return self.last_layer.forward(y, t) + self._weight_decay()

    def accuracy(self, x, t):
        """Share of ``x`` classified as ``t`` (indices or one-hot), in one batch (test mode)."""
        return one_batch_accuracy(self.predict(x), t)

    def _param_keys(self):
        for idx in range(1, self.hidden_layer_num + 2):
            yield 'W' + str(idx)
            yield 'b' + str(idx)
            if 'BatchNorm' + str(idx) in self.layers:
                yield 'gamma' + str(idx)
                yield 'beta' + str(idx)

    def numerical_gradient(self, x, t):
        """Gradients ``W1, b1, ...`` by central differences (for gradient checks)."""
        loss_W = lambda W: self.loss(x, t)  # noqa: E731 (the book's form)
        return {key: numerical_gradient(loss_W, self.params[key]) for key in self._param_keys()}

    def _backward(self):
        backward_layers(self.layers.values(), self.last_layer.backward(1))  # Affine1: no dx

    def gradient(self, x, t):
        """Gradients ``W1, b1, ...`` by backpropagation (weight decay added to the dW)."""
        self.loss(x, t)
        self._backward()
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers['Affine' + str(idx)]
            grads['W' + str(idx)] = affine.dW + self.weight_decay_lambda * affine.W
            grads['b' + str(idx)] = affine.db
        return grads


class MultiLayerNetExtend(MultiLayerNet):
    """:class:`MultiLayerNet` with optional dropout and batch normalization.

    Each hidden layer is ``Affine - [BatchNorm] - activation - [Dropout]``.

    Parameters
    ----------
    input_size, hidden_size_list, output_size, activation, weight_init_std, weight_decay_lambda
        As :class:`MultiLayerNet`.
    use_dropout : bool
        Add a :class:`~fastconv.layers.Dropout` after each activation.
    dropout_ration : float
        Its ratio (the book's spelling).
    use_batchnorm : bool
        Add a :class:`~fastconv.layers.BatchNormalization` after each hidden affine layer;
        its ``gamma``/``beta`` join ``params``.
    """

    def __init__(self, input_size, hidden_size_list, output_size,
                 activation='relu', weight_init_std='relu', weight_decay_lambda=0,
                 use_dropout=False, dropout_ration=0.5, use_batchnorm=False):
        self._setup(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda)
        self.use_dropout = use_dropout
        self.use_batchnorm = use_batchnorm

        self.layers = OrderedDict()
        for idx in range(1, self.hidden_layer_num + 1):
            self.layers['Affine' + str(idx)] = self._affine(idx)
            if self.use_batchnorm:
                self.params['gamma' + str(idx)] = np.ones(hidden_size_list[idx - 1])
                self.params['beta' + str(idx)] = np.zeros(hidden_size_list[idx - 1])
                self.layers['BatchNorm' + str(idx)] = BatchNormalization(
                    self.params['gamma' + str(idx)], self.params['beta' + str(idx)])
            self.layers['Activation_function' + str(idx)] = ACTIVATIONS[activation]()
            if self.use_dropout:
                self.layers['Dropout' + str(idx)] = Dropout(dropout_ration)
        idx = self.hidden_layer_num + 1
        self.layers['Affine' + str(idx)] = self._affine(idx)
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        """Scores; ``train_flg`` switches dropout and batch statistics to training mode."""
        for key, layer in self.layers.items():
            if "Dropout" in key or "BatchNorm" in key:
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x, t, train_flg=False):
        """Cross-entropy loss plus the weight-decay penalty."""
        y = self.predict(x, train_flg)
        return self.last_layer.forward(y, t) + self._weight_decay()

    def numerical_gradient(self, x, t):
        """Gradients (with ``gamma``/``beta``) by central differences, in training mode."""
        loss_W = lambda W: self.loss(x, t, train_flg=True)  # noqa: E731 (the book's form)
        return {key: numerical_gradient(loss_W, self.params[key]) for key in self._param_keys()}

    def gradient(self, x, t):
        """Gradients by backpropagation, in training mode (weight decay added to the dW)."""
        self.loss(x, t, train_flg=True)
        self._backward()
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers['Affine' + str(idx)]
            W = self.params['W' + str(idx)]  # the book's: params, where MultiLayerNet's has layer.W
            grads['W' + str(idx)] = affine.dW + self.weight_decay_lambda * W
            grads['b' + str(idx)] = affine.db
            if self.use_batchnorm and idx != self.hidden_layer_num + 1:
                grads['gamma' + str(idx)] = self.layers['BatchNorm' + str(idx)].dgamma
                grads['beta' + str(idx)] = self.layers['BatchNorm' + str(idx)].dbeta
        return grads
