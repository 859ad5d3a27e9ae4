"""Run every kernel under 1, 2 and 8 Numba threads and serially; print one digest per run.

Executed in a subprocess with NUMBA_NUM_THREADS=8 by test_threads.py (the thread pool size is
fixed when Numba starts).
"""
import hashlib
import json
import sys

import numpy as np

from fastconv import config
from fastconv.kernels import activation, conv, conv_taps, pooling
from fastconv.kernels.matmul import matmul
from fastconv.optimizer import Adam
from fastconv.util import col2im, im2col


def run_all():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 11, 10))
    W1 = rng.standard_normal((7, 3, 3, 3))
    W2 = rng.standard_normal((4, 3, 2, 2))
    b = rng.standard_normal(7)
    parts = []
    col = im2col(x, 3, 3, 1, 1)
    parts += [col, col2im(col, x.shape, 3, 3, 1, 1), col2im(im2col(x, 3, 3, 2, 0), x.shape,
                                                            3, 3, 2, 0)]
    out = conv.conv_forward_direct(x, W1, b, 1, 1)
    dout = rng.standard_normal(out.shape)
    parts += [out, *conv.conv_backward_direct(dout, x, W1, 1, 1)]
    parts += [conv.conv_forward_direct(x, W2, b[:4], 2, 1)]
    # the production kernels: 23 samples are 5 blocks, split over the threads
    xb = rng.standard_normal((23, 3, 9, 10))
    out = conv.conv_forward(xb, W1, b, 1, 1)
    doutb = rng.standard_normal(out.shape)
    parts += [out, *conv.conv_backward(doutb, xb, W1, 1, 1), conv.conv_forward(xb, W2, b[:4], 2, 0)]
    pooled, mask, idx = conv.conv_relu_forward(xb, W1, b, 1, 1, pool=True)
    dp = rng.standard_normal(pooled.shape)
    parts += [pooled, idx, mask, *conv.conv_relu_backward(dp, mask, xb, W1, 1, 1, idx=idx)]
    # 16 channels, 3x3, pad 1: the per-tap GEMMs of conv_taps
    xs = rng.standard_normal((23, 16, 16, 16))
    Ws = rng.standard_normal((5, 16, 3, 3))
    assert conv_taps.use_taps(xs.shape, Ws.shape, 1, 1, True)
    out = conv.conv_forward(xs, Ws, b[:5], 1, 1)
    parts += [out, *conv.conv_backward(rng.standard_normal(out.shape), xs, Ws, 1, 1)]
    pooled, mask, idx = conv.conv_relu_forward(xs, Ws, b[:5], 1, 1, pool=True)
    dp = rng.standard_normal(pooled.shape)
    parts += [pooled, idx, mask, *conv.conv_relu_backward(dp, mask, xs, Ws, 1, 1, idx=idx)]
    out, mask, _ = conv.conv_relu_forward(xs, Ws, b[:5], 1, 1)
    parts += [out, mask, *conv.conv_relu_backward(rng.standard_normal(out.shape), mask, xs, Ws,
                                                  1, 1)]
    a, c = rng.standard_normal((70, 40)), rng.standard_normal((70, 30))
    parts += [matmul(a, c, trans_a=True), matmul(a.T.copy(), c), matmul(c.T.copy(), a.T.copy(),
                                                                     trans_b=True)]
    for stride in (1, 2):  # overlapping and disjoint windows
        out, arg = pooling.maxpool_forward(x, 3, 3, stride, 1)
        g = rng.standard_normal(out.shape)
        parts += [out, arg, pooling.maxpool_backward(g, arg, x.shape, 3, 3, stride, 1)]
        out = pooling.avgpool_forward(x, 3, 3, stride, 1)
        parts += [out, pooling.avgpool_backward(g, x.shape, 3, 3, stride, 1)]
    out, arg = pooling.maxpool_forward(x, 2, 2, 2, 0)  # the book's 2x2, stride 2 kernel
    parts += [out, arg]
    _, idx = pooling.maxpool_forward(x, 2, 2, 2, 0, layout="plane")  # and its backward
    parts += [pooling.maxpool_backward(rng.standard_normal(out.shape), idx, x.shape, 2, 2, 2, 0)]
    params = {"W": rng.standard_normal(20000), "b": rng.standard_normal(7)}
    adam = Adam()
    for _ in range(2):  # fused Adam: parallel above optim.SERIAL_BELOW values, serial below
        adam.update(params, {"W": rng.standard_normal(20000), "b": rng.standard_normal(7)})
    parts += [params["W"], params["b"], adam.m["W"], adam.v["W"]]
    r, m = activation.relu_forward(x)
    parts += [r, m, activation.relu_backward(rng.standard_normal(x.shape), m)]
    digest = hashlib.sha256()
    for p in parts:
        digest.update(np.ascontiguousarray(p).tobytes())
    return digest.hexdigest()


if __name__ == "__main__":
    results = {}
    for n in (1, 2, 8):
        config.set_num_threads(n)
        results[f"parallel-{n}"] = run_all()
    config.set_parallel(False)
    results["serial"] = run_all()
    json.dump(results, sys.stdout)
