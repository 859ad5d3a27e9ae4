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
import time
import traceback

from .trainer import Trainer

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
class _ProgressTrainer(Trainer):
    """The book's Trainer with a tqdm bar and per-epoch timings instead of prints."""

    def train(self, progress=True):
        """Run the book's ``max_iter`` steps, then its final evaluation on the whole test set
        (``final_test_acc``), with the train accuracy on the per-epoch sample beside it
        (``final_train_acc``); the bar shows the latest evaluation."""
        from tqdm import tqdm
        self.epoch_starts = []
        bar = tqdm(total=self.max_iter, unit="step", disable=not progress,
                   dynamic_ncols=True, mininterval=0.5)
        postfix = {}
        with bar:
            for _ in range(self.max_iter):
                evaluated = len(self.train_acc_list)
                self.train_step()
                postfix = {"epoch": f"{max(self.current_epoch, 1)}/{self.epochs}",
                           "loss": f"{self.train_loss_list[-1]:.4f}"}
                if len(self.train_acc_list) > evaluated:  # an epoch began: the book prints
                    self.epoch_starts.append(time.perf_counter())
                    elapsed = self.epoch_starts[-1] - self.epoch_starts[0]
                    bar.write(f"epoch {self.current_epoch}/{self.epochs} [{elapsed:.1f} s]: "
                              f"train acc {self.train_acc_list[-1]:.4f}, "
                              f"test acc {self.test_acc_list[-1]:.4f}")
                if self.train_acc_list:
                    postfix["train_acc"] = f"{self.train_acc_list[-1]:.4f}"
                    postfix["test_acc"] = f"{self.test_acc_list[-1]:.4f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
            self.end_time = time.perf_counter()
            n = self.evaluate_sample_num_per_epoch
            self.final_train_acc = float(self.network.accuracy(self.x_train[:n],
                                                               self.t_train[:n]))
            self.final_test_acc = float(self.network.accuracy(self.x_test, self.t_test))
            postfix.update(train_acc=f"{self.final_train_acc:.4f}",
                           test_acc=f"{self.final_test_acc:.4f}")
            bar.set_postfix(postfix, refresh=True)


def _loss_summary(losses, iter_per_epoch):
    import numpy as np
    loss = np.asarray(losses, dtype=np.float64)
    step = max(int(round(iter_per_epoch)), 1)
    per_epoch = [float(loss[i:i + step].mean()) for i in range(0, len(loss), step)]
    return {"first": float(loss[0]), "last": float(loss[-1]), "min": float(loss.min()),
            "mean_last_epoch": per_epoch[-1], "per_epoch_mean": per_epoch,
            "iterations": int(loss.size)}


@command("train", help="train SimpleConvNet (default) or DeepConvNet on MNIST with the "
                       "book's settings")
def _train_command(parser):
    _add_common_options(parser)
    parser.add_argument("--epochs", type=_positive_int, default=20, help="default 20")
    parser.add_argument("--train-size", type=_positive_int, default=None,
                        help="use the first N training images (default: all 60,000)")
    parser.add_argument("--batch-size", type=_positive_int, default=100, help="default 100")
    parser.add_argument("--lr", type=float, default=0.001, help="Adam learning rate "
                        "(default 0.001)")
    parser.add_argument("--eval-samples", type=_positive_int, default=1000,
                        help="train/test images evaluated per epoch (default 1000)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed np.random before building the network")
    parser.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return _train


