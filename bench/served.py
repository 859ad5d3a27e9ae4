"""Trainer steps of the book's network classes as the drop-in serves them, against
fastconv.models' classes: ``python -m bench.served [--rounds 30] [--book PATH]``.

Contenders, per network (SimpleConvNet, DeepConvNet), rounds interleaved:

* ``fastconv.models``: the class ``fastconv train`` uses;
* ``served``: what ``python -m fastconv run train_convnet.py`` gets (fastconv.models.book; with
  ``--book``, imported through the drop-in from the book's own file);
* ``book file``: with ``--book`` only, the book's class itself on fastconv's layers (what the
  drop-in ran before it served the classes);
* ``fastconv.models A/A``: the first contender again, a second instance: its ratio shows how
  far the machine's noise alone moves a ratio in this run.

Each step is the Trainer's: gradient, Adam update, loss, on a batch of 100 random images.
With ``--after-numpy`` each timed step comes right after a step of the book's NumPy
algorithm (``bench.twins``, not timed): its BLAS threads are then still spinning.
"""
import argparse
import importlib
import os
import sys
import time

import numpy as np

from bench.common import interleaved_timings
from bench.twins import make_runner
from fastconv import dropin
from fastconv.models import DeepConvNet, SimpleConvNet, book
from fastconv.trainer import Trainer

NETWORKS = {"SimpleConvNet": ("ch07", "simple_convnet", SimpleConvNet, book.SimpleConvNet),
            "DeepConvNet": ("ch08", "deep_convnet", DeepConvNet, book.DeepConvNet)}


def book_class(root, chapter, module, served):
    """The class a script gets from ``from <module> import <Class>`` in the book's folder,
    with the drop-in serving it (``served``) or not."""
    saved_path, saved_table = list(sys.path), dict(dropin.BOOK_NETWORKS)
    try:
        if not served:
            dropin.BOOK_NETWORKS.clear()
        dropin.install()
        sys.path[:0] = [os.path.join(root, chapter), root]
        sys.modules.pop(module, None)
        cls = getattr(importlib.import_module(module), module.title().replace("_", "")
                      .replace("Convnet", "ConvNet"))
    finally:
        dropin.BOOK_NETWORKS.update(saved_table)
        sys.modules.pop(module, None)
        dropin.uninstall()
        sys.path[:] = saved_path
    return cls


def trainer_step(cls, n_train=2000):
    """A Trainer over random images whose ``train_step`` is timed (no epoch evaluation)."""
    rng = np.random.default_rng(0)
    x = rng.random((n_train, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, n_train)
    np.random.seed(0)
    trainer = Trainer(cls(), x, t, x[:100], t[:100], epochs=1, mini_batch_size=100,
                      optimizer='Adam', optimizer_param={'lr': 0.001}, verbose=False)
    trainer.train_step()  # the first step evaluates the epoch's accuracy
    return trainer.train_step


def after(first, step):
    """``step`` run right after ``first``; ``.seconds``: each call's time of ``step`` alone."""
    def run():
        first()
        t0 = time.perf_counter()
        step()
        run.seconds.append(time.perf_counter() - t0)
    run.seconds = []
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--book", help="a checkout of the book's repository")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--after-numpy", action="store_true",
                        help="time each step right after a step of the book's NumPy code")
    args = parser.parse_args(argv)

    for name in args.networks:
        chapter, module, mine, served = NETWORKS[name]
        contenders = {"fastconv.models": mine, "served": served}
        if args.book:
            contenders["served"] = book_class(args.book, chapter, module, served=True)
            contenders["book file"] = book_class(args.book, chapter, module, served=False)
        contenders["fastconv.models A/A"] = mine
        steps = [trainer_step(cls) for cls in contenders.values()]
        if args.after_numpy:
            steps = [after(make_runner("numpy_im2col", name, np.float64, 100).step, step)
                     for step in steps]
        times = interleaved_timings(steps, args.rounds, warmup=2)
        if args.after_numpy:
            times = [step.seconds[-len(t):] for step, t in zip(steps, times)]
        print(f"{name}: ms per Trainer step over {args.rounds} interleaved rounds"
              f"{', each after a NumPy step of the book' if args.after_numpy else ''}; speed "
              "relative to fastconv.models (>1 is faster)")
        print(f"  {'contender':20s} {'class':45s} {'median':>8s} {'min':>8s} {'median':>7s} "
              f"{'min':>7s}")
        for label, cls, t in zip(contenders, contenders.values(), times):
            print(f"  {label:20s} {cls.__module__ + '.' + cls.__name__:45s} "
                  f"{1e3 * np.median(t):8.2f} {1e3 * np.min(t):8.2f} "
                  f"{np.median(times[0]) / np.median(t):6.3f}x "
                  f"{np.min(times[0]) / np.min(t):6.3f}x")


if __name__ == "__main__":
    main()
