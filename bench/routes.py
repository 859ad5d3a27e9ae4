"""Trainer steps of SimpleConvNet and DeepConvNet on every BLAS route this machine offers.

``python -m bench.routes [--pairs P] [--steps S] [--fail-above RATIO]``: the kernels' GEMMs
reach BLAS through one route per process (``FASTCONV_BLAS``: NumPy's own BLAS, SciPy's
``cython_blas``), so each route runs in new processes taken in turn, as :mod:`bench.ab` runs
two checkouts: route A then B, then B then A, P times. Prints and writes
``bench/results/routes.md``: each route's median step and its ratio to the fastest route.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

from bench import ROOT
from bench.ab import compare, step_seconds

RESULTS = os.path.join(ROOT, "bench", "results", "routes.md")


def offered():
    """The routes this machine offers, as ``fastconv info`` names them."""
    done = subprocess.run([sys.executable, "-c", "from fastconv.kernels import _blas; "
                           "print(*(r.name for r in _blas.ROUTES))"], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return done.stdout.split()


def table(medians):
    """Markdown rows: net, dtype, then each route's median step and its ratio to the fastest."""
    routes = sorted({r for per_route in medians.values() for r in per_route})
    lines = ["| net | dtype | " + " | ".join(routes) + " |",
             "|---|---|" + "---:|" * len(routes)]
    for (net, dtype), per_route in medians.items():
        fastest = min(per_route.values())
        cells = [f"{per_route[r] * 1e3:.2f} ms (x{per_route[r] / fastest:.3f})" for r in routes]
        lines.append(f"| {net} | {dtype} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.routes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process")
    parser.add_argument("--dtype", default="f64", choices=["f64", "f32"])
    parser.add_argument("--fail-above", type=float, metavar="RATIO",
                        help="exit with 1 when a route's median is above RATIO x the fastest")
    args = parser.parse_args(argv)
    routes = offered()
    medians = {}
    for net in ("SimpleConvNet", "DeepConvNet"):
        sides = [dict(os.environ, FASTCONV_BLAS=r) for r in routes]

        def measure(env, steps=args.steps):
            return step_seconds(ROOT, net, args.dtype, steps, env=env)

        for env in sides:  # each route compiles nothing of its own; this warms the cache
            measure(env, 1)
        if len(sides) == 1:
            times = [np.array([measure(sides[0]) for _ in range(args.pairs)])]
        else:
            times = compare(*sides, args.pairs, measure)
        medians[net, args.dtype] = {r: float(np.median(t)) for r, t in zip(routes, times)}
        print(f"{net} {args.dtype}: " + ", ".join(f"{r} {m * 1e3:.2f} ms"
                                                  for r, m in medians[net, args.dtype].items()),
              flush=True)
    text = table(medians)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        f.write(f"# BLAS routes\n\nWritten by `python -m bench.routes --pairs {args.pairs} "
                f"--steps {args.steps} --dtype {args.dtype}`: median Trainer step (batch 100) "
                "per route, new processes taken in turn; in parentheses the ratio to the "
                f"fastest route.\n\n{text}\n")
    print(text)
    worst = max(m / min(per.values()) for per in medians.values() for m in per.values())
    if args.fail_above is not None and worst > args.fail_above:
        print(f"a route is {worst:.3f}x the fastest, above {args.fail_above}: failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