def _train(args):
    import numpy as np

    from . import __version__, config
    from .models import MODELS
    from .plots import plot_accuracy, plot_filters, plot_loss

    start = time.perf_counter()
    _require_matplotlib()
    out = args.out or os.path.join("runs", args.model)
    _make_dir(out)
    threads = _set_threads(args.threads)
    (x_train, t_train), (x_test, t_test) = _load_data()
    if args.train_size is not None:
        if args.train_size > len(x_train):
            raise CommandError(f"--train-size {args.train_size} exceeds the {len(x_train)} "
                               "training images")
        x_train, t_train = x_train[:args.train_size], t_train[:args.train_size]

    with _dtype_mode(args.dtype) as dtype:
        if dtype == np.float32:  # float32 mode: data in float32 too (the loader's already are)
            x_train = x_train.astype(np.float32, copy=False)
            x_test = x_test.astype(np.float32, copy=False)
        if args.seed is not None:
            np.random.seed(args.seed)
        network = MODELS[args.model](dtype=dtype)
        W1_before = network.params['W1'].copy()
        print(f"fastconv train: {type(network).__name__}, {len(x_train)} training images, "
              f"{args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr}, {args.dtype}, "
              f"{threads} threads", flush=True)
        trainer = _ProgressTrainer(
            network, x_train, t_train, x_test, t_test, epochs=args.epochs,
            mini_batch_size=args.batch_size, optimizer='Adam', optimizer_param={'lr': args.lr},
            evaluate_sample_num_per_epoch=args.eval_samples, verbose=False)
        train_start = time.perf_counter()
        trainer.train(progress=not args.no_progress)
        train_time = trainer.end_time - train_start
        test_acc = trainer.final_test_acc
        params_path = os.path.join(out, "params.pkl")
        network.save_params(params_path)

    title = f"{type(network).__name__} on MNIST ({len(x_train)} training images, {args.dtype})"
    # the book's evaluations at the start of each epoch, then the final one after the last
    curve = {"epochs": list(range(len(trainer.train_acc_list))) + [args.epochs],
             "train_acc": [float(a) for a in trainer.train_acc_list] + [trainer.final_train_acc],
             "test_acc": [float(a) for a in trainer.test_acc_list] + [test_acc]}
    plot_accuracy(curve["train_acc"], curve["test_acc"], os.path.join(out, "accuracy.png"),
                  title=title, epochs=curve["epochs"])
    plot_loss(trainer.train_loss_list, os.path.join(out, "loss.png"),
              iter_per_epoch=trainer.iter_per_epoch, title=title)
    plot_filters(W1_before, network.params['W1'], os.path.join(out, "filters.png"))

    marks = trainer.epoch_starts + [trainer.end_time]
    epoch_times = [b - a for a, b in zip(marks, marks[1:])]
    steps_per_s = trainer.max_iter / train_time if train_time > 0 else float("nan")
    wall = time.perf_counter() - start
    metrics = {
        "model": type(network).__name__,
        "settings": {"epochs": args.epochs, "mini_batch_size": args.batch_size,
                     "optimizer": "Adam", "lr": args.lr, "train_size": len(x_train),
                     "test_size": len(x_test), "evaluate_sample_num_per_epoch": args.eval_samples,
                     "dtype": args.dtype, "threads": threads,
                     "parallel": config.parallel_enabled(), "seed": args.seed},
        "train_acc": [float(a) for a in trainer.train_acc_list],
        "test_acc": [float(a) for a in trainer.test_acc_list],
        "accuracy_curve": curve,
        "loss": _loss_summary(trainer.train_loss_list, trainer.iter_per_epoch),
        "final_test_acc": test_acc,
        "wall_time_s": wall, "train_time_s": train_time, "epoch_times_s": epoch_times,
        "iterations": trainer.max_iter, "steps_per_s": steps_per_s,
        "versions": {"fastconv": __version__, "numpy": np.__version__},
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)

    per_epoch = train_time / args.epochs
    print(f"test accuracy: {test_acc:.4f} ({len(x_test)} test images)")
    print(f"wall time: {wall:.1f} s (training {train_time:.1f} s, {per_epoch:.2f} s/epoch, "
          f"{steps_per_s:.1f} steps/s)")
    print(f"wrote params.pkl, accuracy.png, loss.png, filters.png, metrics.json to {out}")
    return 0


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
