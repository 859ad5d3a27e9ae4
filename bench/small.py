"""Every public call of fastconv against the book's own code, from batch 1 to the book's 100.

``python -m bench.small [--rounds R] [--book DIR] [--out DIR] [--quick] [--only TEXT]``
``python -m bench.small --tune [--rounds R]``

The calls: every layer's forward and backward (Affine on the book's MLP shapes 784-50,
100-100 and 50-10; Relu, Sigmoid, Dropout and BatchNormalization on 100 units; SoftmaxWithLoss
on 10 classes; Convolution and Pooling on SimpleConvNet's first layers), the functions, each
optimizer's ``update`` on TwoLayerNet's parameters, ``numerical_gradient`` of a two-layer loss,
``im2col`` and ``col2im``, at batch 1, 3 and 100. Each row times the book's call and fastconv's
with their rounds interleaved in this one process (the order swapped every round), and judges
the median of the round-by-round ratios fastconv / book against 1.05.

Two more rows on ``Affine.forward`` (100, 784) x (784, 50):

* neighbour: fastconv's call right after a NumPy BLAS call of that size (``np.dot``), against
  its steady time (the same call after five of its own); target 1.5;
* idle: fastconv's call after an idle pause of 0.2 s, against the book's call after the same
  pause; target 1.5.

The book's modules come from a checkout (``--book DIR`` or ``$FASTCONV_BOOK``: the folder
holding ``common/``), else from ``tests/book_twin`` (a NumPy twin of the book's algorithms).
The table goes to ``bench/results/small.md`` and ``small.json`` (``--out`` elsewhere).

``--tune`` times the book's expressions against fastconv's kernels on a range of sizes and
writes the sizes below which the book's expression is as fast into the table of
:mod:`fastconv.sizes`, which the layers read.

OpenBLAS runs here with its default thread timeout (``bench`` sets a short one for its other
scripts; this one runs itself again without it), so the neighbour row sees what a user's
process sees.
"""
import bench  # noqa: F401  (first: the repository on sys.path)
import argparse
import collections
import importlib
import json
import os
import subprocess
import sys
import time
import types
import zlib

import numpy as np

from bench.envinfo import cpu_model

TARGET, NEIGHBOUR_TARGET, IDLE_TARGET = 1.05, 1.5, 1.5
BATCHES = (1, 3, 100)
RESULTS = os.path.join(bench.ROOT, "bench", "results")
MODULES = ("functions", "layers", "optimizer", "gradient", "util")

Case = collections.namedtuple("Case", "call shape make")  # make(side) -> a callable


def load_book(path=None):
    """``(label, namespace of the book's common modules)``: a checkout's, else the twin's."""
    where = path or os.environ.get("FASTCONV_BOOK")
    if where and os.path.isfile(os.path.join(where, "common", "layers.py")):
        label, folder = f"the book ({os.path.abspath(where)})", os.path.abspath(where)
    else:
        label, folder = "tests/book_twin (no book checkout given)", os.path.join(
            bench.ROOT, "tests", "book_twin")
    sys.path.insert(0, folder)
    try:
        mods = {m: importlib.import_module("common." + m) for m in MODULES}
    finally:
        sys.path.remove(folder)
    return label, types.SimpleNamespace(**mods)


def fastconv_side():
    mods = {m: importlib.import_module("fastconv." + m) for m in MODULES}
    return types.SimpleNamespace(**mods)


