"""What handing a network's fused convolutions to the threads in one go buys.

``python -m bench.stacking [--rounds R]``

``fusion.forward_layers`` / ``backward_layers`` give several fused runs in a row (DeepConvNet's
six Convolution -> Relu [-> Pooling] runs) to the worker threads at once, each thread taking
its samples through all of them (``conv.conv_relu_stack_forward`` / ``_backward``). This
times DeepConvNet Trainer steps (gradient + Adam + loss, batch 100, parallel kernels) in
float64 and in float32 mode two ways, the rounds interleaved:

``stacked``     as the networks run;
``one_by_one``  the walkers held to one fused run per hand-over (as before session 6): the
                same kernels, the same numbers, a hand-over to the threads per run.

It prints the median step of each and the ratio ``one_by_one / stacked`` of the same run.
"""
import fastconv  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads BLAS)
import argparse
import contextlib

import numpy as np

from fastconv import fusion

from bench.common import interleaved_timings
from bench.twins import make_runner


@contextlib.contextmanager
def one_run_at_a_time():
    """The walkers fuse as usual but hand one run at a time to the threads."""
    forward_run, backward_run = fusion._forward_run, fusion._backward_run
    fusion._forward_run = lambda *args: forward_run(*args)[:1]
    fusion._backward_run = lambda *args: backward_run(*args)[:1]
    try:
        yield
    finally:
        fusion._forward_run, fusion._backward_run = forward_run, backward_run


def measure(dtype, rounds, net="DeepConvNet"):
    """``(stacked, one_by_one)`` median step seconds of ``net`` in ``dtype``."""
    stacked = make_runner("numba_parallel", net, dtype, 100).step
    single = make_runner("numba_parallel", net, dtype, 100).step

    def one_by_one():
        with one_run_at_a_time():
            single()

    times = interleaved_timings([stacked, one_by_one], rounds, warmup=2)
    return tuple(float(np.median(t)) for t in times)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.stacking", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="steps of each (default 30)")
    args = parser.parse_args(argv)
    print(f"DeepConvNet Trainer step, batch 100, median of {args.rounds} interleaved rounds")
    for dtype in ("float64", "float32"):
        stacked, single = measure(dtype, args.rounds)
        print(f"  {dtype}: stacked {stacked * 1e3:.1f} ms, one_by_one {single * 1e3:.1f} ms, "
              f"one_by_one / stacked x{single / stacked:.2f}", flush=True)


if __name__ == "__main__":
    main()
