"""The book's ``ch08/deep_convnet.py`` on fastconv's layers."""
import numpy as np

from ..fusion import forward_layers
from ..layers import Affine, Convolution, Dropout, Pooling, Relu, SoftmaxWithLoss
from ._params import ParamsIOMixin
from .simple_convnet import backprop, batched_accuracy

__all__ = ["DeepConvNet"]

# indices in self.layers of the layers holding W1..W8 (the book's tuple)
_PARAM_LAYER_IDX = (0, 2, 5, 7, 10, 12, 15, 18)


class DeepConvNet(ParamsIOMixin):
    """The book's deep network for MNIST (about 99.4 % test accuracy)::

        conv - relu - conv- relu - pool -
        conv - relu - conv- relu - pool -
        conv - relu - conv- relu - pool -
        affine - relu - dropout - affine - dropout - softmax

    Parameters
    ----------
    input_dim : tuple of int
        (channels, height, width) of one sample.
    conv_param_1 ... conv_param_6 : dict
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of the six convolutions (the
        fourth has pad 2, so 14x14 becomes 16x16 and the last pooling gives 4x4).
    hidden_size, output_size : int
        Units of the hidden affine layer and classes.
    dtype : dtype, keyword-only, default float64
        dtype of the parameters (drawn in float64 in the book's order, then cast).

    Notes
    -----
    He initialisation ``sqrt(2 / fan_in)`` as the book. The book hard-codes the fan-ins
    ``[1*3*3, 16*3*3, 16*3*3, 32*3*3, 32*3*3, 64*3*3, 64*4*4, hidden_size]``; here they are
    computed from the arguments, which gives exactly those numbers for the defaults and lets
    smaller inputs (e.g. gradient checks) work.
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param_1={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_2={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_3={'filter_num': 32, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_4={'filter_num': 32, 'filter_size': 3, 'pad': 2, 'stride': 1},
                 conv_param_5={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_6={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 hidden_size=50, output_size=10, *, dtype=np.float64):
        conv_params = [conv_param_1, conv_param_2, conv_param_3,
                       conv_param_4, conv_param_5, conv_param_6]
        pre_node_nums, flat_size = self._fan_ins(input_dim, conv_params, hidden_size)
        weight_init_scales = np.sqrt(2.0 / np.array(pre_node_nums))  # recommended for ReLU

        self.params = {}
        pre_channel_num = input_dim[0]
        for idx, conv_param in enumerate(conv_params):
            self.params['W' + str(idx + 1)] = weight_init_scales[idx] * np.random.randn(
                conv_param['filter_num'], pre_channel_num,
                conv_param['filter_size'], conv_param['filter_size'])
            self.params['b' + str(idx + 1)] = np.zeros(conv_param['filter_num'])
            pre_channel_num = conv_param['filter_num']
        self.params['W7'] = weight_init_scales[6] * np.random.randn(flat_size, hidden_size)
        self.params['b7'] = np.zeros(hidden_size)
        self.params['W8'] = weight_init_scales[7] * np.random.randn(hidden_size, output_size)
        self.params['b8'] = np.zeros(output_size)
        for key in self.params:
            self.params[key] = self.params[key].astype(dtype, copy=False)

        self.layers = []
        for idx, conv_param in enumerate(conv_params):
            self.layers.append(Convolution(self.params['W' + str(idx + 1)],
                                           self.params['b' + str(idx + 1)],
                                           conv_param['stride'], conv_param['pad']))
            self.layers.append(Relu())
            if idx % 2 == 1:
                self.layers.append(Pooling(pool_h=2, pool_w=2, stride=2))
        self.layers.append(Affine(self.params['W7'], self.params['b7']))
        self.layers.append(Relu())
        self.layers.append(Dropout(0.5))
        self.layers.append(Affine(self.params['W8'], self.params['b8']))
        self.layers.append(Dropout(0.5))

        self.last_layer = SoftmaxWithLoss()

    @staticmethod
    def _fan_ins(input_dim, conv_params, hidden_size):
        """(fan-ins of the eight weight layers, inputs of the first affine layer), computed
        from the arguments (the book hard-codes both for its default arguments)."""
        pre_node_nums = []
        channels, height, width = input_dim
        for idx, conv_param in enumerate(conv_params):
            size, pad, stride = conv_param['filter_size'], conv_param['pad'], conv_param['stride']
            pre_node_nums.append(channels * size * size)
            channels = conv_param['filter_num']
            height = (height + 2 * pad - size) // stride + 1
            width = (width + 2 * pad - size) // stride + 1
            if idx % 2 == 1:  # a 2x2 pooling follows every second convolution
                height, width = (height - 2) // 2 + 1, (width - 2) // 2 + 1
            if height < 1 or width < 1:
                raise ValueError(f"DeepConvNet: input {input_dim} is too small: nothing is "
                                 f"left after convolution {idx + 1}")
        flat_size = channels * height * width
        pre_node_nums += [flat_size, hidden_size]
        return pre_node_nums, flat_size

    def _param_layers(self):
        return [self.layers[i] for i in _PARAM_LAYER_IDX]

    def predict(self, x, train_flg=False):
        """Scores (before softmax); ``train_flg`` switches the dropout layers on. Each
        conv - relu - pool run and each conv - relu pair is one fused pass
        (``fusion.forward_layers``)."""
        return forward_layers(self.layers, x, train_flg)

    def loss(self, x, t):
        """Training loss (dropout on, as the book)."""
        y = self.predict(x, train_flg=True)
        return self.last_layer.forward(y, t)

    def accuracy(self, x, t, batch_size=100):
        """Share of correctly classified samples (dropout off), ``batch_size`` at a time."""
        return batched_accuracy(lambda tx: self.predict(tx, train_flg=False), x, t, batch_size)

    def gradient(self, x, t):
        """Gradients by backpropagation: dict ``W1..W8``, ``b1..b8``.

        The loss runs with dropout on, so two calls draw different masks.
        """
        # forward
        self.loss(x, t)

        return backprop(self.last_layer, self.layers, self._param_layers())
