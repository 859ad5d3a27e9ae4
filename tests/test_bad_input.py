"""Each bad input raises ValueError/TypeError naming the argument and the sizes."""
import numpy as np
import pytest

from fastconv.kernels import activation, conv, pooling
from fastconv.layers import Affine, AvgPooling, Convolution, Pooling, Relu
from fastconv.util import col2im, im2col

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
