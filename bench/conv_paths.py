"""fastconv's convolution kernels against each other and the book, per layer and per step.

``python -m bench.conv_paths [--rounds R] [--steps]`` prints, for every convolution of the
book's networks at batch 100 in float64, the best-of-R forward and backward milliseconds
(rounds interleaved) of:

``layer``    what ``Convolution`` runs (``kernels.conv``: per-tap GEMMs where
             ``conv_taps.use_taps`` says so, else unfold + one GEMM per sample)
``unfold``   the same kernels with the per-tap GEMMs switched off
``direct``   the plain loops of ``conv.conv_forward_direct`` / ``conv_backward_direct``
``book``     the book's im2col algorithm (``tests/naive.py``)

``--steps`` also times whole DeepConvNet Trainer steps, float64 and float32 mode, with and
without the per-tap GEMMs, interleaved: what they buy a training step.
"""
import argparse
import contextlib

import numpy as np

import naive
from bench.common import interleaved_timings, timings
from fastconv.kernels import conv

# (name, x shape, W shape, pad): stride 1 everywhere in the book's networks
LAYERS = [("simple conv1", (100, 1, 28, 28), (30, 1, 5, 5), 0),
          ("deep conv1", (100, 1, 28, 28), (16, 1, 3, 3), 1),
          ("deep conv2", (100, 16, 28, 28), (16, 16, 3, 3), 1),
          ("deep conv3", (100, 16, 14, 14), (32, 16, 3, 3), 1),
          ("deep conv4", (100, 32, 14, 14), (32, 32, 3, 3), 2),
          ("deep conv5", (100, 32, 8, 8), (64, 32, 3, 3), 1),
          ("deep conv6", (100, 64, 8, 8), (64, 64, 3, 3), 1)]


@contextlib.contextmanager
def unfold_only():
    """The convolution kernels with the per-tap GEMMs switched off."""
    real = conv.use_taps
    conv.use_taps = lambda *args, **kwargs: False
    try:
        yield
    finally:
        conv.use_taps = real


def _unfolded(func):
    def run():
        with unfold_only():
            return func()
    return run


def layer_table(rounds):
    rng = np.random.default_rng(0)
    print("| layer | K = C*FH*FW | layer fwd / bwd ms | unfold | direct | book |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, xs, ws, pad in LAYERS:
        x = rng.standard_normal(xs)
        W = 0.1 * rng.standard_normal(ws)
        b = rng.standard_normal(ws[0])
        ref = naive.book_conv_forward(x, W, b, 1, pad)
        dout = rng.standard_normal(ref[0].shape)
        fwd = lambda: conv.conv_forward(x, W, b, 1, pad)  # noqa: E731
        bwd = lambda: conv.conv_backward(dout, x, W, 1, pad)  # noqa: E731
        funcs = [fwd, bwd, _unfolded(fwd), _unfolded(bwd),
                 lambda: conv.conv_forward_direct(x, W, b, 1, pad),
                 lambda: conv.conv_backward_direct(dout, x, W, 1, pad)]
        times = [min(t) * 1e3 for t in interleaved_timings(funcs, rounds)]
        book = [min(timings(f, max(3, rounds // 3))) * 1e3 for f in (
            lambda: naive.book_conv_forward(x, W, b, 1, pad),
            lambda: naive.book_conv_backward(dout, x, W, ref[1], ref[2], 1, pad))]
        cells = [times[0:2], times[2:4], times[4:6], book]
        print(f"| {name} | {ws[1] * ws[2] * ws[3]} | "
              + " | ".join(f"{f:.1f} / {g:.1f}" for f, g in cells) + " |", flush=True)


def step_table(rounds):
    from bench.twins import make_runner
    print("\n| DeepConvNet step | layer ms | unfold only ms | unfold / layer |")
    print("| --- | ---: | ---: | ---: |")
    for dtype in ("float64", "float32"):
        step = make_runner("numba_parallel", "DeepConvNet", dtype, 100).step
        t = interleaved_timings([step, _unfolded(step)], rounds, warmup=2)
        a, u = np.median(t[0]) * 1e3, np.median(t[1]) * 1e3
        print(f"| {dtype} | {a:.1f} | {u:.1f} | {u / a:.2f} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.conv_paths", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", action="store_true", help="also time DeepConvNet steps")
    args = parser.parse_args(argv)
    layer_table(args.rounds)
    if args.steps:
        step_table(args.rounds)


if __name__ == "__main__":
    main()
