"""The ``fastconv`` command: train / evaluate on a tiny synthetic MNIST, errors, registry.

The data are four small IDX files in a temporary FASTCONV_DATA folder; the loader's SHA-256
table (``fastconv.datasets.mnist.SHA256``, which its API lets tests replace) gets their
digests, and network access is off.
"""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import TouchOnLoad, hide_module
from synthetic import write_tiny_mnist
from fastconv import cli, config
from fastconv.datasets import mnist
from fastconv.models import DeepConvNet, SimpleConvNet

N_TRAIN, N_TEST = 200, 100  # write_tiny_mnist's default sizes
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data_env(mp, folder, home):
    mp.setenv("FASTCONV_DATA", str(folder))
    mp.setenv("FASTCONV_OFFLINE", "1")
    mp.setenv("HOME", str(home))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    return folder, write_tiny_mnist(folder)


@pytest.fixture
def tiny_mnist(data_dir, monkeypatch, tmp_path):
    folder, digests = data_dir
    _data_env(monkeypatch, folder, tmp_path)
    monkeypatch.setattr(mnist, "SHA256", digests)
    return folder


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """One `fastconv train` run shared by the tests that read its outputs."""
    folder, digests = data_dir
    out = tmp_path_factory.mktemp("run") / "simple"
    with pytest.MonkeyPatch.context() as mp:
        _data_env(mp, folder, tmp_path_factory.mktemp("home"))
        mp.setattr(mnist, "SHA256", digests)
        mp.setattr(sys, "stdout", _Tee())
        mp.setattr(sys, "stderr", _Tee())
        # one epoch of 20 steps: enough to learn the bars, and one epoch is the case where
        # the book's per-epoch evaluations alone give a single point taken after one step
        code = cli.main(["train", "--epochs", "1", "--train-size", "200", "--batch-size", "10",
                         "--lr", "0.005", "--seed", "0", "--out", str(out)])
        stdout, stderr = sys.stdout.text(), sys.stderr.text()
    return code, out, stdout, stderr


class _Tee:
    """A minimal text stream that remembers what was written (module-scoped capture)."""

    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False

    def text(self):
        return "".join(self.parts)


# ---------------------------------------------------------------------------------- train ----
def test_train_writes_all_outputs(trained):
    code, out, stdout, stderr = trained
    assert code == 0, stderr
    for name in ("params.pkl", "accuracy.png", "loss.png", "filters.png", "metrics.json"):
        assert (out / name).is_file(), name
    for name in ("accuracy.png", "loss.png", "filters.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert "test accuracy:" in stdout and "wall time:" in stdout and "s/epoch" in stdout
    assert "step/s" in stderr or "s/step" in stderr  # the tqdm bar
    assert "loss=" in stderr


def test_train_metrics_and_params(trained, tiny_mnist):
    code, out, _, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    settings = metrics["settings"]
    assert settings["epochs"] == 1 and settings["train_size"] == N_TRAIN
    assert settings["mini_batch_size"] == 10 and settings["lr"] == 0.005
    assert settings["optimizer"] == "Adam" and settings["seed"] == 0
    assert settings["evaluate_sample_num_per_epoch"] == 1000 and settings["dtype"] == "float64"
    assert metrics["iterations"] == 20 and metrics["loss"]["iterations"] == 20
    assert len(metrics["train_acc"]) == len(metrics["test_acc"]) == 1
    assert len(metrics["epoch_times_s"]) == 1 and metrics["wall_time_s"] > 0
    # it learned: ten classes, so chance is 0.1
    assert metrics["final_test_acc"] >= 0.5
    assert metrics["loss"]["mean_last_epoch"] < metrics["loss"]["first"]

    # params.pkl is the trained network: it reproduces the reported test accuracy
    (_, _), (x_test, t_test) = mnist.load_mnist(flatten=False)
    net = SimpleConvNet()
    net.load_params(str(out / "params.pkl"))
    assert net.accuracy(x_test, t_test) == pytest.approx(metrics["final_test_acc"])
    # and it is not the seeded initial network
    np.random.seed(0)
    assert not np.allclose(SimpleConvNet().params["W1"], net.params["W1"])


def test_train_float32_deep_is_seeded(tiny_mnist, tmp_path, capsys):
    threads = config.get_num_threads()
    runs = []
    for k in range(2):
        out = tmp_path / f"deep{k}"
        args = ["train", "--model", "deep", "--dtype", "float32", "--epochs", "1",
                "--train-size", "100", "--eval-samples", "100", "--seed", "3",
                "--no-progress", "--threads", "1", "--out", str(out)]
        assert cli.main(args) == 0
        with open(out / "params.pkl", "rb") as f:
            runs.append(pickle.load(f))
    assert config.get_num_threads() == 1  # --threads
    config.set_num_threads(threads)
    assert "DeepConvNet" in capsys.readouterr().out
    assert sorted(runs[0]) == sorted(DeepConvNet().params)
    for key, val in runs[0].items():
        assert val.dtype == np.float32
        np.testing.assert_array_equal(val, runs[1][key])  # same seed, same network
    assert not config.keep_dtype()  # float32 mode ends with the command


def test_train_size_too_large(tiny_mnist, tmp_path, capsys):
    assert cli.main(["train", "--train-size", "5000", "--out", str(tmp_path)]) == 2
    assert "exceeds the 200 training images" in capsys.readouterr().err


def test_accuracy_plot_and_progress_bar_end_with_the_final_evaluation(trained, tiny_mnist):
    """The figure's points: the book's evaluation at the start of each epoch (x = 0 for a
    one-epoch run), then the final one after the last epoch, on the whole test set; the bar's
    last line shows that final evaluation."""
    code, out, _, stderr = trained
    metrics = json.loads((out / "metrics.json").read_text())
    curve = metrics["accuracy_curve"]
    assert curve["epochs"] == [0, 1]
    assert curve["test_acc"] == metrics["test_acc"] + [metrics["final_test_acc"]]
    assert curve["train_acc"][:-1] == metrics["train_acc"]
    # the final train point: the first --eval-samples training images, as per epoch
    (x_train, t_train), _ = mnist.load_mnist(flatten=False)
    net = SimpleConvNet()
    net.load_params(str(out / "params.pkl"))
    assert curve["train_acc"][-1] == pytest.approx(net.accuracy(x_train[:1000], t_train[:1000]))
    assert curve["test_acc"][-1] > curve["test_acc"][0]  # after training, not before
    last_bar = stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert f"test_acc={metrics['final_test_acc']:.4f}" in last_bar, last_bar
    assert f"train_acc={curve['train_acc'][-1]:.4f}" in last_bar, last_bar


# ------------------------------------------------------------------------------- evaluate ----
def test_evaluate_prints_accuracy_and_writes_confusion_matrix(trained, tiny_mnist, capsys):
    _, out, _, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert cli.main(["evaluate", "--params", str(out / "params.pkl")]) == 0
    stdout = capsys.readouterr().out
    assert f"test accuracy: {metrics['final_test_acc']:.4f} ({N_TEST} test images)" in stdout
    assert (out / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC


def test_evaluate_out_folder(trained, tiny_mnist, tmp_path):
    _, out, _, _ = trained
    assert cli.main(["evaluate", "--params", str(out / "params.pkl"),
                     "--out", str(tmp_path / "cm")]) == 0
    assert (tmp_path / "cm" / "confusion_matrix.png").is_file()


# --------------------------------------------------------------------------------- errors ----
def _no_traceback(err):
    assert "Traceback" not in err
    return err


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    _data_env(monkeypatch, tmp_path / "empty", tmp_path)
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "o")]) == 2
    err = _no_traceback(capsys.readouterr().err)
    assert err.startswith("fastconv train: error: MNIST could not be loaded")
    assert "FASTCONV_DATA" in err


