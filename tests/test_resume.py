"""``fastconv train``'s checkpoints: SIGKILL, Ctrl-C and SIGTERM, then ``--resume``.

The property under test: a run stopped at any moment and resumed (once or more, on another
thread count) writes a ``params.pkl`` byte for byte equal to that of a run never stopped, and
the same accuracies. Runs that must be signalled or killed are processes of their own
(tests/_cli_probe.py on a tiny MNIST); the others run in this process.
"""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numba
import numpy as np
import pytest

from conftest import TouchOnLoad
from synthetic import write_tiny_mnist
from fastconv import cli
from fastconv.checkpoint import HEADER, read_checkpoint
from fastconv.datasets import mnist

PROBE = os.path.join(os.path.dirname(__file__), "_cli_probe.py")
# 300 images in batches of 10: 30 steps an epoch, 60 in all; a checkpoint every 5 steps
RUN = ["--train-size", "300", "--epochs", "2", "--batch-size", "10", "--seed", "1",
       "--eval-samples", "100", "--checkpoint-every", "5", "--no-progress"]
THREADS = [str(n) for n in (1, min(2, numba.config.NUMBA_NUM_THREADS))]
ACCURACIES = ("train_acc", "test_acc", "accuracy_curve", "final_test_acc", "loss")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    digests = write_tiny_mnist(folder, n_train=300, n_test=100)
    table = folder / "digests.json"
    table.write_text(json.dumps(digests))
    env = dict(os.environ, FASTCONV_DATA=str(folder), FASTCONV_OFFLINE="1",
               HOME=str(tmp_path_factory.mktemp("home")), MPLBACKEND="Agg")
    return folder, digests, table, env


def _command(data, args, threads):
    _, _, table, _ = data
    return [sys.executable, PROBE, str(table), "train", *args, "--threads", threads]


