"""Run the benchmark suite and write ``bench/results/REPORT.md`` and ``bench/results/ops.png``.

Usage::

    python -m bench.report                 # the full suite (slow: many rounds per benchmark)
    python -m bench.report --quick         # fewer rounds per benchmark: sooner, noisier
    python -m bench.report --smoke         # batch 2, one round: checks the pipeline only
    python -m bench.report --from-json F   # rewrite the report from a saved JSON, no run
    python -m bench.report -- -k conv      # anything after -- goes to pytest

The JSON is pytest-benchmark's, slimmed (raw timings and CPU flags dropped) and saved as
``benchmark.json`` beside the report. Smoke runs write under ``bench/results/smoke/``. A run
into ``bench/results`` also writes its summary between the bench-report markers of README.md
and of each translation (``READMES``).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OPS = ("im2col", "col2im", "conv_forward", "conv_backward", "maxpool_forward",
       "maxpool_backward", "avgpool_forward", "avgpool_backward")
IMPLS = ("naive", "numpy_im2col", "numpy_strided", "numba_serial", "numba_parallel", "torch")
BASE = "numpy_im2col"
E2E = ("train_step", "inference")
# the shape of each op in the summary: the heaviest layer of DeepConvNet / SimpleConvNet
SUMMARY_SHAPE = {"conv": "deep_conv2", "pool": "simple_pool1"}


# ------------------------------------------------------------------------- running ----
def run_suite(json_path, smoke=False, quick=False, pytest_args=()):
    """Run ``pytest bench`` saving pytest-benchmark's JSON to ``json_path``; returns rc."""
    cmd = [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider",
           f"--benchmark-json={json_path}", "--benchmark-columns=median,iqr,rounds",
           "--benchmark-sort=name"]
    env = dict(os.environ)
    if smoke:
        cmd += ["--bench-smoke", "--benchmark-max-time=0.02", "--benchmark-min-rounds=1"]
        env["FASTCONV_BENCH_ROUNDS"] = "1"
    elif quick:
        cmd += ["--benchmark-max-time=0.3", "--benchmark-min-rounds=3"]
        env.setdefault("FASTCONV_BENCH_ROUNDS", "2")
    cmd += list(pytest_args)
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


_KEEP_STATS = ("min", "max", "mean", "median", "stddev", "iqr", "q1", "q3", "rounds",
               "iterations", "outliers")


def slim(data):
    """Drop what makes the JSON big and says nothing here: raw rounds, the options and params
    repeated in every benchmark (extra_info has them), the CPU flag list."""
    for bench in data.get("benchmarks", []):
        bench["stats"] = {k: bench["stats"][k] for k in _KEEP_STATS if k in bench["stats"]}
        for key in ("options", "params", "param"):
            bench.pop(key, None)
    data.get("machine_info", {}).get("cpu", {}).pop("flags", None)
    return data


def dump_json(data):
    """JSON text with one benchmark per line: compact, yet diffs stay readable."""
    head = {k: v for k, v in data.items() if k != "benchmarks"}
    rows = ",\n".join(json.dumps(b, separators=(",", ":")) for b in data.get("benchmarks", []))
    return json.dumps(head, indent=1)[:-2] + ',\n "benchmarks": [\n' + rows + "\n]}\n"


# ------------------------------------------------------------------------- parsing ----
def collect(data):
    """``{(kind, op, shape, dtype): {impl: stats}}`` from the benchmarks of a JSON."""
    table = defaultdict(dict)
    for bench in data["benchmarks"]:
        parts = bench["group"].split("|")
        info = bench.get("extra_info", {})
        impl = bench["name"]
        if parts[0] == "threads":
            key = ("threads",) + tuple(parts[1:])
        elif parts[0] in E2E:
            key = ("e2e",) + tuple(parts)
        elif parts[0] == "jit_compile":
            key = ("compile",) + tuple(parts)
        else:
            key = ("op",) + tuple(parts)
        table[key][impl] = dict(bench["stats"], extra_info=info)
    return table


def fmt_time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(base, value):
    if not base or not value or base == value:
        return ""
    return f" (×{base / value:.3g})"


def _shape_order(name):
    # the small shape first, then SimpleConvNet, then DeepConvNet in layer order
    return (0 if name == "small" else 1 if name.startswith("simple") else 2, name)


