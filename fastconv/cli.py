"""The ``fastconv`` command: ``train``, ``evaluate``, ``run`` and ``info``.

Each subcommand is one function decorated with :func:`command`: it receives its argparse
parser, adds its options and returns the handler ``handler(args) -> exit code``. Adding a
subcommand (e.g. ``bench``) is adding one such function.
"""
import argparse
import contextlib
import json
import os
import sys
import traceback

__all__ = ["main", "command", "CommandError"]

_COMMANDS = []


def command(name, help):
    """Register a subcommand: ``@command("bench", help="...")`` on ``setup(parser)``."""
    def register(setup):
        _COMMANDS.append((name, help, setup))
        return setup
    return register


class CommandError(Exception):
    """A problem the user can fix (missing data, bad file): printed without a traceback."""


def build_parser():
    """The argparse parser with every registered subcommand."""
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="fastconv", description="Numba-accelerated 'Deep Learning from Scratch' layers: "
        "train and evaluate the book's convnets on MNIST, or run the book's scripts on fastconv.")
    parser.add_argument("--version", action="version", version=f"fastconv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help, setup in _COMMANDS:
        sub = subparsers.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=setup(sub))
    return parser


def main(argv=None):
    """Entry point of ``fastconv`` and ``python -m fastconv``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except CommandError as exc:
        print(f"fastconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastconv {args.command}: interrupted", file=sys.stderr)
        return 130


# ------------------------------------------------------------------------- shared helpers ----
def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_common_options(parser):
    parser.add_argument("--model", choices=("simple", "deep"), default="simple",
                        help="SimpleConvNet (ch07, default) or DeepConvNet (ch08)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="float64: the book's numbers (default); float32: float32 mode")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="Numba threads (default: all cores or FASTCONV_NUM_THREADS)")


def _set_threads(threads):
    from . import config
    if threads is not None:
        try:
            config.set_num_threads(threads)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    return config.get_num_threads()


@contextlib.contextmanager
def _dtype_mode(name):
    """float32 mode on or off for the block; yields the parameters' dtype."""
    import numpy as np

    from . import config
    previous = config.keep_dtype()
    config.set_keep_dtype(name == "float32")
    try:
        yield np.float32 if name == "float32" else np.float64
    finally:
        config.set_keep_dtype(previous)


def _load_data():
    """MNIST as the book's ch07/ch08 scripts load it (normalised, 1x28x28, index labels)."""
    from .datasets import MNISTUnavailableError, load_mnist
    try:
        return load_mnist(normalize=True, flatten=False, one_hot_label=False)
    except MNISTUnavailableError as exc:
        raise CommandError(str(exc)) from None
    except (ValueError, OSError) as exc:  # corrupt or unreadable local files
        raise CommandError(f"MNIST files are unusable: {exc}") from None


def _require_matplotlib():
    # fail before a long training run, not after it
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError("the figures need matplotlib: pip install 'fastconv[plots]'") \
            from None


def _make_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create output folder {path}: {exc.strerror or exc}") \
            from None


def _predict_labels(network, x, batch_size=100):
    import numpy as np
    return np.concatenate([np.argmax(network.predict(x[i:i + batch_size]), axis=1)
                           for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------------------------- train ----
# in its own module (checkpoints, signals, resume); imported here to register it first
from . import cli_train  # noqa: E402,F401


# ------------------------------------------------------------------------------- evaluate ----
@command("evaluate", help="test accuracy of a params file and a confusion-matrix PNG")
def _evaluate_command(parser):
    parser.add_argument("--params", required=True, help="params file (the book's format)")
    _add_common_options(parser)
    parser.add_argument("--out", default=None,
                        help="folder of confusion_matrix.png (default: the params file's)")
    return _evaluate


def _other_model_hint(args, dtype):
    """' (it fits --model X)' when the file is the other network's params."""
    from .models import MODELS, ParamsFileError
    for name, model in MODELS.items():
        if name != args.model:
            try:
                model(dtype=dtype).load_params(args.params)
            except ParamsFileError:
                continue
            return f" (it fits --model {name})"
    return ""


def _evaluate(args):
    import numpy as np

    from .models import MODELS, ParamsFileError
    from .plots import plot_confusion

    _require_matplotlib()
    _set_threads(args.threads)
    with _dtype_mode(args.dtype) as dtype:
        network = MODELS[args.model](dtype=dtype)
        try:
            network.load_params(args.params)
        except ParamsFileError as exc:
            raise CommandError(f"{exc}{_other_model_hint(args, dtype)}") from None
        (_, _), (x_test, t_test) = _load_data()
        pred = _predict_labels(network, x_test)
    acc = float(np.mean(pred == t_test))
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (t_test.astype(np.intp), pred), 1)

    out = args.out or os.path.dirname(os.path.abspath(args.params))
    _make_dir(out)
    path = os.path.join(out, "confusion_matrix.png")
    plot_confusion(cm, path, title=f"{type(network).__name__}: test accuracy {acc:.4f} "
                                   f"({len(x_test)} images)")
    print(f"test accuracy: {acc:.4f} ({len(x_test)} test images)")
    per_class = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    print("per class: " + "  ".join(f"{d}:{a:.3f}" for d, a in enumerate(per_class)))
    print(f"wrote {path}")
    return 0


# ------------------------------------------------------------------------------------ run ----
@command("run", help="run a script of the book with its common/ modules served by fastconv")
def _run_command(parser):
    parser.add_argument("--book-dataset", action="store_true",
                        help="leave dataset.mnist to the book's own loader")
    parser.add_argument("script", help="path of the script (run from its chapter folder, "
                                       "as the book does)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the script")
    return _run


def _run(args):
    from .dropin import run_script
    script = os.path.abspath(args.script)
    if not os.path.isfile(script):  # what `python nope.py` says, with its exit code
        print(f"{sys.executable}: can't open file {script!r}: [Errno 2] No such file or "
              "directory", file=sys.stderr)
        return 2
    try:
        run_script(args.script, args.args, dataset=not args.book_dataset)
    except Exception as exc:
        # the traceback `python script.py` prints: from the script's frame on, not fastconv's
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
        return 1
    return 0


@command("info", help="versions, the BLAS the kernels call, threads, cache folder and modes: "
                      "what to look at when fastconv is slow, and to paste into a bug report")
def _info_command(parser):
    parser.add_argument("--json", action="store_true", help="print it as JSON")
    return _info


def _info(args):
    from .info import collect, format_info
    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
