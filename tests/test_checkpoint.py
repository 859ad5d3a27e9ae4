"""Checkpoints in the library: ``Trainer(checkpoint_dir=, resume=)``, ``Model.fit`` with
``BackupAndRestore``, and the file format of :mod:`fastconv.checkpoint`.

A run interrupted and resumed must end with exactly the bits of a run never interrupted; a
checkpoint must hold the state the run had when it was written (checked against that state
itself, taken from the live objects).
"""
import json
import os

import numpy as np
import pytest

from synthetic import normalized, synthetic_digits
from test_keras import small_model
from test_keras_rnn import rnn_model
from fastconv.checkpoint import (CheckpointError, CheckpointFolder, read_checkpoint, rng_state,
                                 set_rng_state)
from fastconv.keras.callbacks import BackupAndRestore
from fastconv.models import MultiLayerNetExtend
from fastconv.trainer import Trainer

OPTIMIZERS = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]


@pytest.fixture(scope="module")
def digits():
    images, labels = synthetic_digits(200, seed=2)
    return normalized(images, np.float64).reshape(200, -1), labels


def _trainer(digits, optimizer="Adam", seed=0, dtype=np.float64, **kwargs):
    """Dropout (np.random) and BatchNormalization (running statistics): 10 steps an epoch."""
    x, t = digits
    np.random.seed(seed)
    net = MultiLayerNetExtend(784, [20, 20], 10, use_dropout=True, dropout_ration=0.2,
                              use_batchnorm=True)
    if dtype != np.float64:  # only for the refusal: the params' dtype, not a working network
        for key in net.params:
            net.params[key] = net.params[key].astype(dtype)
    kwargs = dict(dict(epochs=2, mini_batch_size=20, optimizer=optimizer,
                       optimizer_param={"lr": 0.01}, evaluate_sample_num_per_epoch=50,
                       verbose=False), **kwargs)
    return Trainer(net, x, t, x[:50], t[:50], **kwargs)


def _running_stats(trainer):
    return {name: (layer.running_mean, layer.running_var)
            for name, layer in trainer.network.layers.items() if name.startswith("BatchNorm")}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_trainer_resumed_is_bit_identical(digits, tmp_path, optimizer):
    ref = _trainer(digits, optimizer)
    ref_acc = ref.train()

    stopped = _trainer(digits, optimizer, checkpoint_dir=tmp_path, checkpoint_every=3)
    for _ in range(8):  # a crash after step 8: the newest checkpoint is step 6's
        stopped.train_step()
        if stopped.checkpoint_if_due() is not None and stopped.current_iter == 6:
            live = (stopped.network.params, vars(stopped.optimizer), np.random.get_state(),
                    stopped.train_loss_list)
            ckpt = read_checkpoint(tmp_path / "checkpoint-00000006.npz")
            _assert_holds(ckpt, *live)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-00000003.npz",
                                            "checkpoint-00000006.npz"]

    resumed = _trainer(digits, optimizer, seed=99, checkpoint_dir=tmp_path, resume=True)
    assert resumed.start_iter == resumed.current_iter == 6 and resumed.current_epoch == 1
    assert resumed.train() == ref_acc
    for key, val in ref.network.params.items():
        np.testing.assert_array_equal(resumed.network.params[key], val, err_msg=key)
    for name, stats in _running_stats(ref).items():
        for got, want in zip(_running_stats(resumed)[name], stats):
            np.testing.assert_array_equal(got, want, err_msg=name)
    assert resumed.train_loss_list == ref.train_loss_list
    assert resumed.train_acc_list == ref.train_acc_list
    assert resumed.test_acc_list == ref.test_acc_list
    # without checkpoint_every: the ends of the two epochs; steps 3 and 6 are gone
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-00000010.npz",
                                            "checkpoint-00000020.npz"]


def _assert_holds(ckpt, params, optimizer_vars, rng, losses):
    """The checkpoint holds exactly the live state it was taken from."""
    assert ckpt.step == 6 and ckpt.info["epoch"] == 1
    for key, val in params.items():
        np.testing.assert_array_equal(ckpt.arrays["params/" + key], val)
    numbers = ckpt.info["optimizer"]["numbers"]
    for name, value in optimizer_vars.items():
        if isinstance(value, dict):  # Adam's m and v, Momentum's v, AdaGrad's h
            for key, arr in value.items():
                np.testing.assert_array_equal(ckpt.arrays[f"optimizer/{name}/{key}"], arr)
        elif value is not None:
            assert numbers[name] == value, name
    if "iter" in optimizer_vars:
        assert numbers["iter"] == 6
    np.testing.assert_array_equal(ckpt.arrays["rng/key"], rng[1])
    assert ckpt.info["rng"]["pos"] == rng[2]
    np.testing.assert_array_equal(ckpt.arrays["metrics/train_loss"], losses)


