"""Seeded training runs under the thread settings named on the command line; prints a JSON
object of parameter digests. Run in a subprocess by test_env.py, since the Numba thread pool
size and the FASTCONV_* variables are fixed when a process starts.

Settings: ``threads-N`` (``config.set_num_threads(N)``) or ``as-started`` (whatever the
environment set). For each, in float64 and in float32 mode: SimpleConvNet trained two epochs
on 2,000 synthetic images, and one DeepConvNet step.
"""
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from fastconv import config  # noqa: E402
from fastconv.models import DeepConvNet, SimpleConvNet  # noqa: E402
from fastconv.optimizer import Adam  # noqa: E402
from synthetic import normalized, synthetic_digits  # noqa: E402


def digest(params):
    h = hashlib.sha256()
    for key in sorted(params):
        h.update(key.encode() + np.ascontiguousarray(params[key]).tobytes())
    return h.hexdigest()


def simple_run(x, t, dtype):
    np.random.seed(0)
    net = SimpleConvNet(dtype=dtype)
    optimizer = Adam()
    for _ in range(2 * len(x) // 100):  # two epochs of batches of 100, as the book draws them
        batch = np.random.choice(len(x), 100)
        optimizer.update(net.params, net.gradient(x[batch], t[batch]))
    return digest(net.params)


def deep_step(x, t, dtype):
    np.random.seed(1)  # also the dropout masks
    net = DeepConvNet(dtype=dtype)
    Adam().update(net.params, net.gradient(x[:20], t[:20]))
    return digest(net.params)


def main(settings):
    images, labels = synthetic_digits(2000, seed=1)
    results = {}
    for setting in settings:
        if setting.startswith("threads-"):
            config.set_num_threads(int(setting.split("-")[1]))
        for dtype in (np.float64, np.float32):
            config.set_keep_dtype(dtype == np.float32)
            x = normalized(images, dtype)
            name = f"{setting} {np.dtype(dtype).name}"
            results[name + " simple"] = simple_run(x, labels, dtype)
            results[name + " deep"] = deep_step(x, labels, dtype)
        results[setting + " threads"] = config.get_num_threads()
    results["parallel"] = config.parallel_enabled()
    return results


if __name__ == "__main__":
    json.dump(main(sys.argv[1:]), sys.stdout)
