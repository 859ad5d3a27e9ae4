"""The speed targets of the project, each measured as a ratio in one run, with PASS/FAIL.

``python -m bench.targets [--rounds R] [--train-run DIR | --train] [--train-f32] [--json FILE]``

0. At SimpleConvNet's shapes, Pooling forward+backward >= 15x and Convolution
   forward+backward >= 4x faster than the NumPy twin of the book's layers.

1. SimpleConvNet Trainer step (gradient + Adam + loss, batch 100), float64: <= 1/15 of the
   book's algorithm, and faster than PyTorch CPU float32; float32 mode <= 1/2 of PyTorch float32.
2. DeepConvNet step, float64: <= 1/12 of the book's algorithm; float32 mode <= PyTorch float32.
3. Max pooling forward (with argmax) and backward on (100, 30, 24, 24): <= 1 ms median each.
4. ``fastconv train`` (20 epochs, full MNIST): <= 150 s wall, test accuracy >= 0.988
   (read from the run's metrics.json with --train-run, or run now with --train). Only the
   default run (the book's settings, float64) is judged; ``--train-f32`` also runs float32
   mode and shows its figures (INFO rows, not counted).
5. First Trainer step in a new process with an empty Numba cache: SimpleConvNet <= 6 s,
   DeepConvNet <= 10 s; with the cache that run filled, <= 2 s each.
6. Peak memory of a DeepConvNet ``gradient`` at batch 100: <= 1/3 of the book's algorithm.

PyTorch rows are skipped (not failed) when torch is not installed.
"""
import bench  # noqa: F401  (first: its OpenBLAS setting, before NumPy loads)
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


from bench.common import interleaved_timings, timings
from bench.first_step import first_step
from bench.twins import make_runner

rows = []


def report(target, figure, passed, detail=""):
    verdict = {True: "PASS", False: "FAIL", None: "SKIP", "INFO": "INFO"}[passed]
    rows.append({"target": target, "figure": figure, "verdict": verdict, "detail": detail})
    print(f"{verdict:4}  {target:62} {figure:>16}  {detail}", flush=True)


def median_time(func, rounds, warmup=2):
    return float(np.median(timings(func, rounds, warmup)))


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def step_times(net, rounds):
    """Median Trainer-step seconds of each implementation, the rounds interleaved."""
    impls = [("book", "numpy_im2col", np.float64), ("fc64", "numba_parallel", np.float64),
             ("fc32", "numba_parallel", np.float32)]
    if have_torch():
        impls.append(("torch32", "torch", np.float32))
    steps = [make_runner(impl, net, dtype, 100).step for _, impl, dtype in impls]
    result = {"rounds": {}}
    for (key, _, _), times in zip(impls, interleaved_timings(steps, rounds, warmup=2)):
        result[key] = float(np.median(times))
        result["rounds"][key] = [float(t) for t in times]
        print(f"      {net} step {key}: {result[key] * 1e3:.1f} ms", flush=True)
    return result


def round_spread(steps, slow, fast):
    """The quartiles of ``slow / fast`` round by round (the rounds are interleaved, so each
    pair ran back to back): how far the machine's drift moves the ratio within one run."""
    ratios = np.array(steps["rounds"][slow]) / np.array(steps["rounds"][fast])
    q1, q3 = np.percentile(ratios, [25, 75])
    return f"round by round {q1:.1f}-{q3:.1f}x"