# ---------------------------------------------------------------------------------- cases ----
def _own(a, align=64):
    """A copy of ``a`` starting on a 64-byte boundary: each side gets its own parameters, and
    BLAS's speed on small products depends on where they start."""
    raw = np.empty(a.nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _affine(N, D, U, backward):
    rng = _rng("affine", N, D, U)
    W, b = rng.standard_normal((D, U)) * 0.01, rng.standard_normal(U) * 0.01
    x, dout = rng.standard_normal((N, D)), rng.standard_normal((N, U))

    def make(side):
        layer = side.layers.Affine(_own(W), _own(b))
        layer.forward(x)
        return (lambda: layer.backward(dout)) if backward else (lambda: layer.forward(x))
    return make


def _unit_layer(name, N, backward, units=100):
    # Relu, Sigmoid, Dropout, BatchNormalization on (N, units)
    rng = _rng(name, N)
    x, dout = rng.standard_normal((N, units)), rng.standard_normal((N, units))

    def make(side):
        cls = getattr(side.layers, name)
        layer = (cls(np.ones(units), np.zeros(units)) if name == "BatchNormalization"
                 else cls())
        layer.forward(x)
        if backward:
            return lambda: layer.backward(dout)
        return lambda: layer.forward(x)
    return make


def _softmax_with_loss(N, backward):
    rng = _rng("swl", N)
    x, t = rng.standard_normal((N, 10)), rng.integers(0, 10, N)

    def make(side):
        layer = side.layers.SoftmaxWithLoss()
        layer.forward(x, t)
        return (lambda: layer.backward()) if backward else (lambda: layer.forward(x, t))
    return make


def _convolution(N, backward):
    rng = _rng("conv", N)
    x = rng.standard_normal((N, 1, 28, 28))
    W, b = rng.standard_normal((30, 1, 5, 5)) * 0.01, np.zeros(30)
    dout = rng.standard_normal((N, 30, 24, 24))

    def make(side):
        layer = side.layers.Convolution(_own(W), _own(b))
        layer.forward(x)
        return (lambda: layer.backward(dout)) if backward else (lambda: layer.forward(x))
    return make


def _pooling(N, backward):
    rng = _rng("pool", N)
    x, dout = rng.standard_normal((N, 30, 24, 24)), rng.standard_normal((N, 30, 12, 12))

    def make(side):
        layer = side.layers.Pooling(2, 2, 2)
        layer.forward(x)
        return (lambda: layer.backward(dout)) if backward else (lambda: layer.forward(x))
    return make


def _function(name, N):
    rng = _rng("function", name, N)
    x, t = rng.standard_normal((N, 10)), rng.integers(0, 10, N)
    y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)

    def make(side):
        f = side.functions
        if name == "softmax":
            return lambda: f.softmax(x)
        if name == "cross_entropy_error":
            return lambda: f.cross_entropy_error(y, t)
        return lambda: getattr(f, name)(x)
    return make


def _im2col(N, inverse):
    rng = _rng("im2col", N)
    x = rng.standard_normal((N, 1, 28, 28))
    col = rng.standard_normal((N * 24 * 24, 25))

    def make(side):
        if inverse:
            return lambda: side.util.col2im(col, x.shape, 5, 5)
        return lambda: side.util.im2col(x, 5, 5)
    return make


def _mlp_params(sizes):
    rng = _rng("params", sizes)
    params, grads = {}, {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), 1):
        params[f"W{i}"], params[f"b{i}"] = rng.standard_normal((a, b)) * 0.01, np.zeros(b)
        grads[f"W{i}"], grads[f"b{i}"] = rng.standard_normal((a, b)), rng.standard_normal(b)
    return params, grads


def _optimizer(name, sizes):
    params, grads = _mlp_params(sizes)

    def make(side):
        opt = getattr(side.optimizer, name)()
        mine = {k: _own(v) for k, v in params.items()}
        return lambda: opt.update(mine, grads)
    return make


def _numerical_gradient(N):
    rng = _rng("numgrad", N)
    x, t = rng.standard_normal((N, 784)), rng.integers(0, 10, N)
    W1, W2 = rng.standard_normal((784, 50)) * 0.01, rng.standard_normal((50, 10)) * 0.1
    b1, b2 = np.zeros(50), np.zeros(10)

    def make(side):
        L = side.layers
        stack = [L.Affine(_own(W1), _own(b1)), L.Relu(), L.Affine(_own(W2), _own(b2))]
        last = L.SoftmaxWithLoss()

        def loss(_):
            h = x
            for layer in stack:
                h = layer.forward(h)
            return last.forward(h, t)
        return lambda: side.gradient.numerical_gradient(loss, stack[2].b)
    return make


