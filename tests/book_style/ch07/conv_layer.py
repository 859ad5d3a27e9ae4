# coding: utf-8
# Convolution layer forward/backward checked against the definition (book-style script).
import sys, os
sys.path.append(os.pardir)  # 親ディレクトリのファイルをインポートするための設定
import numpy as np
from common.layers import *
from common.util import im2col

print("argv:", sys.argv[1:])
print("common.layers:", Convolution.__module__)

np.random.seed(0)
x = np.random.randn(2, 3, 7, 7)
W = np.random.randn(4, 3, 3, 3)
b = np.random.randn(4)
conv = Convolution(W, b, stride=1, pad=1)
out = conv.forward(x)
dout = np.random.randn(*out.shape)
dx = conv.backward(dout)

# the same by the definition: a sum over each 3x3 window of the zero-padded input
x_pad = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)], 'constant')
out_ref = np.zeros((2, 4, 7, 7))
dW_ref = np.zeros_like(W)
dx_pad = np.zeros_like(x_pad)
for i in range(7):
    for j in range(7):
        window = x_pad[:, :, i:i + 3, j:j + 3]
        out_ref[:, :, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3])) + b
        dW_ref += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
        dx_pad[:, :, i:i + 3, j:j + 3] += np.tensordot(dout[:, :, i, j], W, axes=([1], [0]))

errors = {
    'out': np.max(np.abs(out - out_ref)),
    'dx': np.max(np.abs(dx - dx_pad[:, :, 1:-1, 1:-1])),
    'dW': np.max(np.abs(conv.dW - dW_ref)),
    'db': np.max(np.abs(conv.db - dout.sum(axis=(0, 2, 3)))),
}
print("im2col:", im2col(x, 3, 3, stride=1, pad=1).shape)
for key, err in errors.items():
    print(key + " max error:", err)
if max(errors.values()) > 1e-10:
    sys.exit("conv_layer: MISMATCH")
print("conv_layer: OK")
