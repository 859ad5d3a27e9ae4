# coding: utf-8
# Max pooling forward/backward checked against the definition (book-style script).
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common.layers import Pooling

np.random.seed(1)
x = np.random.randn(2, 3, 6, 6)
pool = Pooling(pool_h=2, pool_w=2, stride=2)
out = pool.forward(x)
dout = np.random.randn(*out.shape)
dx = pool.backward(dout)

out_ref = np.zeros((2, 3, 3, 3))
dx_ref = np.zeros_like(x)
for n in range(2):
    for c in range(3):
        for i in range(3):
            for j in range(3):
                window = x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
                out_ref[n, c, i, j] = window.max()
                k = np.argmax(window)  # the gradient goes to the maximum only
                dx_ref[n, c, 2 * i + k // 2, 2 * j + k % 2] = dout[n, c, i, j]

print("out shape:", out.shape)
err = max(np.max(np.abs(out - out_ref)), np.max(np.abs(dx - dx_ref)))
print("max error:", err)
if err > 1e-12:
    sys.exit("pooling_layer: MISMATCH")
print("pooling_layer: OK")
