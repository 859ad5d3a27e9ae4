"""What importing NumPy before fastconv costs, and what ``import fastconv`` wins back.

``python -m bench.import_order [--procs P] [--rounds R]``

OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` when it loads. Unset, its idle threads spin for
2**28 cycles after every multithreaded GEMM and take a core from the Numba kernels and worker
threads that follow. ``import fastconv`` sets the variable, and when NumPy was imported first
(the book's scripts start with ``import numpy as np``) has the loaded OpenBLAS read it again
(``config.reread_openblas_env``).

Three kinds of fresh process time Trainer steps (gradient + Adam + loss, batch 100, parallel
kernels) of SimpleConvNet (float64) and DeepConvNet (float32 mode), each after a first GEMM
has started OpenBLAS's threads:

``fastconv_first``  ``import fastconv`` before NumPy (what ``fastconv train`` does);
``numpy_first``     ``import numpy`` first, then fastconv (its re-read takes effect);
``spinning``        ``numpy_first`` with ``OPENBLAS_THREAD_TIMEOUT=28``, OpenBLAS's own
                    default, which fastconv leaves alone: how every numpy-first script ran
                    before the re-read.

The processes run in turn, ``--procs`` of each, so the machine's slow phases hit all alike;
the figure of a kind is the median over its processes of their median step, and the ratios
are against ``spinning`` in the same run.
"""
import argparse
import json
import os
import subprocess
import sys

from bench import ROOT as _ROOT

_CHILD = """
import sys, json{first}
a = np.ones((400, 400)); a @ a  # a first GEMM: OpenBLAS's threads are up
import fastconv
sys.path[:0] = [{root!r}, {tests!r}]
from bench.common import timings
from bench.twins import make_runner
out = {{}}
for net, dtype in (("SimpleConvNet", "float64"), ("DeepConvNet", "float32")):
    step = make_runner("numba_parallel", net, dtype, 100).step
    out[net] = float(np.median(timings(step, {rounds}, warmup=3)))
print(json.dumps(out))
"""

KINDS = {
    "fastconv_first": ("\nimport fastconv\nimport numpy as np", None),
    "numpy_first": ("\nimport numpy as np", None),
    "spinning": ("\nimport numpy as np", "28"),
}


def run_child(kind, rounds):
    """Median step seconds per network in a fresh process of ``kind``."""
    first, timeout = KINDS[kind]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = timeout
    code = _CHILD.format(first=first, root=_ROOT, tests=os.path.join(_ROOT, "tests"),
                         rounds=rounds)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600, cwd=_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=3, help="processes of each kind")
    ap.add_argument("--rounds", type=int, default=10, help="timed steps in each process")
    args = ap.parse_args(argv)
    import numpy as np

    got = {kind: [] for kind in KINDS}
    for _ in range(args.procs):
        for kind in KINDS:
            got[kind].append(run_child(kind, args.rounds))
    print(f"{'Trainer step (median of ' + str(args.procs) + ' processes)':44s}"
          + "".join(f"{kind:>22s}" for kind in KINDS))
    for net in got["spinning"][0]:
        med = {kind: float(np.median([r[net] for r in runs])) for kind, runs in got.items()}
        cells = [f"{med[k] * 1e3:8.1f} ms (x{med['spinning'] / med[k]:.2f})" for k in KINDS]
        print(f"{net:44s}" + "".join(f"{c:>22s}" for c in cells))
    return got


if __name__ == "__main__":
    main()