# ------------------------------------------------------------------------- writing ----
def machine_section(data):
    mi = data.get("machine_info", {})
    fc = mi.get("fastconv", {})
    ci = data.get("commit_info", {})
    blas = fc.get("blas", {})
    build = blas.get("build", {})
    pools = blas.get("threadpools")
    pools = (", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} "
                       f"threads)" for p in pools) if isinstance(pools, list) else pools)
    lines = [
        "## Machine",
        "",
        f"- CPU: {fc.get('cpu_model') or mi.get('cpu', {}).get('brand_raw')}, "
        f"{fc.get('cpu_count')} logical cores ({mi.get('system')} {mi.get('release')})",
        f"- Python {fc.get('python')}, NumPy {fc.get('numpy')}, Numba {fc.get('numba')}, "
        f"PyTorch {fc.get('torch') or 'not installed'}",
        f"- BLAS (NumPy): {build.get('name', build) if isinstance(build, dict) else build} "
        f"{build.get('version', '') if isinstance(build, dict) else ''}; runtime: {pools}",
        f"- Numba threads: {fc.get('numba_threads')} of {fc.get('numba_max_threads')}, "
        f"threading layer `{fc.get('numba_threading_layer')}`, fastmath {fc.get('fastmath')}; "
        f"torch threads: {fc.get('torch_threads', '-')}",
        f"- Environment: {fc.get('env') or '{}'}",
        f"- Run: {data.get('datetime', '?')}, commit {str(ci.get('id', '?'))[:10]}"
        f"{' (dirty tree)' if ci.get('dirty') else ''}, pytest-benchmark {data.get('version')}",
        "",
    ]
    return lines


def op_table(table, op, impls):
    """Markdown table of one op: a row per shape and dtype, a column per implementation."""
    keys = sorted((k for k in table if k[0] == "op" and k[1] == op),
                  key=lambda k: (_shape_order(k[2]), k[3] != "float64"))
    if not keys:
        return []
    lines = ["| shape | dtype | " + " | ".join(impls) + " |",
             "|---|---|" + "---:|" * len(impls)]
    for key in keys:
        row = table[key]
        base = row.get(BASE, {}).get("median")
        cells = []
        for impl in impls:
            if impl in row:
                cells.append(fmt_time(row[impl]["median"]) + fmt_ratio(base, row[impl]["median"]))
            else:
                cells.append("n/a" if impl == "naive" else "-")
        lines.append(f"| {key[2]} | {key[3]} | " + " | ".join(cells) + " |")
    return lines + [""]


def summary_table(table, impls):
    lines = ["| op | shape | dtype | " + " | ".join(i for i in impls if i != "naive") + " |",
             "|---|---|---|" + "---:|" * (len(impls) - ("naive" in impls))]
    rows = [k for k in table if k[0] == "op"
            and k[2].split("@")[0] == SUMMARY_SHAPE["pool" if "pool" in k[1] else "conv"]]
    rows += [k for k in table if k[0] == "e2e"]
    order = {op: i for i, op in enumerate(OPS + E2E)}
    for key in sorted(rows, key=lambda k: (order.get(k[1], 99), k[2], k[3] != "float64")):
        row = table[key]
        base = row.get(BASE, {}).get("median")
        cells = [fmt_time(row[i]["median"]) + fmt_ratio(base, row[i]["median"])
                 if i in row else "-" for i in impls if i != "naive"]
        lines.append(f"| {key[1]} | {key[2]} | {key[3]} | " + " | ".join(cells) + " |")
    return lines + [""]


def threads_table(table):
    keys = sorted(k for k in table if k[0] == "threads")
    if not keys:
        return []
    lines = ["| op | shape | impl | 1 thread | 2 threads | speed-up |", "|---|---|---|---:|---:|---:|"]
    for key in keys:
        row = table[key]
        for impl in IMPLS:
            one, two = row.get(f"{impl}@1t"), row.get(f"{impl}@2t")
            if one is None:
                continue
            t1, t2 = one["median"], two["median"] if two else None
            speed = f"×{t1 / t2:.3g}" if t2 else "-"
            lines.append(f"| {key[1]} | {key[2]} | {impl} | {fmt_time(t1)} | {fmt_time(t2)} "
                         f"| {speed} |")
    blas = {str(s["extra_info"].get("blas_threads")) for k in keys for s in table[k].values()}
    lines += ["", f"BLAS threads in these runs: {', '.join(sorted(blas))} "
              "(set through threadpoolctl when it is installed).", ""]
    return lines


