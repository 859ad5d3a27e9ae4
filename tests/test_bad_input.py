"""Each bad input raises ValueError/TypeError naming the argument and the sizes."""
import io
import pickle

import numpy as np
import pytest

from conftest import hide_module
from fastconv import dropin
from fastconv._safeio import safe_unpickle
from fastconv.functions import cross_entropy_error
from fastconv.kernels import activation, conv, pooling
from fastconv.layers import (Affine, AvgPooling, BatchNormalization, Convolution, Dropout,
                             Pooling, Relu, Sigmoid, SoftmaxWithLoss)
from fastconv.models import DeepConvNet, SimpleConvNet
from fastconv.plots import plot_accuracy, plot_loss
from fastconv.util import col2im, im2col, shuffle_dataset

x4 = np.zeros((2, 3, 8, 8))
W = np.zeros((4, 3, 3, 3))
b = np.zeros(4)


def _conv_forward(x=x4, W=W, b=b, stride=1, pad=0):
    return Convolution(W, b, stride, pad).forward(x)


def _conv_backward_with(dout):
    layer = Convolution(W, b, 1, 1)
    layer.forward(x4)
    return layer.backward(dout)


def _pool_backward_with(dout):
    layer = Pooling(2, 2, 2)
    layer.forward(x4)
    return layer.backward(dout)


def _after_forward(layer, x, *args):
    layer.forward(x, *args)
    return layer


def _softmax_loss(x, t):
    return SoftmaxWithLoss().forward(x, t)


def _bn(D=4, gamma=None, **kwargs):
    return BatchNormalization(np.ones(D) if gamma is None else gamma, np.zeros(D), **kwargs)


logits = np.zeros((2, 10))