def cases():
    out = []
    for N in BATCHES:
        for D, U in ((784, 50), (100, 100), (50, 10)):
            for bwd in (False, True):
                out.append(Case(f"Affine.{'backward' if bwd else 'forward'}",
                                f"({N},{D})x({D},{U})", _affine(N, D, U, bwd)))
        for name in ("Relu", "Sigmoid", "Dropout", "BatchNormalization"):
            for bwd in (False, True):
                out.append(Case(f"{name}.{'backward' if bwd else 'forward'}", f"({N},100)",
                                _unit_layer(name, N, bwd)))
        for bwd in (False, True):
            out.append(Case(f"SoftmaxWithLoss.{'backward' if bwd else 'forward'}", f"({N},10)",
                            _softmax_with_loss(N, bwd)))
        for bwd in (False, True):
            out.append(Case(f"Convolution.{'backward' if bwd else 'forward'}",
                            f"({N},1,28,28) 30x5x5", _convolution(N, bwd)))
            out.append(Case(f"Pooling.{'backward' if bwd else 'forward'}",
                            f"({N},30,24,24) 2x2", _pooling(N, bwd)))
        for name in ("softmax", "cross_entropy_error", "sigmoid", "relu"):
            out.append(Case(name, f"({N},10)", _function(name, N)))
        out.append(Case("im2col", f"({N},1,28,28) 5x5", _im2col(N, False)))
        out.append(Case("col2im", f"({N}*576,25) 5x5", _im2col(N, True)))
        out.append(Case("numerical_gradient", f"b2 of 784-50-10, batch {N}",
                        _numerical_gradient(N)))
    for sizes in ((784, 50, 10), (784, 100, 100, 10)):
        for name in ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"):
            if hasattr(BOOK.optimizer, name):
                out.append(Case(f"{name}.update", "-".join(map(str, sizes)),
                                _optimizer(name, sizes)))
    return out


