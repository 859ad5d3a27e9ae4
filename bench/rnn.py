"""The recurrent layer's kernel against a plain NumPy time loop.

``python -m bench.rnn [--rounds R] [--steps T] [--features n] [--units u] [--threads N]``
times, on one (T, n) sequence with u units (default (1000, 64) and 128, tanh, float64):

* forward: ``kernels.recurrent.rnn_forward`` against ``naive.numpy_rnn_forward`` (the input
  terms of all steps in one matrix product, then one matrix-vector product per step);
* forward + backward: the same plus ``rnn_backward`` against ``naive.numpy_rnn_backward``
  (BPTT one vector-matrix product per step, then three matrix products).

The four contenders run with their rounds interleaved, and the script prints the medians and
the ratios NumPy / kernel. The kernel is serial (the time loop is); NumPy's matrix products
use BLAS with its own threads unless ``--threads`` limits them (with threadpoolctl).
"""
import argparse

import numpy as np

import naive
from bench.common import interleaved_timings, threads
from fastconv.kernels.recurrent import rnn_backward, rnn_forward


def problem(T, n, units, seed=0):
    """x, U, W, h0 and an upstream gradient, scaled so that tanh does not saturate."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, n))
    U = rng.standard_normal((units, n)) / np.sqrt(n)
    W = rng.standard_normal((units, units)) * 0.5 / np.sqrt(units)
    h0 = np.zeros(units)
    dout = rng.standard_normal((T, units))
    return x, U, W, h0, dout


def contenders(x, U, W, h0, dout, activation):
    def kernel_forward():
        return rnn_forward(x, U, W, h0, activation)

    def numpy_forward():
        return naive.numpy_rnn_forward(x, U, W, h0, activation)

    def kernel_both():
        return rnn_backward(x, U, W, h0, kernel_forward(), dout, activation)

    def numpy_both():
        return naive.numpy_rnn_backward(x, U, W, h0, numpy_forward(), dout, activation)

    return kernel_forward, numpy_forward, kernel_both, numpy_both


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS (and Numba) threads; default: as they are")
    args = parser.parse_args(argv)
    arrays = problem(args.steps, args.features, args.units)
    kf, nf, kb, nb = contenders(*arrays, args.activation)
    # the two paths compute the same numbers (up to rounding) before either is timed
    diff_h = np.abs(kf() - nf()).max()
    diff_g = max(np.abs(a - b).max() for a, b in zip(kb(), nb()))
    print(f"sequence ({args.steps}, {args.features}), {args.units} units, "
          f"{args.activation}, float64; {args.rounds} rounds, interleaved")
    print(f"max |kernel - NumPy|: states {diff_h:.1e}, gradients {diff_g:.1e}")
    if args.threads is None:
        times = interleaved_timings([kf, nf, kb, nb], args.rounds)
        where = "BLAS threads as they are"
    else:
        with threads(args.threads) as limit:
            times = interleaved_timings([kf, nf, kb, nb], args.rounds)
        where = f"BLAS threads: {limit}"
    k_f, n_f, k_b, n_b = (float(np.median(t)) * 1e3 for t in times)
    print(f"({where}; the kernel is serial)")
    print(f"forward:            kernel {k_f:8.2f} ms   NumPy {n_f:8.2f} ms   "
          f"NumPy / kernel {n_f / k_f:5.2f}")
    print(f"forward + backward: kernel {k_b:8.2f} ms   NumPy {n_b:8.2f} ms   "
          f"NumPy / kernel {n_b / k_b:5.2f}")


if __name__ == "__main__":
    main()