def _run(data, args, threads="1"):
    proc = subprocess.run(_command(data, args, threads), env=data[3], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


def _steps(folder):
    return sorted(int(p.name[11:-4]) for p in folder.glob("checkpoint-*.npz"))


def _start_and_wait(data, args, threads, folder, step):
    """Start a run and return it once a checkpoint of ``step`` or later is in ``folder``."""
    proc = subprocess.Popen(_command(data, args, threads), env=data[3], text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while max(_steps(folder), default=-1) < step:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.002)
    return proc


def _kill_at(data, args, threads, folder, step):
    proc = _start_and_wait(data, args, threads, folder, step)
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (folder / "params.pkl").exists()  # stopped before its end


_REFERENCES = {}


def _reference(data, tmp_path_factory, model, dtype):
    """The run never stopped (on the larger thread count), once per model and dtype."""
    if (model, dtype) not in _REFERENCES:
        out = tmp_path_factory.mktemp(f"ref-{model}-{dtype}")
        _run(data, ["--model", model, "--dtype", dtype, *RUN, "--out", str(out)], THREADS[-1])
        _REFERENCES[model, dtype] = out
    return _REFERENCES[model, dtype]


def _assert_same_run(ref, out):
    assert (out / "params.pkl").read_bytes() == (ref / "params.pkl").read_bytes()
    want = json.loads((ref / "metrics.json").read_text())
    got = json.loads((out / "metrics.json").read_text())
    for key in ACCURACIES:
        assert got[key] == want[key], key
    assert want["final_test_acc"] > 0.5  # it learned something: the runs compared are real
    return got


@pytest.mark.parametrize("model, dtype", [("simple", "float64"), ("deep", "float32")])
def test_killed_twice_then_resumed_is_bit_identical(data, tmp_path, tmp_path_factory, model,
                                                    dtype):
    ref = _reference(data, tmp_path_factory, model, dtype)
    out = tmp_path / "run"
    out.mkdir()
    # killed once in the first epoch, once in the second, each time on another thread count
    _kill_at(data, ["--model", model, "--dtype", dtype, *RUN, "--out", str(out)], THREADS[0],
             out, 10)
    _kill_at(data, ["--resume", str(out), "--no-progress"], THREADS[-1], out, 40)
    proc = _run(data, ["--resume", str(out), "--no-progress"], THREADS[0])
    assert "resuming from" in proc.stdout
    metrics = _assert_same_run(ref, out)
    assert len(metrics["resumed_at"]) == 2 and metrics["resumed_at"][0] >= 10
    # the last two checkpoints, and no temporary file of a write that was killed
    assert _steps(out) == [55, 60]
    assert not [p for p in os.listdir(out) if p.endswith(".part")]


def test_ctrl_c_and_sigterm_stop_after_the_step(data, tmp_path, tmp_path_factory):
    ref = _reference(data, tmp_path_factory, "simple", "float64")
    out = tmp_path / "run"
    out.mkdir()
    for signum, args, step in ((signal.SIGINT, [*RUN, "--out", str(out)], 5),
                               (signal.SIGTERM, ["--resume", str(out), "--no-progress"], 30)):
        proc = _start_and_wait(data, args, THREADS[0], out, step)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 128 + signum, err
        signame = signal.Signals(signum).name
        metrics = json.loads((out / "metrics.json").read_text())
        stopped = metrics["interrupted"]
        assert stopped["signal"] == signame and stopped["of"] == 60 and stopped["step"] >= step
        assert f"stopped by {signame} after step {stopped['step']} of 60" in err
        assert f"resume with: fastconv train --resume {out}" in err
        # a checkpoint of that very step; the figures and the metrics so far; no params
        assert _steps(out)[-1] == stopped["step"]
        assert metrics["final_test_acc"] is None and metrics["iterations"] == stopped["step"]
        assert len(metrics["train_acc"]) == 1 + (stopped["step"] > 30)
        for name in ("accuracy.png", "loss.png", "filters.png"):
            assert (out / name).stat().st_size > 0
        assert not (out / "params.pkl").exists()
    _run(data, ["--resume", str(out), "--no-progress"], THREADS[-1])
    _assert_same_run(ref, out)


def test_second_ctrl_c_stops_at_once(data, tmp_path, tmp_path_factory):
    ref = _reference(data, tmp_path_factory, "simple", "float64")
    out = tmp_path / "run"
    out.mkdir()
    proc = _start_and_wait(data, [*RUN, "--out", str(out)], THREADS[0], out, 5)
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:  # the first one is being handled: checkpoint, figures
        if "press Ctrl-C again" in line:
            proc.send_signal(signal.SIGINT)
            break
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 130, err
    assert "stopped at once: the last complete checkpoint is " in err
    last = err.split("the last complete checkpoint is ")[1].split(";")[0]
    assert read_checkpoint(last).step in _steps(out)  # whole, and still there
    assert not [p for p in os.listdir(out) if p.endswith(".part")]
    _run(data, ["--resume", str(out), "--no-progress"], THREADS[-1])
    _assert_same_run(ref, out)


# ------------------------------------------------------------------ in this process ----
SHORT = ["--train-size", "100", "--batch-size", "10", "--seed", "0", "--eval-samples", "100",
         "--no-progress"]


@pytest.fixture
def tiny_mnist(data, monkeypatch, tmp_path):
    folder, digests, _, _ = data
    monkeypatch.setenv("FASTCONV_DATA", str(folder))
    monkeypatch.setenv("FASTCONV_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(mnist, "SHA256", digests)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Short runs of 1, 2 and 3 epochs (10 steps each), never stopped."""
    folder, digests, _, _ = data
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTCONV_DATA", str(folder))
        mp.setenv("FASTCONV_OFFLINE", "1")
        mp.setattr(mnist, "SHA256", digests)
        for epochs in (1, 2, 3):
            out[epochs] = tmp_path_factory.mktemp(f"epochs{epochs}")
            assert cli.main(["train", *SHORT, "--epochs", str(epochs),
                             "--out", str(out[epochs])]) == 0
    return out


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("fastconv train: error: ") and err.count("\n") == 1, err
    return err


def test_resume_raises_epochs_and_refuses_other_settings(tiny_mnist, runs, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(runs[1], out)
    others = {"--model": "deep", "--dtype": "float32", "--batch-size": "20", "--lr": "0.01",
              "--seed": "1", "--train-size": "50", "--eval-samples": "50"}
    for option, value in others.items():
        assert cli.main(["train", "--resume", str(out), option, value]) == 2, option
        err = _one_error_line(capsys)
        assert f"{option} {value} differs from the run's " in err
        assert "checkpoint-00000010.npz" in err
    # the same values are no difference; a larger --epochs continues the finished run
    assert cli.main(["train", "--resume", str(out), "--epochs", "2", "--batch-size", "10",
                     "--seed", "0", "--no-progress"]) == 0
    assert (out / "params.pkl").read_bytes() == (runs[2] / "params.pkl").read_bytes()
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(out), "--epochs", "1"]) == 2
    assert "--epochs 1 differs from the run's 2" in _one_error_line(capsys)
    assert cli.main(["train", "--resume", str(out), "--out", str(tmp_path / "x")]) == 2
    assert "writes into its own folder" in _one_error_line(capsys)
    assert cli.main(["train", "--resume", str(tmp_path / "none")]) == 2
    assert "no checkpoint (checkpoint-*.npz) there" in _one_error_line(capsys)


def test_a_new_run_does_not_overwrite_an_unfinished_one(tiny_mnist, tmp_path, monkeypatch,
                                                        capsys):
    from fastconv.cli_train import _ProgressTrainer
    step = _ProgressTrainer.train_step

    def ctrl_c_at_step_3(self):
        step(self)
        if self.current_iter == 3:
            signal.raise_signal(signal.SIGINT)  # the command's own handler takes it
    monkeypatch.setattr(_ProgressTrainer, "train_step", ctrl_c_at_step_3)
    out = tmp_path / "run"
    assert cli.main(["train", *SHORT, "--epochs", "1", "--out", str(out)]) == 130
    assert "stopped by SIGINT after step 3 of 10" in capsys.readouterr().err
    assert cli.main(["train", *SHORT, "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert "holds an unfinished run (step 3 of 10)" in err and "--resume" in err


def _rewrite(path, change):
    """Write the checkpoint at ``path`` again with ``change(entries)`` applied."""
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    change(entries)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def _header_version(version):
    def change(entries):
        header = json.loads(str(entries[HEADER]))
        entries[HEADER] = np.array(json.dumps(dict(header, version=version)))
    return change


def _damage(kind, path, marker):
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif kind == "corrupted":  # bytes in the middle of the parameters
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 8])
                         + data[middle + 8:])
    elif kind == "version":
        _rewrite(path, _header_version(99))
    elif kind == "pickle":  # an object array: loading it would run os.system
        with open(path, "wb") as f:
            np.savez(f, **{HEADER: np.array([TouchOnLoad(marker)], dtype=object)})