# --------------------------------------------------------------------------------- timing ----
def _per_call(func, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        func()
    return (time.perf_counter() - t0) / inner


def compare(book, mine, rounds, round_seconds=2e-4):
    """Median seconds per call of each, and the median of the round-by-round ratios
    mine / book (rounds interleaved, which one goes first alternating)."""
    for _ in range(3):  # compile, fill caches
        book(), mine()
    single = max(min(_per_call(f, 1) for _ in range(3)) for f in (book, mine))
    inner = max(1, int(round_seconds / max(single, 1e-7)))
    tb, tm = [], []
    for r in range(rounds):
        if r % 2:
            tm.append(_per_call(mine, inner))
            tb.append(_per_call(book, inner))
        else:
            tb.append(_per_call(book, inner))
            tm.append(_per_call(mine, inner))
    ratios = np.array(tm) / np.array(tb)
    return float(np.median(tb)), float(np.median(tm)), float(np.median(ratios))


def _once(func):
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def neighbour_and_idle(rounds):
    """The two rows on Affine.forward (100,784)x(784,50): (neighbour, idle) dicts."""
    rng = _rng("neighbour")
    x, W, b = rng.standard_normal((100, 784)), rng.standard_normal((784, 50)), np.zeros(50)
    mine = FASTCONV.layers.Affine(_own(W), _own(b))
    book = BOOK.layers.Affine(_own(W), _own(b))
    for _ in range(5):
        mine.forward(x), book.forward(x), np.dot(x, W)
    steady, after, book_after = [], [], []
    for _ in range(rounds):
        time.sleep(0.05)
        for _ in range(5):
            mine.forward(x)
        steady.append(_once(lambda: mine.forward(x)))
        np.dot(x, W)
        after.append(_once(lambda: mine.forward(x)))
        np.dot(x, W)
        book_after.append(_once(lambda: book.forward(x)))
    neighbour = {"steady_us": np.median(steady) * 1e6, "after_us": np.median(after) * 1e6,
                 "book_after_us": np.median(book_after) * 1e6}
    neighbour["ratio"] = neighbour["after_us"] / neighbour["steady_us"]
    t_mine, t_book = [], []
    for r in range(max(5, rounds // 2)):
        for which in ((mine, t_mine), (book, t_book))[::1 if r % 2 else -1]:
            time.sleep(0.2)
            which[1].append(_once(lambda: which[0].forward(x)))
    idle = {"after_pause_us": np.median(t_mine) * 1e6,
            "book_after_pause_us": np.median(t_book) * 1e6}
    idle["ratio"] = idle["after_pause_us"] / idle["book_after_pause_us"]
    return ({k: float(v) for k, v in neighbour.items()}, {k: float(v) for k, v in idle.items()})


# --------------------------------------------------------------------------------- report ----
def _us(seconds):
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


def markdown(rows, neighbour, idle, meta):
    within = sum(r["ratio"] <= TARGET for r in rows)
    lines = [
        "# fastconv against the book's own calls, batch 1 to 100",
        "",
        f"Written by `python -m bench.small` ({meta['when']}; {meta['rounds']} rounds a row, "
        f"interleaved). Book side: {meta['book']}. Machine: {meta['cpu']}, "
        f"{meta['cores']} cores; NumPy {meta['numpy']}, Numba {meta['numba']}.",
        "",
        f"Median time per call; ratio: median of the round-by-round ratios fastconv / book "
        f"(target <= {TARGET}). **{within} of {len(rows)} calls within {TARGET}x.**",
        "",
        "| call | shape | book µs | fastconv µs | ratio | |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        mark = "" if r["ratio"] <= TARGET else "over"
        lines.append(f"| {r['call']} | {r['shape']} | {_us(r['book_s'])} | "
                     f"{_us(r['fastconv_s'])} | {r['ratio']:.2f} | {mark} |")
    lines += [
        "",
        "## Neighbour and idle pause: `Affine.forward` (100,784)x(784,50)",
        "",
        "| row | fastconv µs | against | ratio | target |",
        "|---|---:|---:|---:|---:|",
        f"| right after `np.dot` of that size | {neighbour['after_us']:,.0f} | its steady "
        f"{neighbour['steady_us']:,.0f} | {neighbour['ratio']:.2f} | <= {NEIGHBOUR_TARGET} |",
        f"| after an idle pause of 0.2 s | {idle['after_pause_us']:,.0f} | the book's after "
        f"the pause {idle['book_after_pause_us']:,.0f} | {idle['ratio']:.2f} | "
        f"<= {IDLE_TARGET} |",
        "",
        f"(The book's call right after `np.dot`: {neighbour['book_after_us']:,.0f} µs.)",
        "",
    ]
    return "\n".join(lines)


def run(args):
    rows = []
    for case in cases():
        if args.only and args.only not in case.call:
            continue
        book_s, mine_s, ratio = compare(case.make(BOOK), case.make(FASTCONV), args.rounds)
        rows.append({"call": case.call, "shape": case.shape, "book_s": book_s,
                     "fastconv_s": mine_s, "ratio": ratio})
        flag = "" if ratio <= TARGET else "  <-- over"
        print(f"{case.call:28} {case.shape:28} book {_us(book_s):>9} µs  fastconv "
              f"{_us(mine_s):>9} µs  {ratio:5.2f}{flag}", flush=True)
    if args.only:  # a quick look: no neighbour rows, nothing written
        return
    neighbour, idle = neighbour_and_idle(max(10, args.rounds))
    print(f"neighbour: after np.dot {neighbour['after_us']:.0f} µs, steady "
          f"{neighbour['steady_us']:.0f} µs: {neighbour['ratio']:.2f}")
    print(f"idle: after 0.2 s {idle['after_pause_us']:.0f} µs, the book's "
          f"{idle['book_after_pause_us']:.0f} µs: {idle['ratio']:.2f}")
    import numba
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds, "book": BOOK_LABEL,
            "cpu": cpu_model(), "cores": os.cpu_count(), "numpy": np.__version__,
            "numba": numba.__version__, "target": TARGET}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "small.md"), "w") as f:
        f.write(markdown(rows, neighbour, idle, meta))
    with open(os.path.join(args.out, "small.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "neighbour": neighbour, "idle": idle}, f,
                  indent=1)
    print(f"wrote {os.path.join(args.out, 'small.md')} and small.json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--quick", action="store_true", help="9 rounds a row")
    parser.add_argument("--book", default=None, help="a checkout of the book (holds common/)")
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--only", default=None, help="only the calls whose name holds TEXT")
    parser.add_argument("--tune", action="store_true",
                        help="measure the sizes of fastconv.sizes and write them there")
    args = parser.parse_args(argv)
    if bench.OPENBLAS_TIMEOUT_SET:  # run again with OpenBLAS's own default
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
        env["FASTCONV_BENCH_CHILD"] = "1"
        sys.exit(subprocess.call([sys.executable, "-m", "bench.small", *sys.argv[1:]], env=env))
    if args.quick:
        args.rounds = 9
    global BOOK, BOOK_LABEL, FASTCONV
    BOOK_LABEL, BOOK = load_book(args.book)
    FASTCONV = fastconv_side()
    if args.tune:
        from bench import tune_sizes
        tune_sizes.main(args.rounds)
    else:
        run(args)


BOOK = BOOK_LABEL = FASTCONV = None

if __name__ == "__main__":
    main()
