"""``python -m bench.small --tune``: measure ``fastconv.sizes.BOOK_BELOW`` and write it.

For each entry the book's expression and fastconv's kernel are timed on a range of sizes,
rounds interleaved; the entry becomes the smallest size tried from which the kernel is at
least as fast there and at every larger size tried. The new table replaces the one between
the markers in ``fastconv/sizes.py``. (``SERIAL_BELOW`` is not timed here: its reason is the
neighbours a kernel has in a network, which one call on its own does not show.)
"""
import os
import re

import numpy as np

from bench.common import interleaved_timings
from bench.envinfo import cpu_model
from fastconv import sizes
from fastconv.kernels import activation, optim

SIZES_PY = os.path.join(os.path.dirname(os.path.abspath(sizes.__file__)), "sizes.py")


def _best_ratio(first, second, rounds):
    """best(second) / best(first) over interleaved rounds: what the machine does when
    nothing else runs."""
    t1, t2 = interleaved_timings([first, second], rounds, warmup=3)
    return min(t2) / min(t1)


def crossover(sizes_tried, make, rounds):
    """The smallest size from which ``second`` (of ``make(size)``) is at least as fast as
    ``first`` at it and at every larger size tried; past the last: twice it."""
    ratios = {}
    for n in sizes_tried:
        first, second = make(n)
        ratios[n] = _best_ratio(first, second, rounds)
        print(f"    {n:>9,} values: second / first {ratios[n]:.2f}", flush=True)
    threshold = 2 * sizes_tried[-1]
    for n in reversed(sizes_tried):
        if ratios[n] > 1.0:
            break
        threshold = n
    return threshold, ratios


def _repeat(func, times):
    def run():
        for _ in range(times):
            func()
    return run


# ------------------------------------------------------------------ book / kernel pairs ----
def _relu_book(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n)
    dout = rng.standard_normal(n)
    reps = max(1, 20000 // n)

    def book():
        mask = x <= 0
        out = x.copy()
        np.putmask(out, mask, 0)
        np.putmask(dout, mask, 0)

    def kernel():
        out, mask = activation.relu_forward(x)
        activation.relu_backward(dout, mask)
    return _repeat(book, reps), _repeat(kernel, reps)


def _adam_book(n):
    rng = np.random.default_rng(n)
    p, g = rng.standard_normal(n), rng.standard_normal(n)
    m, v = np.zeros(n), np.zeros(n)
    lr_t, b1, b2 = 0.001, 0.9, 0.999
    reps = max(1, 20000 // n)

    def book():
        m[...] += (1 - b1) * (g - m)
        v[...] += (1 - b2) * (g ** 2 - v)
        p[...] -= lr_t * m / (np.sqrt(v) + 1e-7)

    def kernel():
        optim.adam_update(p, g, m, v, lr_t, b1, b2)
    return _repeat(book, reps), _repeat(kernel, reps)


BOOK = {"relu": (_relu_book, [2 ** k for k in range(6, 15)]),
        "adam": (_adam_book, [2 ** k for k in range(6, 16)])}


def table(book_below):
    import numba
    notes = {"relu": "Relu.forward / backward: x.size",
             "adam": "Adam.update, per parameter array: its size"}
    lines = ["# --- table: written by python -m bench.small --tune ---",
             f"# {cpu_model()}, {os.cpu_count()} cores, NumPy {np.__version__}, "
             f"Numba {numba.__version__}",
             "BOOK_BELOW = {"]
    lines += [f'    "{k}": {v},  # {notes[k]}' for k, v in book_below.items()]
    lines += ["}", "# --- end of table ---"]
    return "\n".join(lines) + "\n"


def write(text, path=SIZES_PY):
    with open(path) as f:
        source = f.read()
    new, count = re.subn(r"# --- table: .*?# --- end of table ---\n", lambda _: text, source,
                         flags=re.S)
    if count != 1:
        raise RuntimeError(f"{path}: the table's markers are missing")
    with open(path, "w") as f:
        f.write(new)


def main(rounds):
    book_below = {}
    for name, (make, tried) in BOOK.items():
        print(f"{name}: the book's expression (first) against fastconv's kernel (second)")
        book_below[name], _ = crossover(tried, make, rounds)
    text = table(book_below)
    write(text)
    print(text + f"written to {SIZES_PY}")