REASONS = {"truncated": "is truncated or not an .npz file", "corrupted": "is corrupted: member",
           "version": "has format version 99; this fastconv reads version 1",
           "pickle": "holds pickled objects, which are never loaded"}


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_a_bad_checkpoint_is_named_and_the_one_before_it_used(tiny_mnist, runs, tmp_path,
                                                              capsys, kind):
    out = tmp_path / "run"
    shutil.copytree(runs[2], out)  # checkpoints after steps 10 and 20
    newest = out / "checkpoint-00000020.npz"
    marker = tmp_path / "pwned"
    _damage(kind, newest, marker)
    assert cli.main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"warning: checkpoint {newest} {REASONS[kind]}" in err, err
    assert "using checkpoint-00000010.npz, the newest sound one" in err
    # it went on from step 10: the 3-epoch run's bits
    assert (out / "params.pkl").read_bytes() == (runs[3] / "params.pkl").read_bytes()
    assert not marker.exists()
    # both bad: the error names both, and nothing is trained
    _damage(kind, out / "checkpoint-00000030.npz", marker)
    _damage(kind, out / "checkpoint-00000020.npz", marker)
    assert cli.main(["train", "--resume", str(out), "--epochs", "3"]) == 2
    err = _one_error_line(capsys)
    assert "no sound checkpoint in" in err
    assert "checkpoint-00000030.npz" in err and "checkpoint-00000020.npz" in err
    assert not marker.exists()


def test_params_file_is_the_books_format(runs):
    with open(runs[1] / "params.pkl", "rb") as f:
        params = pickle.load(f)
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
