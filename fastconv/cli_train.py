"""``fastconv train``: the book's Trainer with a progress bar, checkpoints, Ctrl-C and resume.

A checkpoint (:mod:`fastconv.checkpoint`) is written into the output folder at the end of
every epoch and every ``--checkpoint-every`` steps; the last two are kept. The first Ctrl-C
(or SIGTERM) lets the current step finish, writes a checkpoint, the figures and the metrics
so far and exits with 130 (143); a second one stops at once. ``--resume DIR`` continues the
run from its newest sound checkpoint and ends with the bits of a run that never stopped.
"""
import json
import os
import shlex
import signal
import sys
import threading
import time

from ._safeio import atomic_write
from .checkpoint import CheckpointError, CheckpointFolder
from .cli import (CommandError, _add_common_options, _dtype_mode, _load_data, _make_dir,
                  _positive_int, _require_matplotlib, _set_threads, command)
from .trainer import Trainer

# the run's settings, as options, and their defaults for a new run; a resumed run has the
# checkpoint's, and refuses different ones on its command line (except a larger --epochs)
_DEFAULTS = {"model": "simple", "dtype": "float64", "epochs": 20, "train_size": None,
             "batch_size": 100, "lr": 0.001, "eval_samples": 1000, "seed": None}


class _ProgressTrainer(Trainer):
    """The book's Trainer with a tqdm bar, per-epoch timings, a stop flag, and the command's
    settings, initial filters and timings in its checkpoints."""

    def __init__(self, *args, run, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run
        self.W1_initial = self.network.params['W1'].copy()
        self.time_offset = 0.0  # training seconds spent by the processes before this one
        self.epoch_marks = []  # training seconds at each epoch's evaluation
        self.resumed_at = []
        self.interrupted = None  # the signal that stopped the loop
        self.train_time = 0.0
        self._t0 = time.perf_counter()

    def clock(self):
        """Seconds of training so far, the earlier processes of a resumed run included."""
        return self.time_offset + time.perf_counter() - self._t0

    def checkpoint_state(self):
        arrays, info = super().checkpoint_state()
        arrays["run/W1_initial"] = self.W1_initial
        info["run"] = dict(self.run, train_time_s=self.clock(), epoch_marks=self.epoch_marks,
                           resumed_at=self.resumed_at)
        return arrays, info

    def restore(self, checkpoint):
        super().restore(checkpoint)
        run = checkpoint.info["run"]
        self.W1_initial = checkpoint.arrays["run/W1_initial"]
        self.epoch_marks = list(run["epoch_marks"])
        self.resumed_at = list(run["resumed_at"]) + [checkpoint.step]
        self.time_offset = float(run["train_time_s"])

    def train(self, progress=True, stop=None):
        """Run the rest of the book's ``max_iter`` steps, then its final evaluation on the
        whole test set (``final_test_acc``), with the train accuracy on the per-epoch sample
        beside it (``final_train_acc``); the bar shows the latest evaluation.

        After a step in which ``stop.signum`` was set, stop (``interrupted``) without the
        final evaluation; after the last step, ``stop.release()``.
        """
        from tqdm import tqdm
        self._t0 = time.perf_counter()
        bar = tqdm(total=self.max_iter, initial=self.current_iter, unit="step",
                   disable=not progress, dynamic_ncols=True, mininterval=0.5)
        postfix = {}
        with bar:
            for _ in range(self.start_iter, self.max_iter):
                evaluated = len(self.train_acc_list)
                self.train_step()
                postfix = {"epoch": f"{max(self.current_epoch, 1)}/{self.epochs}",
                           "loss": f"{self.train_loss_list[-1]:.4f}"}
                if len(self.train_acc_list) > evaluated:  # an epoch began: the book prints
                    self.epoch_marks.append(self.clock())
                    elapsed = self.epoch_marks[-1] - self.epoch_marks[0]
                    bar.write(f"epoch {self.current_epoch}/{self.epochs} [{elapsed:.1f} s]: "
                              f"train acc {self.train_acc_list[-1]:.4f}, "
                              f"test acc {self.test_acc_list[-1]:.4f}")
                if self.train_acc_list:
                    postfix["train_acc"] = f"{self.train_acc_list[-1]:.4f}"
                    postfix["test_acc"] = f"{self.test_acc_list[-1]:.4f}"
                bar.set_postfix(postfix, refresh=False)
                self.checkpoint_if_due()
                bar.update(1)
                if stop is not None and stop.signum is not None:
                    self.interrupted = stop.signum
                    break
            self.train_time = self.clock()
            if self.interrupted is not None:
                return
            if stop is not None:
                stop.release()
            n = self.evaluate_sample_num_per_epoch
            self.final_train_acc = float(self.network.accuracy(self.x_train[:n],
                                                               self.t_train[:n]))
            self.final_test_acc = float(self.network.accuracy(self.x_test, self.t_test))
            postfix.update(train_acc=f"{self.final_train_acc:.4f}",
                           test_acc=f"{self.final_test_acc:.4f}")
            bar.set_postfix(postfix, refresh=True)


class _Signals:
    """SIGINT and SIGTERM while training: the first sets ``signum`` (the loop stops after its
    step); the second raises KeyboardInterrupt at once and sets ``second``."""

    def __init__(self):
        self.signum = self.second = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # the only one Python lets
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            return
        self.second = signum
        raise KeyboardInterrupt

    def release(self):
        """Give the signals back to the handlers from before."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __exit__(self, *exc):
        self.release()


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
    parser.add_argument("--epochs", type=_positive_int, help="default 20")
    parser.add_argument("--train-size", type=_positive_int,
                        help="use the first N training images (default: all 60,000)")
    parser.add_argument("--batch-size", type=_positive_int, help="default 100")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 0.001)")
    parser.add_argument("--eval-samples", type=_positive_int,
                        help="train/test images evaluated per epoch (default 1000)")
    parser.add_argument("--seed", type=int, help="seed np.random before building the network")
    parser.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    parser.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                        help="also write a checkpoint every N steps (one is written at the end "
                             "of every epoch)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run whose --out was DIR "
                        "from its last checkpoint, with its settings (--epochs may raise the "
                        "total)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(model=None, dtype=None)  # given or not: a resumed run must know
    return _train


def _warn(message):
    print(f"fastconv train: warning: {message}", file=sys.stderr)


def _new_run(args):
    """The settings of a new run: the options given, else the defaults."""
    run = {name: default if getattr(args, name) is None else getattr(args, name)
           for name, default in _DEFAULTS.items()}
    run["checkpoint_every"] = args.checkpoint_every
    out = args.out or os.path.join("runs", run["model"])
    try:
        found = CheckpointFolder(out).latest()
    except CheckpointError:
        found = None  # none can be read: nothing to lose
    if found is not None and found.step < found.info.get("max_iter", 0):
        raise CommandError(f"{out} holds an unfinished run (step {found.step} of "
                           f"{found.info['max_iter']}): continue it with `fastconv train "
                           f"--resume {shlex.quote(out)}`, or delete its checkpoint-*.npz "
                           "files to start over")
    return None, run, out


def _resumed_run(args):
    """The newest sound checkpoint in ``--resume DIR`` and its run's settings, checked
    against the options given."""
    out = args.resume
    if args.out is not None and os.path.abspath(args.out) != os.path.abspath(out):
        raise CommandError(f"--out {args.out}: a resumed run writes into its own folder {out}")
    try:
        found = CheckpointFolder(out).latest(warn=_warn)
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    if found is None:
        raise CommandError(f"--resume {out}: no checkpoint (checkpoint-*.npz) there")
    run = found.info.get("run")
    if not isinstance(run, dict) or set(_DEFAULTS) - set(run):
        raise CommandError(f"{found.path} was not written by fastconv train")
    for name in _DEFAULTS:
        given = getattr(args, name)
        if given is None or given == run[name] or (name == "epochs" and given > run[name]):
            continue
        option = "--" + name.replace("_", "-")
        rule = "may only raise it" if name == "epochs" else "keeps its settings"
        raise CommandError(f"{option} {given} differs from the run's {run[name]} in "
                           f"{found.path}: a resumed run {rule}")
    run = dict(run, epochs=max(args.epochs or 0, run["epochs"]))
    if args.checkpoint_every is not None:
        run["checkpoint_every"] = args.checkpoint_every
    return found, run, out


def _train(args):
    import numpy as np

    from .models import MODELS

    start = time.perf_counter()
    _require_matplotlib()
    found, run, out = _resumed_run(args) if args.resume is not None else _new_run(args)
    _make_dir(out)
    threads = _set_threads(args.threads)
    (x_train, t_train), (x_test, t_test) = _load_data()
    if run["train_size"] is not None:
        if run["train_size"] > len(x_train):
            raise CommandError(f"--train-size {run['train_size']} exceeds the {len(x_train)} "
                               "training images")
        x_train, t_train = x_train[:run["train_size"]], t_train[:run["train_size"]]
    run["train_size"] = len(x_train)

    with _dtype_mode(run["dtype"]) as dtype:
        if dtype == np.float32:  # float32 mode: data in float32 too (the loader's already are)
            x_train = x_train.astype(np.float32, copy=False)
            x_test = x_test.astype(np.float32, copy=False)
        if run["seed"] is not None:
            np.random.seed(run["seed"])
        network = MODELS[run["model"]](dtype=dtype)
        trainer = _ProgressTrainer(
            network, x_train, t_train, x_test, t_test, epochs=run["epochs"],
            mini_batch_size=run["batch_size"], optimizer='Adam',
            optimizer_param={'lr': run["lr"]}, evaluate_sample_num_per_epoch=run["eval_samples"],
            verbose=False, checkpoint_dir=out, checkpoint_every=run["checkpoint_every"], run=run)
        print(f"fastconv train: {type(network).__name__}, {len(x_train)} training images, "
              f"{run['epochs']} epochs, batch {run['batch_size']}, Adam lr {run['lr']}, "
              f"{run['dtype']}, {threads} threads", flush=True)
        if found is not None:
            try:
                trainer.restore(found)
            except CheckpointError as exc:
                raise CommandError(str(exc)) from None
            print(f"fastconv train: resuming from {found.path} (step {found.step} of "
                  f"{trainer.max_iter}, epoch {trainer.current_epoch})", flush=True)
        hint = f"fastconv train --resume {shlex.quote(out)}"
        stop = _Signals()
        try:
            with stop:
                trainer.train(progress=not args.no_progress, stop=stop)
                if trainer.interrupted is not None:
                    print("fastconv train: stopping: writing a checkpoint and the outputs so "
                          "far (press Ctrl-C again to stop at once)", file=sys.stderr,
                          flush=True)
                    path = trainer.save_checkpoint()
                    _write_outputs(trainer, out, threads, start)
                    name = signal.Signals(trainer.interrupted).name
                    print(f"fastconv train: stopped by {name} after step {trainer.current_iter}"
                          f" of {trainer.max_iter}; wrote {os.path.basename(path)}, the figures "
                          f"and metrics.json to {out}\nresume with: {hint}", file=sys.stderr)
                    return 128 + trainer.interrupted
        except KeyboardInterrupt:
            done = trainer.checkpoints.lineage
            where = (f"the last complete checkpoint is {done[-1]}; resume with: {hint}" if done
                     else "no checkpoint was written yet")
            print(f"fastconv train: stopped at once: {where}", file=sys.stderr)
            return 128 + (stop.second or signal.SIGINT)
        network.save_params(os.path.join(out, "params.pkl"))

    metrics = _write_outputs(trainer, out, threads, start)
    per_epoch = trainer.train_time / run["epochs"]
    print(f"test accuracy: {metrics['final_test_acc']:.4f} ({len(x_test)} test images)")
    print(f"wall time: {metrics['wall_time_s']:.1f} s (training {trainer.train_time:.1f} s, "
          f"{per_epoch:.2f} s/epoch, {metrics['steps_per_s']:.1f} steps/s)")
    print(f"wrote params.pkl, accuracy.png, loss.png, filters.png, metrics.json to {out}")
    return 0


def _write_outputs(trainer, out, threads, start):
    """accuracy.png, loss.png, filters.png and metrics.json of the run so far (with the final
    evaluation once it is complete); returns the metrics."""
    import numpy as np

    from . import __version__, config
    from .plots import plot_accuracy, plot_filters, plot_loss

    run, network = trainer.run, trainer.network
    done = trainer.interrupted is None
    name = type(network).__name__
    title = f"{name} on MNIST ({run['train_size']} training images, {run['dtype']})"
    # the book's evaluations at the start of each epoch, then the final one after the last
    curve = {"epochs": list(range(len(trainer.train_acc_list))),
             "train_acc": [float(a) for a in trainer.train_acc_list],
             "test_acc": [float(a) for a in trainer.test_acc_list]}
    if done:
        curve["epochs"].append(run["epochs"])
        curve["train_acc"].append(trainer.final_train_acc)
        curve["test_acc"].append(trainer.final_test_acc)
    plot_accuracy(curve["train_acc"], curve["test_acc"], os.path.join(out, "accuracy.png"),
                  title=title, epochs=curve["epochs"])
    plot_loss(trainer.train_loss_list, os.path.join(out, "loss.png"),
              iter_per_epoch=trainer.iter_per_epoch, title=title)
    plot_filters(trainer.W1_initial, network.params['W1'], os.path.join(out, "filters.png"))

    marks = trainer.epoch_marks + [trainer.train_time]
    steps = trainer.current_iter
    metrics = {
        "model": name,
        "settings": {"epochs": run["epochs"], "mini_batch_size": run["batch_size"],
                     "optimizer": "Adam", "lr": run["lr"], "train_size": run["train_size"],
                     "test_size": len(trainer.x_test),
                     "evaluate_sample_num_per_epoch": run["eval_samples"],
                     "dtype": run["dtype"], "threads": threads,
                     "parallel": config.parallel_enabled(), "seed": run["seed"],
                     "checkpoint_every": run["checkpoint_every"]},
        "train_acc": [float(a) for a in trainer.train_acc_list],
        "test_acc": [float(a) for a in trainer.test_acc_list],
        "accuracy_curve": curve,
        "loss": _loss_summary(trainer.train_loss_list, trainer.iter_per_epoch),
        "final_test_acc": trainer.final_test_acc if done else None,
        "wall_time_s": time.perf_counter() - start, "train_time_s": trainer.train_time,
        "epoch_times_s": [b - a for a, b in zip(marks, marks[1:])],
        "iterations": steps, "resumed_at": trainer.resumed_at,
        "steps_per_s": steps / trainer.train_time if trainer.train_time > 0 else float("nan"),
        "versions": {"fastconv": __version__, "numpy": np.__version__},
    }
    if not done:
        metrics["interrupted"] = {"signal": signal.Signals(trainer.interrupted).name,
                                  "step": steps, "of": trainer.max_iter}
    text = json.dumps(metrics, indent=2).encode()
    atomic_write(os.path.join(out, "metrics.json"), lambda f: f.write(text))
    return metrics