CASES = [
    ("im2col 3-D input", lambda: im2col(np.zeros((3, 8, 8)), 3, 3), ValueError,
     ["input_data", "4-D", "(3, 8, 8)"]),
    ("conv x 3-D", lambda: _conv_forward(x=np.zeros((3, 8, 8))), ValueError, ["x", "(3, 8, 8)"]),
    ("conv W 2-D", lambda: _conv_forward(W=np.zeros((4, 27))), ValueError, ["W", "(4, 27)"]),
    ("channel mismatch", lambda: _conv_forward(W=np.zeros((4, 2, 3, 3))), ValueError,
     ["3 channels", "expects 2"]),
    ("stride 0", lambda: _conv_forward(stride=0), ValueError, ["stride", ">= 1", "0"]),
    ("pad -1", lambda: _conv_forward(pad=-1), ValueError, ["pad", ">= 0", "-1"]),
    ("stride float", lambda: im2col(x4, 3, 3, stride=1.5), TypeError, ["stride", "1.5"]),
    ("filter larger than input", lambda: _conv_forward(W=np.zeros((4, 3, 11, 3)), pad=1),
     ValueError, ["11x3", "10x10"]),
    ("im2col window too large", lambda: im2col(x4, 9, 9), ValueError, ["9x9", "8x8"]),
    ("bias size", lambda: _conv_forward(b=np.zeros(5)), ValueError, ["b", "(4,)", "(5,)"]),
    ("col2im col shape", lambda: col2im(np.zeros((10, 27)), (2, 3, 8, 8), 3, 3), ValueError,
     ["col", "(10, 27)", "(72, 27)"]),
    ("col2im input_shape", lambda: col2im(np.zeros((72, 27)), (2, 3, 8), 3, 3), ValueError,
     ["input_shape", "(2, 3, 8)"]),
    ("conv dout shape", lambda: _conv_backward_with(np.zeros((2, 4, 7, 8))), ValueError,
     ["dout", "(2, 4, 8, 8)", "(2, 4, 7, 8)"]),
    ("pool dout shape", lambda: _pool_backward_with(np.zeros((2, 3, 4, 5))), ValueError,
     ["dout", "(2, 3, 4, 4)", "(2, 3, 4, 5)"]),
    ("pool 3-D input", lambda: Pooling(2, 2).forward(np.zeros((3, 8, 8))), ValueError,
     ["x", "(3, 8, 8)"]),
    ("pool pad too large", lambda: Pooling(2, 2, 2, 2).forward(x4), ValueError,
     ["pad", "half", "2x2"]),
    ("avgpool window too large", lambda: AvgPooling(9, 2).forward(x4), ValueError,
     ["pool_h", "9x2", "8x8"]),
    ("relu dout shape", lambda: activation.relu_backward(np.zeros(3), np.zeros(4, bool)),
     ValueError, ["dout", "(4,)", "(3,)"]),
    ("affine feature mismatch", lambda: Affine(np.zeros((5, 2)), np.zeros(2)).forward(x4),
     ValueError, ["192", "(5, 2)"]),
    ("string array", lambda: im2col(np.array([[[["a"]]]]), 1, 1), TypeError, ["input_data"]),
    ("maxpool arg_max size", lambda: pooling.maxpool_backward(np.zeros((2, 3, 4, 4)),
                                                              np.zeros(5, int), x4.shape, 2, 2),
     ValueError, ["arg_max", "5"]),
    ("direct conv dout", lambda: conv.conv_backward_direct(np.zeros((1,)), x4, W), ValueError,
     ["dout", "(1,)"]),
    ("affine dout shape", lambda: _after_forward(Affine(np.zeros((192, 2)), np.zeros(2)),
                                                 x4).backward(np.zeros((2, 3))),
     ValueError, ["dout", "(2, 2)", "(2, 3)"]),
    ("maxpool layout", lambda: pooling.maxpool_forward(x4, 2, 2, layout="flat"), ValueError,
     ["layout", "'flat'"]),
    ("maxpool x_shape", lambda: pooling.maxpool_backward(np.zeros((2, 3, 4, 4)),
                                                         np.zeros(96, int), (2, 3, 8), 2, 2),
     ValueError, ["x_shape", "(2, 3, 8)"]),
    ("avgpool x_shape", lambda: pooling.avgpool_backward(np.zeros((2, 3, 4, 4)), (3, 8, 8),
                                                         2, 2), ValueError,
     ["x_shape", "(3, 8, 8)"]),
    ("avgpool dout shape", lambda: pooling.avgpool_backward(np.zeros((2, 3, 4, 5)), x4.shape,
                                                            2, 2), ValueError,
     ["dout", "(2, 3, 4, 4)", "(2, 3, 4, 5)"]),
    ("sigmoid dout shape", lambda: _after_forward(Sigmoid(), np.zeros((2, 3))).backward(
        np.zeros(3)), ValueError, ["dout", "(2, 3)", "(3,)"]),
    ("sigmoid backward first", lambda: Sigmoid().backward(np.zeros(3)), ValueError,
     ["forward"]),
    ("softmax label = classes", lambda: _softmax_loss(logits, np.array([3, 10])), ValueError,
     ["t", "label 10", "10 classes"]),
    ("softmax label < -classes", lambda: _softmax_loss(logits, np.array([-11, 0])),
     ValueError, ["t", "label -11", "10 classes"]),
    ("softmax labels too few", lambda: _softmax_loss(logits, np.array([3])), ValueError,
     ["t", "2 rows", "(1,)"]),
    ("softmax labels as a column", lambda: _softmax_loss(logits, np.array([[3], [1]])),
     ValueError, ["t", "(2, 1)"]),
    ("softmax float labels", lambda: _softmax_loss(logits, np.array([3.0, 1.0])), TypeError,
     ["t", "float64"]),
    ("softmax one-hot shape", lambda: _softmax_loss(logits, np.zeros(20)), ValueError,
     ["t", "(2, 10)", "(20,)"]),
    ("softmax 1-D x", lambda: _softmax_loss(np.zeros(10), np.array([3])), ValueError,
     ["x", "2-D", "(10,)"]),
    ("cross entropy label", lambda: cross_entropy_error(np.full(3, 1 / 3), np.array(3)),
     ValueError, ["t", "label 3", "3 classes"]),
    ("dropout ratio", lambda: Dropout(1.5), ValueError, ["dropout_ratio", "1.5"]),
    ("dropout backward first", lambda: Dropout().backward(np.zeros(3)), ValueError,
     ["forward"]),
    ("dropout dout shape", lambda: _after_forward(Dropout(), np.zeros((2, 3))).backward(
        np.zeros((1, 3))), ValueError, ["dout", "(2, 3)", "(1, 3)"]),
    ("batchnorm 1-D x", lambda: _bn().forward(np.zeros(4)), ValueError, ["x", "(4,)"]),
    ("batchnorm gamma size", lambda: _bn(gamma=np.ones(1)).forward(np.zeros((3, 4))),
     ValueError, ["4 activations", "gamma", "(1,)"]),
    ("batchnorm running_mean size", lambda: _bn(running_mean=np.zeros(3),
                                                running_var=np.ones(3)).forward(
        np.zeros((3, 2, 1, 2)), False), ValueError, ["4 activations", "running_mean", "(3,)"]),
    ("batchnorm dout shape", lambda: _after_forward(_bn(), np.zeros((3, 4))).backward(
        np.zeros((3, 2, 2))), ValueError, ["dout", "(3, 4)", "(3, 2, 2)"]),
]


