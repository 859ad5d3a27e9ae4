"""The book's convnet classes as its own files define them, on fastconv's fused passes.

``python -m fastconv run`` (:mod:`fastconv.dropin`) puts these in place of the classes of the
book's own ``ch07/simple_convnet.py`` and ``ch08/deep_convnet.py``. They run what
:class:`fastconv.models.SimpleConvNet` and :class:`fastconv.models.DeepConvNet` run and differ
from them only where the book's files behave differently:

* the constructors take the book's arguments only (no ``dtype``);
* ``accuracy`` skips a last partial batch but still divides by the full count;
* ``load_params`` keeps the arrays of the file as they are (dtype included) and checks no
  keys or shapes (the file is still read without running code from it);
* the weight sizes and He scales come from the book's formulas (SimpleConvNet: true
  division; DeepConvNet: fan-ins written out for the default arguments).
"""
import numpy as np

from . import deep_convnet, simple_convnet
from ._params import load_params_file

__all__ = ["SimpleConvNet", "DeepConvNet", "book_accuracy"]


def book_accuracy(predict, x, t, batch_size):
    """The book's ``accuracy``: ``int(N / batch_size)`` whole batches, divided by ``N``."""
    if t.ndim != 1:
        t = np.argmax(t, axis=1)
    acc = 0.0
    for i in range(int(x.shape[0] / batch_size)):
        tx = x[i * batch_size:(i + 1) * batch_size]
        tt = t[i * batch_size:(i + 1) * batch_size]
        acc += np.sum(np.argmax(predict(tx), axis=1) == tt)
    return acc / x.shape[0]


class _BookParams:
    def load_params(self, file_name="params.pkl"):
        """Load the book's params file; its arrays replace ``params`` as they are."""
        for key, val in load_params_file(file_name).items():
            self.params[key] = val
        self._bind_params()


class SimpleConvNet(_BookParams, simple_convnet.SimpleConvNet):
    """The book's ch07 ``SimpleConvNet`` (see :class:`fastconv.models.SimpleConvNet`)."""

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param={'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1},
                 hidden_size=100, output_size=10, weight_init_std=0.01):
        super().__init__(input_dim, conv_param, hidden_size, output_size, weight_init_std)

    @staticmethod
    def _pool_output_size(input_dim, conv_param):
        conv_output_size = (input_dim[1] - conv_param['filter_size'] + 2 * conv_param['pad']) \
            / conv_param['stride'] + 1
        return int(conv_param['filter_num'] * (conv_output_size / 2) * (conv_output_size / 2))

    def accuracy(self, x, t, batch_size=100):
        return book_accuracy(self.predict, x, t, batch_size)


class DeepConvNet(_BookParams, deep_convnet.DeepConvNet):
    """The book's ch08 ``DeepConvNet`` (see :class:`fastconv.models.DeepConvNet`)."""

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param_1={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_2={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_3={'filter_num': 32, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_4={'filter_num': 32, 'filter_size': 3, 'pad': 2, 'stride': 1},
                 conv_param_5={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_6={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 hidden_size=50, output_size=10):
        super().__init__(input_dim, conv_param_1, conv_param_2, conv_param_3, conv_param_4,
                         conv_param_5, conv_param_6, hidden_size, output_size)

    @staticmethod
    def _fan_ins(input_dim, conv_params, hidden_size):
        return [1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3, 32 * 3 * 3, 64 * 3 * 3,
                64 * 4 * 4, hidden_size], 64 * 4 * 4

    def accuracy(self, x, t, batch_size=100):
        return book_accuracy(lambda tx: self.predict(tx, train_flg=False), x, t, batch_size)
