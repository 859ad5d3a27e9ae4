"""How far the networks' float64 steps are from what their matrix products alone cost.

``python -m bench.floor [--rounds R] [--nets NAME ...]``

A Trainer step (gradient + Adam + loss, batch 100) needs these GEMMs, here in the book's
im2col form (``step_gemms``):

- per Convolution: ``col @ W`` twice (the gradient's forward, then the loss after the
  update), ``col.T @ dout`` for dW, and ``dout @ W.T`` for dcol except at the first layer,
  whose dx nothing reads;
- per Affine: ``x @ W`` twice, ``x.T @ dout`` and ``dout @ W.T``.

Timed in one run, the rounds interleaved:

``book``      the NumPy twin of the book's step;
``fastconv``  fastconv's step (parallel kernels);
``gemms``     those GEMMs alone, one NumPy matmul each on preallocated operands (OpenBLAS
              with its own threads): no unfold, no activations, no update.

and ``peak``: the step's multiply-adds at the rate of a large DGEMM timed in the same run
(this machine's best GEMM rate). Each is printed in ms and as "times faster than the book",
beside ``bench.targets``' step targets (SimpleConvNet 1/15, DeepConvNet 1/12 of the book).
"""
import bench  # noqa: F401  (first: its OpenBLAS setting, before NumPy loads)
import argparse
import sys

import numpy as np

from fastconv.kernels._checks import out_size
from fastconv.layers import Affine, Convolution

from bench.common import interleaved_timings, timings
from bench.twins import NETS, make_data, make_runner

TARGETS = {"SimpleConvNet": 15, "DeepConvNet": 12}  # bench.targets rows 1, 2: x the book
PEAK_SIZE = 1200  # the DGEMM whose rate stands for the machine's best


def step_gemms(net_name, batch=100):
    """``(M, K, N, ta, tb)`` of every GEMM a float64 Trainer step of ``net_name`` needs, layer
    by layer: ``A (M, K) @ B (K, N)``, with ``ta`` / ``tb`` where the book passes that operand
    as a transposed view (``col.T``, ``W.T``; BLAS reads it in place)."""
    network = NETS[net_name]()  # only the shapes matter: its random weights are not read
    x, _ = make_data(batch, np.dtype(np.float64))
    network.predict(x)  # the layers keep their inputs: the GEMM shapes
    gemms = []
    for i, layer in enumerate(network._param_layers()):
        if isinstance(layer, Convolution):
            N, C, H, W = layer.x.shape
            FN, _, FH, FW = layer.W.shape
            out_h, out_w = out_size("step_gemms", H, W, FH, FW, layer.stride, layer.pad)
            M, K, F = N * out_h * out_w, C * FH * FW, FN
            # col @ col_W (col_W = W.reshape(FN, -1).T); dW = col.T @ dout; dcol = dout @ W2
            fwd, dW, dx = (M, K, F, False, True), (K, M, F, True, False), (M, F, K, False, False)
        elif isinstance(layer, Affine):
            M, K, F = layer.x.shape[0], layer.W.shape[0], layer.W.shape[1]
            # x @ W; dW = x.T @ dout; dx = dout @ W.T
            fwd, dW, dx = (M, K, F, False, False), (K, M, F, True, False), (M, F, K, False, True)
        else:
            raise TypeError(f"step_gemms: no GEMMs known for {type(layer).__name__}")
        # forward twice (gradient, then loss after the update), dW, and dx where a layer
        # before reads it
        gemms += [fwd, fwd, dW] + ([dx] if i > 0 else [])
    return gemms


def fma_count(gemms):
    """Multiply-adds of the GEMMs."""
    return sum(M * K * N for M, K, N, _, _ in gemms)


def gemm_runner(gemms, seed=0):
    """A function running the GEMMs once, each ``np.matmul`` into a preallocated output, the
    operands C-ordered or transposed views as ``step_gemms`` says. Operands of one shape are
    one array, as in the book (the forward's col is the dW GEMM's ``col.T``; W serves the
    forward and, transposed, dx), which also keeps DeepConvNet's operands to 0.5 GB."""
    rng = np.random.default_rng(seed)
    arrays = {}

    def array(key, shape):
        if (key, shape) not in arrays:
            arrays[key, shape] = rng.random(shape)
        return arrays[key, shape]

    ops = []
    for M, K, N, ta, tb in gemms:
        a = array("in", (K, M)).T if ta else array("in", (M, K))
        b = array("in", (N, K)).T if tb else array("in", (K, N))
        ops.append((a, b, array("out", (M, N))))

    def run():
        for a, b, out in ops:
            np.matmul(a, b, out=out)

    return run


def peak_rate(rounds=5, n=PEAK_SIZE):
    """Multiply-adds a second of an n x n x n DGEMM (median of ``rounds``)."""
    rng = np.random.default_rng(1)
    a, b, out = rng.random((n, n)), rng.random((n, n)), np.empty((n, n))
    return n ** 3 / float(np.median(timings(lambda: np.matmul(a, b, out=out), rounds, 1)))


def measure(net_name, rounds, batch=100):
    """Median seconds of the book's step, fastconv's step and the GEMMs alone, the rounds
    interleaved, and the peak-rate time: dict with ``book, fastconv, gemms, peak, fma``."""
    gemms = step_gemms(net_name, batch)
    funcs = [make_runner("numpy_im2col", net_name, np.float64, batch).step,
             make_runner("numba_parallel", net_name, np.float64, batch).step,
             gemm_runner(gemms)]
    times = interleaved_timings(funcs, rounds, warmup=2)
    result = {k: float(np.median(t)) for k, t in zip(("book", "fastconv", "gemms"), times)}
    result["fma"] = fma_count(gemms)
    result["peak"] = result["fma"] / peak_rate()
    return result


def report(net_name, r):
    book = r["book"]
    target = TARGETS.get(net_name)
    print(f"{net_name} float64: {r['fma'] / 1e6:.1f} M multiply-adds a step")
    for key, what in (("book", "the book's algorithm (NumPy)"),
                      ("fastconv", "fastconv, parallel"),
                      ("gemms", "its GEMMs alone (OpenBLAS, one matmul each)"),
                      ("peak", "its multiply-adds at the large-DGEMM rate")):
        print(f"  {key:9} {r[key] * 1e3:8.1f} ms  {book / r[key]:5.1f}x  {what}")
    if target:
        print(f"  {'target':9} {book / target * 1e3:8.1f} ms  {target:5.1f}x  the target")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (interleaved)")
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    args = parser.parse_args(argv)
    for net_name in args.nets:
        rounds = args.rounds if net_name == "SimpleConvNet" else max(3, args.rounds // 3)
        report(net_name, measure(net_name, rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
