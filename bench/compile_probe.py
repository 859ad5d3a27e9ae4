"""Child process of the JIT compile-time benchmark: time the first call of each layer.

``python -m bench.compile_probe [--smoke]`` prints one JSON line: ``import_s`` (importing
fastconv's layers), ``first_call_s`` (per step: compiling its kernels, or loading them from
the on-disk cache, plus one tiny run) and ``total_s``. bench/test_compile.py runs it with
``NUMBA_CACHE_DIR`` pointing at an empty directory (cold) or a filled one (cached). It goes
through the book's API (util, layers), so it follows whatever kernels those call.
"""
import json
import sys
import time


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    start = time.perf_counter()
    import numpy as np
    from fastconv import layers, util
    import_s = time.perf_counter() - start
    first_call_s = {}

    def timed(name, func, *args):
        t = time.perf_counter()
        result = func(*args)
        first_call_s[name] = time.perf_counter() - t
        return result

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8))
    col = timed("im2col", util.im2col, x, 3, 3, 1, 1)
    if "--smoke" not in argv:
        timed("col2im", util.col2im, col, x.shape, 3, 3, 1, 1)
        # a first layer (3 channels) and a deeper one (16), as in the book's networks
        for C in (3, 16):
            xc = rng.standard_normal((2, C, 8, 8))
            conv = layers.Convolution(rng.standard_normal((4, C, 3, 3)), np.zeros(4), 1, 1)
            out = timed(f"Convolution C={C} forward", conv.forward, xc)
            timed(f"Convolution C={C} backward", conv.backward, np.ones_like(out))
        for layer in (layers.Pooling(2, 2, 2), layers.AvgPooling(2, 2, 2), layers.Relu()):
            name = type(layer).__name__
            out = timed(f"{name} forward", layer.forward, x)
            timed(f"{name} backward", layer.backward, np.ones_like(out))
    print(json.dumps({"import_s": import_s, "first_call_s": first_call_s,
                      "total_s": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