def compile_table(table):
    keys = [k for k in table if k[0] == "compile"]
    lines = []
    for key in keys:
        row = table[key]
        names = [n for n in ("cold", "cached") if n in row]
        kernels = list(row[names[0]]["extra_info"].get("first_call_s", {}))
        lines += [f"Steps: `{key[2]}` (parallel kernels, {key[3]}).", "",
                  "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names),
                  "| process wall time (median) | "
                  + " | ".join(fmt_time(row[n]["median"]) for n in names) + " |",
                  "| import of fastconv.layers | "
                  + " | ".join(fmt_time(row[n]["extra_info"].get("import_s")) for n in names)
                  + " |"]
        for kernel in kernels:
            lines.append(f"| first call: {kernel} | " + " | ".join(
                fmt_time(row[n]["extra_info"]["first_call_s"].get(kernel)) for n in names) + " |")
        lines.append("")
    return lines


def write_report(data, out_dir, png_name="ops.png"):
    """Write REPORT.md (and the PNG) for a pytest-benchmark JSON ``data`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = collect(data)
    present = {impl for k, row in table.items() if k[0] in ("op", "e2e") for impl in row}
    impls = [i for i in IMPLS if i in present]
    fc = data.get("machine_info", {}).get("fastconv", {})
    smoke = fc.get("env", {}).get("FASTCONV_BENCH_SMOKE") == "1"
    png_ok = plot(table, impls, out_dir / png_name)

    lines = ["# fastconv benchmark report", ""]
    if smoke:
        lines += ["**Smoke run (batch 2, one round): these numbers only show that the suite "
                  "runs.**", ""]
    lines += [
        "Medians of pytest-benchmark (warm-up on: JIT compilation is never timed; it is "
        "measured on its own below). In parentheses: the speed-up over `numpy_im2col`, the "
        "book's NumPy algorithm (×2 = twice as fast, ×0.5 = half as fast).",
        "",
        "`naive` (plain Python loops) runs only on the `small` shape: on the networks' "
        "shapes one call takes seconds (pooling, im2col) to minutes (a `deep_conv2` "
        "forward), and a benchmark needs many calls. "
        "`numpy_im2col` is the book's code as is, which computes in float64 whatever the "
        "input, so its float32 rows are what the book does with float32 data; the other "
        "columns compute in float32 there (fastconv in its float32 mode), except fastconv's "
        "`im2col`/`col2im`, which keep the book's `util` API (float64 out).",
        "",
    ]
    lines += [
        "Implementations (`tests/registry.py`, each checked against `naive` by "
        "`tests/test_registry.py`): `naive` plain Python loops; `numpy_im2col` the book's "
        "im2col + `np.dot`; `numpy_strided` `sliding_window_view` + one GEMM; `numba_serial` / "
        "`numba_parallel` fastconv's kernels in their serial / `prange` variants (their GEMMs "
        "run in BLAS, on one BLAS thread per fastconv thread); `torch` "
        "PyTorch CPU with as many threads as Numba.",
        "",
    ]
    lines += machine_section(data)
    if png_ok:
        lines += [f"![median time per op, log scale]({png_name})", ""]
    lines += ["## Summary", "",
              "Each op on its heaviest layer (`deep_conv2`, `simple_pool1`) and the networks "
              "end to end (`train_step`: gradient + Adam update + loss at batch 100; "
              "`inference`: accuracy over 10,000 images, 100 at a time).", ""]
    lines += summary_table(table, impls)
    lines += ["## Operations", "",
              "Shapes: `small` (the only one the loops run on), `simple_*` = SimpleConvNet, "
              "`deep_*` = DeepConvNet, all at batch 100 (the book's Trainer). im2col and col2im "
              "use each convolution's window.", ""]
    for op in OPS:
        body = op_table(table, op, impls)
        if body:
            lines += [f"### {op}", ""] + body
    e2e_keys = [k for k in table if k[0] == "e2e"]
    if e2e_keys:
        lines += ["## End to end", ""]
        e2e_impls = [i for i in impls if i != "naive"]
        lines += ["| benchmark | network | dtype | " + " | ".join(e2e_impls) + " |",
                  "|---|---|---|" + "---:|" * len(e2e_impls)]
        for key in sorted(e2e_keys, key=lambda k: (k[1], k[2], k[3] != "float64")):
            row = table[key]
            base = row.get(BASE, {}).get("median")
            lines.append(f"| {key[1]} | {key[2]} | {key[3]} | " + " | ".join(
                fmt_time(row[i]["median"]) + fmt_ratio(base, row[i]["median"])
                if i in row else "-" for i in e2e_impls) + " |")
        lines.append("")
    threads = threads_table(table)
    if threads:
        lines += ["## Thread scaling", ""] + threads
    compile_lines = compile_table(table)
    if compile_lines:
        lines += ["## JIT compile time", "",
                  "Fresh processes calling each layer of the book's API once (forward and "
                  "backward, tiny inputs): `cold` with an empty "
                  "`NUMBA_CACHE_DIR` (everything compiles), `cached` with the on-disk cache "
                  "filled by an earlier process.", ""] + compile_lines
    (out_dir / "REPORT.md").write_text("\n".join(lines))
    if not smoke and out_dir.resolve() == RESULTS.resolve():
        summary = [line for line in machine_section(data) if not line.startswith("#")]
        if png_ok:
            summary += [f"![median time per op, log scale](bench/results/{png_name})", ""]
        summary += ["### Summary (medians; in parentheses the speed-up over the book's NumPy "
                    "im2col)", "", "Each op on its heaviest layer (`deep_conv2`, "
                    "`simple_pool1`) and the networks end to end (`train_step`: gradient + "
                    "Adam update + loss at batch 100; `inference`: accuracy over 10,000 images, "
                    "100 at a time).", ""] + summary_table(table, impls)
        for name in READMES:
            update_readme(summary, ROOT / name)
    return out_dir / "REPORT.md"


README_BEGIN = "<!-- bench-report:begin (written by python -m bench.report) -->"
README_END = "<!-- bench-report:end -->"
# README.md and its translations, which carry the same block (bench/readmes.py checks them)
READMES = ("README.md", "README.ja.md", "README.zh-CN.md", "README.ko.md")


def update_readme(block, readme=ROOT / "README.md"):
    """Put ``block`` (lines) between the README's bench-report markers; no markers, no change."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    body = "\n".join(line for line in block).strip("\n")
    readme.write_text(f"{head}{README_BEGIN}\n{body}\n{README_END}{tail}", encoding="utf-8")
    return True


