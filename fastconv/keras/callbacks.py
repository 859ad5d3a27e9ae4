"""Keras' ``BackupAndRestore`` callback, for a :meth:`~fastconv.keras.models.Model.fit` that
may be interrupted.

``model.fit(x, y, epochs=10, callbacks=[BackupAndRestore("backup")])`` writes a checkpoint
(:mod:`fastconv.checkpoint`) into ``backup`` at the end of every epoch, and every
``save_freq`` batches if that is a number. Called again after an interruption (Ctrl-C, a
crash, a kill), ``fit`` continues from the newest sound checkpoint there and returns the
weights and history of a fit never stopped, to the bit. When ``fit`` completes, the
checkpoints are deleted (``delete_checkpoint=True``), as in Keras.
"""
import os
import warnings

import numpy as np

from ..checkpoint import CheckpointError, CheckpointFolder, rng_state, set_rng_state

__all__ = ["BackupAndRestore"]


class FitState:
    """Where a ``fit`` stands: the ``epoch`` (from 0) and, inside it, the first sample of the
    next batch (``start``), the epoch's sample ``order`` and its running sums; the
    ``history`` so far."""

    def __init__(self, epochs, metric_name):
        self.history = {metric_name: np.zeros(epochs), "loss": np.zeros(epochs)}
        self.epoch = 0
        self.next_epoch(0)

    def next_epoch(self, epoch):
        """Start epoch ``epoch``: no order drawn yet, sums at zero."""
        self.epoch, self.start, self.order = epoch, 0, None
        self.loss_sum, self.metric_sum, self.seen = 0.0, 0.0, 0


class BackupAndRestore:
    """Back up a ``fit`` run, and restore it when ``fit`` is called again (Keras' callback).

    Parameters
    ----------
    backup_dir : str or os.PathLike
        Folder of the checkpoints; one folder per model being trained.
    save_freq : "epoch" or int
        ``"epoch"``: a checkpoint at the end of every epoch; an int N: also one every N
        batches, so that a long epoch is not lost either.
    delete_checkpoint : bool
        Delete the checkpoints when ``fit`` completes (default True, as Keras).

    Notes
    -----
    The model, the data, ``batch_size``, ``shuffle``, the learning rate, loss and metric
    must be those of the interrupted ``fit``; ``epochs`` may be larger. The last two
    checkpoints are kept, so a kill during a write loses nothing either.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(
                save_freq, (int, np.integer)) or save_freq < 1):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or an int >= 1, "
                             f"got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self._folder = CheckpointFolder(self.backup_dir)
        self._settings = None
        self._n_batches = 1

    # ------------------------------------------------------------------ called by fit
    def on_train_begin(self, model, state, settings, n_batches):
        """Put the newest sound checkpoint, if any, into ``model`` and ``state``.

        Raises
        ------
        CheckpointError
            The checkpoints cannot be read, or come from another model or ``fit`` setting.
        """
        self._settings = dict(settings, lr=model.lr, loss=model.loss_fcn_name,
                              metric=model.metric.name,
                              layers=[layer.kind for layer in model.layers])
        self._n_batches = n_batches
        found = self._folder.latest(warn=_warn)
        if found is None:
            return
        path, arrays, info = found.path, found.arrays, found.info
        theirs = info["fit"]
        for name, value in self._settings.items():
            if name != "epochs" and theirs.get(name) != value:
                raise CheckpointError(f"backup {path} is of a fit with {name}="
                                      f"{theirs.get(name)!r}, this one has {value!r}")
        if info["epoch"] > settings["epochs"]:
            raise CheckpointError(f"backup {path} has {info['epoch']} epochs done, more than "
                                  f"epochs={settings['epochs']}")
        for i, layer in enumerate(model.layers):
            layer.set_params({name: arrays[f"layers/{i}/{name}"]
                              for name in layer.saved_arrays()})
        set_rng_state(arrays, info["rng"])
        state.next_epoch(info["epoch"])
        state.start, state.seen = info["start"], info["seen"]
        state.loss_sum, state.metric_sum = info["loss_sum"], info["metric_sum"]
        state.order = arrays.get("fit/order")
        for name, values in state.history.items():
            values[:state.epoch] = arrays["history/" + name][:state.epoch]

    def on_batch_end(self, model, state):
        """A checkpoint every ``save_freq`` batches (if it is a number)."""
        if self.save_freq != "epoch" and self._step(state) % self.save_freq == 0:
            self._save(model, state)

    def on_epoch_end(self, model, state):
        """A checkpoint at the end of every epoch (``state`` is at the next one's start)."""
        self._save(model, state)

    def on_train_end(self):
        """Delete the checkpoints if ``delete_checkpoint``."""
        if self.delete_checkpoint:
            self._folder.remove_all()

    # ------------------------------------------------------------------ checkpoints
    def _step(self, state):
        batch_size = self._settings["batch_size"]
        return state.epoch * self._n_batches + -(-state.start // batch_size)

    def _save(self, model, state):
        arrays, rng = rng_state()
        for i, layer in enumerate(model.layers):
            for name, value in layer.saved_arrays().items():
                arrays[f"layers/{i}/{name}"] = value
        for name, values in state.history.items():
            arrays["history/" + name] = values
        if state.order is not None:
            arrays["fit/order"] = state.order
        info = {"epoch": state.epoch, "start": state.start, "seen": state.seen,
                # float64 sums through JSON's repr: every bit kept
                "loss_sum": float(state.loss_sum), "metric_sum": float(state.metric_sum),
                "fit": self._settings, "rng": rng}
        self._folder.write(self._step(state), arrays, info)


def _warn(message):
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def backup_callback(callbacks):
    """The one BackupAndRestore among ``fit``'s ``callbacks`` (or None)."""
    callbacks = list(callbacks or ())
    for callback in callbacks:
        if not isinstance(callback, BackupAndRestore):
            raise TypeError(f"fit: callbacks may hold a BackupAndRestore, got "
                            f"{type(callback).__name__}")
    if len(callbacks) > 1:
        raise ValueError("fit: at most one BackupAndRestore callback")
    return callbacks[0] if callbacks else None