@pytest.mark.parametrize("name, call, exc, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_message(name, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


def test_relu_backward_requires_forward_shape():
    layer = Relu()
    layer.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dout"):
        layer.backward(np.zeros((3, 2)))


@pytest.mark.parametrize("H, F, stride, pad, expected", [
    (28, 5, 1, 0, 24), (28, 5, 2, 0, 12), (7, 3, 2, 1, 4), (8, 3, 3, 0, 2), (5, 5, 1, 0, 1)])
def test_output_size_floors_like_pytorch(H, F, stride, pad, expected):
    out = Convolution(np.zeros((1, 1, F, F)), np.zeros(1), stride, pad).forward(
        np.zeros((1, 1, H, H)))
    assert out.shape == (1, 1, expected, expected)
    assert im2col(np.zeros((1, 1, H, H)), F, F, stride, pad).shape == (expected ** 2, F * F)


def test_negative_label_picks_from_the_end_as_in_the_book():
    """NumPy indexing, as the book's ``y[np.arange(batch_size), t]``: -1 is the last class."""
    x = np.random.default_rng(0).standard_normal((3, 10))
    neg, pos = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert neg.forward(x, np.array([-1, 2, -10])) == pos.forward(x, np.array([9, 2, 0]))
    np.testing.assert_array_equal(neg.backward(), pos.backward())


class _PersistentPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return "array-0" if isinstance(obj, np.ndarray) else None


def _persistent_pickle():
    buffer = io.BytesIO()
    _PersistentPickler(buffer).dump({"W1": np.zeros(3)})
    buffer.seek(0)
    return buffer


OTHER_CASES = [
    ("shuffle_dataset sizes", lambda: shuffle_dataset(np.zeros((4, 2)), np.zeros(3)),
     ValueError, ["x has 4", "t has 3"]),
    ("relu_backward list", lambda: activation.relu_backward([0.0], np.zeros(1, bool)),
     TypeError, ["dout", "list"]),
    ("SimpleConvNet input too small", lambda: SimpleConvNet(input_dim=(1, 5, 5)), ValueError,
     ["SimpleConvNet", "(1, 5, 5)", "too small"]),
    ("DeepConvNet input too small", lambda: DeepConvNet(input_dim=(1, 1, 1)), ValueError,
     ["DeepConvNet", "(1, 1, 1)", "after convolution 2"]),
    ("persistent ids", lambda: safe_unpickle(_persistent_pickle()), pickle.UnpicklingError,
     ["persistent"]),
    ("run_script missing", lambda: dropin.run_script("no/such/script.py"), FileNotFoundError,
     ["no such script", "no/such/script.py"]),
]


@pytest.mark.parametrize("name, call, exc, words", OTHER_CASES, ids=[c[0] for c in OTHER_CASES])
def test_other_bad_input_message(name, call, exc, words):
    test_bad_input_message(name, call, exc, words)


def test_plot_accuracy_needs_one_x_per_point(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="2 train but 1 test"):
        plot_accuracy([0.1, 0.2], [0.1], tmp_path / "a.png")
    with pytest.raises(ValueError, match="3 epochs for 2 points"):
        plot_accuracy([0.1, 0.2], [0.1, 0.3], tmp_path / "a.png", epochs=[0, 1, 2])


def test_plots_without_matplotlib_say_how_to_install(monkeypatch, tmp_path):
    hide_module(monkeypatch, "matplotlib")
    with pytest.raises(ImportError, match=r"pip install 'fastconv\[plots\]'"):
        plot_loss([1.0, 0.5], tmp_path / "loss.png")