# ------------------------------------------------------------------------- plotting ----
def plot(table, impls, path):
    """Bar chart (log scale) of the float64 medians: a panel per op, per shape a bar group."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return False
    panels = [("op", op) for op in OPS] + [("e2e", kind) for kind in E2E]
    panels = [p for p in panels if any(k[0] == p[0] and k[1] == p[1] for k in table)]
    if not panels:
        return False
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = dict(zip(IMPLS, plt.get_cmap("tab10").colors))
    for ax, (kind, name) in zip(axes.flat, panels):
        keys = sorted((k for k in table if k[0] == kind and k[1] == name and k[3] == "float64"),
                      key=lambda k: _shape_order(k[2]))
        width = 0.8 / len(impls)
        for j, impl in enumerate(impls):
            xs = [i + (j - (len(impls) - 1) / 2) * width for i, k in enumerate(keys)
                  if impl in table[k]]
            ys = [table[k][impl]["median"] for k in keys if impl in table[k]]
            ax.bar(xs, ys, width, label=impl, color=colors[impl])
        ax.set_yscale("log")
        ax.set_title(f"{name} (float64)", fontsize=10)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([k[2] for k in keys], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("median time [s]", fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(impls), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# ------------------------------------------------------------------------- main ----
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    pytest_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="batch 2, one round")
    mode.add_argument("--quick", action="store_true", help="fewer rounds per benchmark")
    mode.add_argument("--from-json", metavar="FILE", help="report on a saved JSON, run nothing")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: bench/results, "
                        "bench/results/smoke with --smoke, the JSON's own with --from-json)")
    args = parser.parse_args(argv)
    if args.out:
        out_dir = Path(args.out)
    elif args.from_json:
        out_dir = Path(args.from_json).resolve().parent  # beside the JSON it reports on
    else:
        out_dir = RESULTS / "smoke" if args.smoke else RESULTS

    rc = 0
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.json"
            rc = run_suite(raw, args.smoke, args.quick, pytest_args)
            if not raw.exists():
                print(f"pytest exited with {rc} and saved no JSON", file=sys.stderr)
                return rc or 1
            data = slim(json.loads(raw.read_text()))
        (out_dir / "benchmark.json").write_text(dump_json(data))
        print(f"saved {out_dir / 'benchmark.json'}")
    report = write_report(data, out_dir)
    print(f"wrote {report} and {out_dir / 'ops.png'}")
    if rc:
        print(f"warning: pytest exited with {rc}; the report covers what ran", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