def test_missing_data_from_the_shell(tmp_path):
    env = dict(os.environ, FASTCONV_DATA=str(tmp_path / "empty"), FASTCONV_OFFLINE="1",
               HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "fastconv", "train", "--out",
                           str(tmp_path / "o")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "MNIST could not be loaded" in _no_traceback(proc.stderr)


def test_corrupt_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    write_tiny_mnist(folder)  # but the real MNIST digests stay in the table
    _data_env(monkeypatch, folder, tmp_path)
    assert cli.main(["evaluate", "--params", _params_file(tmp_path)]) == 2
    err = _no_traceback(capsys.readouterr().err)
    assert "MNIST files are unusable" in err and "SHA-256" in err


def _params_file(tmp_path):
    path = tmp_path / "ok.pkl"
    SimpleConvNet().save_params(str(path))
    return str(path)


def test_bad_params_files_are_clear_errors(tiny_mnist, tmp_path, capsys):
    text = tmp_path / "text.pkl"
    text.write_text("not a pickle\n")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"W1": TouchOnLoad(marker)}))
    deep = tmp_path / "deep.pkl"
    DeepConvNet().save_params(str(deep))
    cases = [(text, "not a valid params file"),
             (evil, "refusing to load the global posix.system"),
             (deep, "keys do not match SimpleConvNet"),
             (tmp_path / "absent.pkl", "cannot read params file")]
    for path, message in cases:
        assert cli.main(["evaluate", "--params", str(path)]) == 2, path
        err = _no_traceback(capsys.readouterr().err)
        assert err.startswith("fastconv evaluate: error: ") and message in err, err
    assert not marker.exists()
    # the other model's params: the error says which --model fits
    assert cli.main(["evaluate", "--params", str(deep)]) == 2
    assert "(it fits --model deep)" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", "deep", "--params", str(deep)]) == 0


# ------------------------------------------------------------------------------- registry ----
def test_adding_a_subcommand_is_one_function(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_COMMANDS", list(cli._COMMANDS))
    calls = []

    @cli.command("hello", help="say hello")
    def _hello(parser):
        parser.add_argument("--name", default="world")
        return lambda args: calls.append(args.name) or 0

    assert cli.main(["hello", "--name", "book"]) == 0 and calls == ["book"]
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "hello" in capsys.readouterr().out


def test_unusable_settings_are_clear_errors(tiny_mnist, tmp_path, monkeypatch, capsys):
    """An output folder that cannot be made, more threads than Numba has, no matplotlib:
    exit code 2 and one line naming the problem, before any training."""
    import numba
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert cli.main(["train", "--out", str(blocker / "run")]) == 2
    assert "cannot create output folder" in _no_traceback(capsys.readouterr().err)
    too_many = str(numba.config.NUMBA_NUM_THREADS + 1)
    assert cli.main(["train", "--threads", too_many, "--out", str(tmp_path / "o")]) == 2
    assert f"got {too_many}" in _no_traceback(capsys.readouterr().err)
    hide_module(monkeypatch, "matplotlib")
    assert cli.main(["train", "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'fastconv[plots]'" in _no_traceback(capsys.readouterr().err)


def test_bad_option_values_exit_2(capsys):
    for argv in (["train", "--threads", "0"], ["train", "--model", "big"], []):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
    capsys.readouterr()