def test_trainer_defaults_and_refusals(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _trainer(digits, epochs=1).train()
    assert os.listdir(tmp_path) == []  # the book's Trainer writes nothing
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        _trainer(digits, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 1"):
        _trainer(digits, checkpoint_dir="c", checkpoint_every=0)
    # nothing to resume from yet: a run from the start
    folder = tmp_path / "c"
    first = _trainer(digits, epochs=1, checkpoint_dir=folder, resume=True)
    assert first.start_iter == 0
    first.train()
    path = folder / "checkpoint-00000010.npz"
    for kwargs, message in (({"mini_batch_size": 10}, "mini_batch_size=20, this Trainer has 10"),
                            ({"optimizer": "SGD"}, "optimizer='Adam', this Trainer has 'SGD'"),
                            ({"optimizer_param": {"lr": 0.1}}, "optimizer_param"),
                            ({"dtype": np.float32}, "W1 is float64 (784, 20), the network's is "
                                                    "float32")):
        with pytest.raises(CheckpointError, match="checkpoint .*checkpoint-00000010.npz") as e:
            _trainer(digits, epochs=1, checkpoint_dir=folder, resume=True, **kwargs)
        assert message in str(e.value) and str(path) in str(e.value)


# ------------------------------------------------------------------ the file format ----
def test_folder_keeps_two_of_its_run_and_writes_atomically(tmp_path):
    earlier = CheckpointFolder(tmp_path)
    for step in (50, 60):
        earlier.write(step, {"a": np.arange(3)}, {})
    (tmp_path / ".checkpoint-00000070.npz.x1.part").write_bytes(b"killed during a write")
    run = CheckpointFolder(tmp_path)
    for step in (1, 2, 3):
        run.write(step, {"a": np.full(3, step)}, {"epoch": step})
    # a new run replaces an earlier run's checkpoints and the temp file a kill left
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-00000002.npz", "checkpoint-00000003.npz"]
    found = CheckpointFolder(tmp_path).latest()
    assert found.step == 3 and found.info["epoch"] == 3
    np.testing.assert_array_equal(found.arrays["a"], [3, 3, 3])

    class Unwritable:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        run.write(4, {"a": np.zeros(3), "b": Unwritable()}, {})
    # the failed write left no file, and the two before it are whole
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-00000002.npz", "checkpoint-00000003.npz"]
    assert read_checkpoint(tmp_path / "checkpoint-00000002.npz").step == 2


def test_header_is_json_and_rng_state_survives_the_file(tmp_path):
    np.random.seed(3)
    np.random.randn(3)  # an odd number of normals: a cached Gaussian is part of the state
    arrays, info = rng_state()
    assert info["has_gauss"] == 1
    path = CheckpointFolder(tmp_path).write(7, arrays, {"rng": info})
    want = np.random.randn(5), np.random.rand(5)
    with np.load(path, allow_pickle=False) as z:  # plain NumPy reads it
        header = json.loads(str(z["checkpoint.json"]))
    assert header["format"] == "fastconv.checkpoint" and header["version"] == 1
    assert header["step"] == 7 and header["arrays"] == ["rng/key"]
    ckpt = read_checkpoint(path)
    set_rng_state(ckpt.arrays, ckpt.info["rng"])
    got = np.random.randn(5), np.random.rand(5)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ keras ----
@pytest.mark.parametrize("make, shuffle, save_freq", [(small_model, True, 2),
                                                       (rnn_model, False, "epoch")])
def test_fit_with_backup_and_restore_is_bit_identical(tmp_path, monkeypatch, make, shuffle,
                                                      save_freq):
    rng = np.random.default_rng(0)
    n_in = make().input.input_shape
    x = rng.standard_normal((40, *n_in))
    y = rng.integers(0, 3, 40) if make is small_model else rng.standard_normal((40, 3))
    fit = dict(batch_size=8, epochs=3, verbose=0, shuffle=shuffle)

    ref = make(seed=0)
    want = ref.fit(x, y, **fit)

    model = make(seed=0)
    calls = []
    forward = model.layers[0].forward

    def crash_in_epoch_2(a):  # the 8th batch: the 3rd of the 2nd epoch
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return forward(a)
    monkeypatch.setattr(model.layers[0], "forward", crash_in_epoch_2)
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, callbacks=[BackupAndRestore(backup, save_freq=save_freq)], **fit)
    steps = [int(name[11:19]) for name in sorted(os.listdir(backup))]
    assert steps == ([5, 6] if save_freq == 2 else [5])

    again = make(seed=7)  # other initial weights: the backup replaces them
    got = again.fit(x, y, callbacks=[BackupAndRestore(backup, save_freq=save_freq)], **fit)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    for mine, theirs in zip(again.layers, ref.layers):
        for name, value in theirs.saved_arrays().items():
            np.testing.assert_array_equal(mine.saved_arrays()[name], value, err_msg=name)
    assert not backup.exists()  # deleted once fit completed, as Keras does


def test_fit_backup_refuses_another_fit(tmp_path):
    x = np.random.default_rng(1).standard_normal((16, 1, 8, 8))
    y = np.arange(16) % 3
    backup = BackupAndRestore(tmp_path, delete_checkpoint=False)
    small_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[backup])
    assert os.listdir(tmp_path) == ["checkpoint-00000002.npz"]
    with pytest.raises(CheckpointError, match="batch_size=8, this one has 4"):
        small_model().fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[backup])
    with pytest.raises(TypeError, match="callbacks may hold a BackupAndRestore"):
        small_model().fit(x, y, verbose=0, callbacks=[print])
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or an int >= 1"):
        BackupAndRestore(tmp_path, save_freq=0)
