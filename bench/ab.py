"""Two fastconv checkouts, A and B, compared in new processes taken in turn.

``python -m bench.ab DIR_A DIR_B [--net NET] [--dtype f64|f32] [--pairs P] [--steps S]``
starts, P times, one new Python process per checkout (A then B, then B then A, ...), each
importing the ``fastconv`` found in its DIR. A process times S Trainer steps (gradient, Adam
update, loss; batch 100) after 3 warm-up steps and reports their median. With ``--cold`` a
process times the first step with an empty ``NUMBA_CACHE_DIR`` instead (float64, the script
of :mod:`bench.first_step`). Prints each side's median and B/A per pair: its median and
quartiles. A step's speed also depends on where a process's memory and threads landed, so
the two checkouts are compared over many processes.

Use it to judge a change: ``git worktree add /tmp/before HEAD~1``, then
``python -m bench.ab /tmp/before .``. To judge a stack (other NumPy, SciPy or Numba
versions), give B another environment's Python: ``python -m bench.ab . . --python-b
/path/to/venv/bin/python --fail-above 1.2`` (B then keeps its kernel cache apart from A's).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from bench.first_step import first_step

_STEPS = """
import sys, time, numpy as np
import fastconv
from fastconv import config, models
from fastconv.optimizer import Adam
net_name, f32, steps = sys.argv[1], sys.argv[2] == "f32", int(sys.argv[3])
config.set_keep_dtype(f32)
np.random.seed(0)
net = getattr(models, net_name)(**({"dtype": np.float32} if f32 else {}))
adam = Adam()
rng = np.random.default_rng(0)
x = rng.random((100, 1, 28, 28)).astype(np.float32 if f32 else np.float64)
t = rng.integers(0, 10, 100)
times = []
for _ in range(steps + 3):
    t0 = time.perf_counter()
    adam.update(net.params, net.gradient(x, t))
    net.loss(x, t)
    times.append(time.perf_counter() - t0)
print(np.median(times[3:]), fastconv.__file__)
"""


def step_seconds(checkout, net, dtype, steps, python=sys.executable, env=None):
    """Median seconds of a Trainer step in a new process running ``checkout``'s fastconv."""
    done = subprocess.run([python, "-c", _STEPS, net, dtype, str(steps)], env=env,
                          cwd=checkout, check=True, capture_output=True, text=True)
    seconds, module = done.stdout.split()
    if not module.startswith(checkout):  # an installed fastconv would shadow the checkout's
        raise RuntimeError(f"the process ran {module}, not the fastconv in {checkout}")
    return float(seconds)


def cold_seconds(checkout, net):
    """Seconds of the first step in a new process with an empty kernel cache."""
    with tempfile.TemporaryDirectory() as cache:
        return first_step(net, cache, cwd=checkout)[1]


def compare(a, b, pairs, measure):
    """``(A's times, B's times)``, ``pairs`` each, the order alternating pair by pair
    (``measure(a)`` and ``measure(b)``; a and b may be equal)."""
    times = ([], [])
    for i in range(pairs):
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):
            times[side].append(measure((a, b)[side]))
    return np.array(times[0]), np.array(times[1])


def summary(ta, tb, unit="ms", scale=1e3):
    """One line: each side's median and the median and quartiles of B/A over the pairs."""
    r = tb / ta
    q1, q2, q3 = np.percentile(r, [25, 50, 75])
    return (f"A {np.median(ta) * scale:.2f} {unit}, B {np.median(tb) * scale:.2f} {unit}; "
            f"B/A per pair: median {q2:.3f}, quartiles {q1:.3f}-{q3:.3f}, pairs: {len(r)}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="checkout A (a folder holding fastconv/)")
    parser.add_argument("b", help="checkout B")
    parser.add_argument("--net", default="SimpleConvNet", choices=["SimpleConvNet",
                                                                    "DeepConvNet"])
    parser.add_argument("--dtype", default="f64", choices=["f64", "f32"],
                        help="f32: float32 mode (config.set_keep_dtype)")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per process")
    parser.add_argument("--cold", action="store_true",
                        help="time the first step with an empty kernel cache instead")
    parser.add_argument("--python-b", default=sys.executable,
                        help="the Python that runs B (another environment's), default this one")
    parser.add_argument("--fail-above", type=float, metavar="RATIO",
                        help="exit with 1 when the median of B/A is above RATIO")
    args = parser.parse_args(argv)
    a, b = (os.path.abspath(d) for d in (args.a, args.b))
    for d in (a, b):
        if not os.path.isdir(os.path.join(d, "fastconv")):
            parser.error(f"{d} holds no fastconv/ folder")
    if args.cold:
        ta, tb = compare(a, b, args.pairs, lambda d: cold_seconds(d, args.net))
        print(f"{args.net} cold first step: {summary(ta, tb, 's', 1)}")
    else:
        with tempfile.TemporaryDirectory() as cache:
            # another Python gets its own kernel cache: two Numba versions would overwrite
            # each other's
            env_b = (None if args.python_b == sys.executable
                     else dict(os.environ, NUMBA_CACHE_DIR=cache))
            side_a, side_b = (a, sys.executable, None), (b, args.python_b, env_b)

            def measure(side, steps=args.steps):
                checkout, python, env = side
                return step_seconds(checkout, args.net, args.dtype, steps, python, env)

            measure(side_a, 1)  # each side fills its kernel cache
            measure(side_b, 1)
            ta, tb = compare(side_a, side_b, args.pairs, measure)
        print(f"{args.net} {args.dtype} step: {summary(ta, tb)}")
        if args.fail_above is not None and np.median(tb / ta) > args.fail_above:
            print(f"B/A above {args.fail_above}: failed")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
