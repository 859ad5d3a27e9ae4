"""fastconv's convolution paths vs the book, for every convolution of the book's networks.

``python -m bench.conv_paths [--rounds R]`` prints, per layer shape at batch 100 in float64,
the best-of-R forward and backward milliseconds (rounds interleaved) of every path in
``kernels.conv._PATHS`` (direct loops, per-sample BLAS through NumPy or from Numba, block
GEMM) and of the book's algorithm. ``kernels.conv.conv_path`` (which
path ``Convolution`` takes) is set from this table.
"""
import argparse

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


PATHS = conv._PATHS


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.conv_paths", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print("| layer | K = C*FH*FW | " + " | ".join(f"{p} fwd / bwd ms" for p in PATHS)
          + " | book fwd / bwd ms | conv_path |")
    print("| --- | ---: |" + " ---: |" * (len(PATHS) + 1) + " --- |")
    for name, xs, ws, pad in LAYERS:
        x = rng.standard_normal(xs)
        W = 0.1 * rng.standard_normal(ws)
        b = rng.standard_normal(ws[0])
        dout = rng.standard_normal(conv.conv_forward_gemm(x, W, b, 1, pad).shape)
        ref = naive.book_conv_forward(x, W, b, 1, pad)
        funcs = []
        for fwd, bwd in PATHS.values():
            funcs += [lambda fwd=fwd: fwd(x, W, b, 1, pad),
                      lambda bwd=bwd: bwd(dout, x, W, 1, pad)]
        times = [min(t) * 1e3 for t in interleaved_timings(funcs, args.rounds)]
        book = (min(timings(lambda: naive.book_conv_forward(x, W, b, 1, pad),
                            max(3, args.rounds // 3))) * 1e3,
                min(timings(lambda: naive.book_conv_backward(dout, x, W, ref[1], ref[2], 1, pad),
                            max(3, args.rounds // 3))) * 1e3)
        cells = [(times[2 * i], times[2 * i + 1]) for i in range(len(PATHS))] + [book]
        K = ws[1] * ws[2] * ws[3]
        print(f"| {name} | {K} | " + " | ".join(f"{f:.1f} / {g:.1f}" for f, g in cells)
              + f" | {conv.conv_path(xs, ws)} |", flush=True)


if __name__ == "__main__":
    main()