def check_steps(rounds):
    s = step_times("SimpleConvNet", rounds)
    ratio = s["book"] / s["fc64"]
    report("1. SimpleConvNet step f64 <= 1/15 of the book", f"{ratio:.1f}x faster", ratio >= 15,
           f"{s['fc64'] * 1e3:.1f} ms vs {s['book'] * 1e3:.1f} ms; "
           + round_spread(s, "book", "fc64"))
    if "torch32" in s:
        report("1. SimpleConvNet step f64 faster than torch f32",
               f"{s['torch32'] / s['fc64']:.2f}x", s["fc64"] < s["torch32"],
               f"torch f32 {s['torch32'] * 1e3:.1f} ms")
        report("1. SimpleConvNet step f32 <= 1/2 of torch f32",
               f"{s['torch32'] / s['fc32']:.2f}x", s["fc32"] <= s["torch32"] / 2,
               f"{s['fc32'] * 1e3:.1f} ms")
    else:
        report("1. SimpleConvNet vs torch", "-", None, "torch not installed")
    d = step_times("DeepConvNet", max(3, rounds // 3))
    ratio = d["book"] / d["fc64"]
    report("2. DeepConvNet step f64 <= 1/12 of the book", f"{ratio:.1f}x faster", ratio >= 12,
           f"{d['fc64'] * 1e3:.0f} ms vs {d['book'] * 1e3:.0f} ms; "
           + round_spread(d, "book", "fc64"))
    if "torch32" in d:
        report("2. DeepConvNet step f32 <= torch f32", f"{d['torch32'] / d['fc32']:.2f}x",
               d["fc32"] <= d["torch32"], f"{d['fc32'] * 1e3:.0f} ms vs "
               f"{d['torch32'] * 1e3:.0f} ms")
    return {"simple": s, "deep": d}


def check_layers(rounds):
    """Row 0: at SimpleConvNet's shapes, Pooling fwd+bwd >= 15x and Convolution
    fwd+bwd >= 4x faster than the NumPy twin of the book's layers (bench/book_layers.py)."""
    from bench import book_layers
    from fastconv import layers
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 1, 28, 28))
    W = 0.01 * rng.standard_normal((30, 1, 5, 5))
    b = np.zeros(30)
    a = np.maximum(rng.standard_normal((100, 30, 24, 24)), 0)
    pairs = {"Convolution": (layers.Convolution(W, b), book_layers.Convolution(W, b), x),
             "Pooling": (layers.Pooling(2, 2, 2), book_layers.Pooling(2, 2, 2), a)}
    out = {}
    for name, (fast, book, inp) in pairs.items():
        dout = rng.standard_normal(fast.forward(inp).shape)

        def fwd_bwd(layer):
            layer.forward(inp)
            layer.backward(dout)
        times = [float(np.median(t)) for t in interleaved_timings(
            [lambda: fwd_bwd(fast), lambda: fwd_bwd(book)], rounds * 2, warmup=2)]
        out[name] = {"fastconv_s": times[0], "book_s": times[1]}
        need = 15 if name == "Pooling" else 4
        ratio = times[1] / times[0]
        report(f"0. {name} fwd+bwd at SimpleConvNet shapes >= {need}x the book",
               f"{ratio:.1f}x faster", ratio >= need,
               f"{times[0] * 1e3:.2f} ms vs {times[1] * 1e3:.2f} ms")
    return out


def check_pooling(rounds):
    from fastconv.layers import Pooling
    x = np.random.default_rng(0).standard_normal((100, 30, 24, 24))
    layer = Pooling(2, 2, 2)
    out = layer.forward(x)
    dout = np.ones_like(out)
    fwd = median_time(lambda: layer.forward(x), rounds * 5)
    bwd = median_time(lambda: layer.backward(dout), rounds * 5)
    report("3. max pooling forward (100,30,24,24) <= 1 ms", f"{fwd * 1e3:.2f} ms", fwd <= 1e-3)
    report("3. max pooling backward <= 1 ms", f"{bwd * 1e3:.2f} ms", bwd <= 1e-3)
    return {"forward_s": fwd, "backward_s": bwd}


# what row 4 asks for: the book's train_convnet.py, which `fastconv train` runs by default
BOOK_RUN = {"model": "SimpleConvNet", "epochs": 20, "train_size": 60000, "mini_batch_size": 100,
            "optimizer": "Adam", "lr": 0.001, "dtype": "float64"}


def _not_the_book_run(m):
    """The settings of a metrics.json that differ from :data:`BOOK_RUN`, as ``key=value``."""
    got = dict(m.get("settings", {}), model=m.get("model"))
    return [f"{k}={got.get(k)}" for k, v in BOOK_RUN.items() if got.get(k) != v]


