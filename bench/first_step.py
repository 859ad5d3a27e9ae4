"""Compile time: the first Trainer step of each network in a new process.

``python -m bench.first_step [--runs R]`` starts, for SimpleConvNet and DeepConvNet, a new
Python process with an empty ``NUMBA_CACHE_DIR`` ("cold": every kernel compiles) and then one
with the cache it filled ("cached"), and prints the seconds of importing fastconv and of the
first step (gradient, Adam update, loss; batch 100, float64): the wait of a first run in a
fresh container or Colab, and of every later run.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

_FIRST_STEP = """
import sys, time, numpy as np
t0 = time.perf_counter()
from fastconv import models
from fastconv.optimizer import Adam
t1 = time.perf_counter()
np.random.seed(0)
net = getattr(models, sys.argv[1])()
x = np.random.rand(100, 1, 28, 28); t = np.random.randint(0, 10, 100)
t2 = time.perf_counter()
grads = net.gradient(x, t); Adam().update(net.params, grads); net.loss(x, t)
print(t1 - t0, time.perf_counter() - t2)
"""


def first_step(net, cache_dir, cwd=None):
    """(import seconds, first-step seconds) of ``net`` in a new process (started in ``cwd``:
    the fastconv found there comes first)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run([sys.executable, "-c", _FIRST_STEP, net], env=env, check=True,
                          capture_output=True, text=True, cwd=cwd)
    return tuple(map(float, done.stdout.split()))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.first_step", description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="cold/cached pairs per network")
    args = parser.parse_args(argv)
    print("| network | cold import s | cold first step s | cached import s | cached first step s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for net in ("SimpleConvNet", "DeepConvNet"):
        cold, cached = [], []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(first_step(net, cache))
                cached.append(first_step(net, cache))
        c, w = np.median(cold, axis=0), np.median(cached, axis=0)
        print(f"| {net} | {c[0]:.2f} | {c[1]:.1f} | {w[0]:.2f} | {w[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