def train_now(dtype="float64"):
    """Run ``fastconv train`` with its defaults (and ``--dtype``) into a new folder."""
    run_dir = tempfile.mkdtemp(prefix=f"fastconv-train-{dtype}-")
    subprocess.run([sys.executable, "-m", "fastconv", "train", "--out", run_dir,
                    "--dtype", dtype, "--no-progress"], check=True)
    return run_dir


def check_train(run_dir, run_now):
    """Row 4 from a run's metrics.json. Only the default run (the book's settings, float64)
    gets a verdict; a float32-mode run of the same settings is shown as information."""
    if run_now:
        run_dir = run_dir or train_now()
    if not run_dir:
        report("4. fastconv train 20 epochs", "-", None, "give --train-run DIR or --train")
        return None
    with open(os.path.join(run_dir, "metrics.json")) as f:
        m = json.load(f)
    wall = m["wall_time_s"]
    acc = m["final_test_acc"]
    differ = _not_the_book_run(m)
    if differ == ["dtype=float32"]:
        report("4. (float32 mode, not the default) fastconv train wall", f"{wall:.0f} s",
               "INFO", "--dtype float32")
        report("4. (float32 mode, not the default) test accuracy", f"{acc:.4f}", "INFO")
        return m
    note = "" if not differ else "not the book's run: " + ", ".join(differ)
    report("4. fastconv train wall <= 150 s", f"{wall:.0f} s", wall <= 150 and not differ, note)
    report("4. fastconv train test accuracy >= 0.988", f"{acc:.4f}",
           acc >= 0.988 and not differ, note)
    return m


def check_compile():
    out = {}
    for net, limit in (("SimpleConvNet", 6), ("DeepConvNet", 10)):
        with tempfile.TemporaryDirectory() as cache:
            cold, cached = first_step(net, cache), first_step(net, cache)
        out[net] = {label: {"import_s": t[0], "first_step_s": t[1]}
                    for label, t in (("cold", cold), ("cached", cached))}
        report(f"5. first {net} step, empty cache <= {limit} s", f"{cold[1]:.1f} s",
               cold[1] <= limit, f"import {cold[0]:.1f} s")
        report(f"5. first {net} step, on-disk cache <= 2 s", f"{cached[1]:.2f} s",
               cached[1] <= 2, f"import {cached[0]:.1f} s")
    return out


def check_memory():
    """Peak of NumPy allocations (tracemalloc sees them; Numba's in-kernel scratch buffers,
    one sample's col block per thread, are not counted) during one gradient."""
    import tracemalloc
    peak = {}
    for impl in ("numpy_im2col", "numba_parallel"):
        runner = make_runner(impl, "DeepConvNet", np.float64, 100)
        runner.network.gradient(runner.x, runner.t)  # compile and warm up outside the trace
        tracemalloc.start()
        runner.network.gradient(runner.x, runner.t)
        peak[impl] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    ratio = peak["numba_parallel"] / peak["numpy_im2col"]
    report("6. DeepConvNet gradient peak memory <= 1/3 of the book", f"{ratio:.2f} of book",
           ratio <= 1 / 3, f"{peak['numba_parallel']:.0f} MiB vs {peak['numpy_im2col']:.0f} "
           "MiB (tracemalloc peak)")
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per step figure")
    parser.add_argument("--train-run", help="folder of a finished `fastconv train` run")
    parser.add_argument("--train", action="store_true", help="run `fastconv train` now")
    parser.add_argument("--train-f32", action="store_true",
                        help="also run `fastconv train --dtype float32` (shown, not judged)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    results = {"layers": check_layers(args.rounds), "pooling": check_pooling(args.rounds),
               "steps": check_steps(args.rounds), "compile": check_compile(),
               "memory": check_memory(), "train": check_train(args.train_run, args.train)}
    if args.train_f32:
        results["train_f32"] = check_train(train_now("float32"), run_now=False)
    results["rows"] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
    judged = [r for r in rows if r["verdict"] != "INFO"]
    failed = [r for r in judged if r["verdict"] == "FAIL"]
    print(f"\n{len(judged) - len(failed)} of {len(judged)} target rows pass or skip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
