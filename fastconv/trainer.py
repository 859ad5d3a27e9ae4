"""The book's ``common/trainer.py``: the training loop used by chapters 6 to 8.

Beyond the book, ``checkpoint_dir=`` writes checkpoints (:mod:`fastconv.checkpoint`) and
``resume=True`` continues from the newest one, to the same bits as a run never stopped.
"""
import warnings

import numpy as np

from .checkpoint import (CheckpointError, CheckpointFolder, optimizer_state, restore_optimizer,
                         rng_state, set_rng_state)
from .optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

__all__ = ["Trainer"]

# 'rmsprpo' is the book's spelling; 'rmsprop' is accepted too
_OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
               "rmsprpo": RMSprop, "rmsprop": RMSprop, "adam": Adam}


class Trainer:
    """Mini-batch training of ``network`` with the book's arguments, lists and prints.

    ``train_loss_list``, ``train_acc_list`` and ``test_acc_list`` grow as in the book: a loss
    per step, accuracies once per epoch (on ``evaluate_sample_num_per_epoch`` samples if set).

    Keyword-only, beyond the book (off by default):

    checkpoint_dir : str, optional
        ``train()`` writes a checkpoint there at the end of every epoch (and every
        ``checkpoint_every`` steps), keeping the last two: the parameters, the optimizer's
        state, the step and epoch, ``np.random``'s state and the three lists.
    resume : bool
        Continue from the newest sound checkpoint in ``checkpoint_dir``, if there is one
        (with none, start from the beginning, so the same script can simply be run again).
        The network and data must be those of the run that wrote it; ``epochs`` may be
        larger. A run resumed this way ends with exactly the bits of a run never stopped.
    checkpoint_every : int, optional
        Also write a checkpoint every this many steps.
    """

    def __init__(self, network, x_train, t_train, x_test, t_test,
                 epochs=20, mini_batch_size=100,
                 optimizer='SGD', optimizer_param={'lr': 0.01},
                 evaluate_sample_num_per_epoch=None, verbose=True, *,
                 checkpoint_dir=None, resume=False, checkpoint_every=None):
        self.network = network
        self.verbose = verbose
        self.x_train = x_train
        self.t_train = t_train
        self.x_test = x_test
        self.t_test = t_test
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch

        try:
            optimizer_class = _OPTIMIZERS[optimizer.lower()]
        except KeyError:
            raise ValueError(f"Trainer: unknown optimizer {optimizer!r}; choose one of "
                             f"{sorted(set(_OPTIMIZERS) - {'rmsprpo'})}") from None
        self.optimizer = optimizer_class(**optimizer_param)
        self.optimizer_param = {k: v.item() if isinstance(v, np.generic) else v
                                for k, v in optimizer_param.items()}

        self.train_size = x_train.shape[0]
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0

        self.train_loss_list = []
        self.train_acc_list = []
        self.test_acc_list = []

        if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not
                                             isinstance(checkpoint_every, (int, np.integer))
                                             or checkpoint_every < 1):
            raise ValueError(f"Trainer: checkpoint_every must be an int >= 1, got "
                             f"{checkpoint_every!r}")
        if resume and checkpoint_dir is None:
            raise ValueError("Trainer: resume=True needs checkpoint_dir")
        self.checkpoint_every = checkpoint_every
        self.checkpoints = None if checkpoint_dir is None else CheckpointFolder(checkpoint_dir)
        self.start_iter = 0  # where train() starts: a resumed run's step
        self.saved_iter = None  # the step of the last checkpoint written or read
        if resume:
            found = self.checkpoints.latest(
                warn=lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=4))
            if found is not None:
                self.restore(found)

    def train_step(self):
        """One mini-batch step (sampled with replacement, as the book), plus the per-epoch
        accuracy evaluation when an epoch starts."""
        batch_mask = np.random.choice(self.train_size, self.batch_size)
        x_batch = self.x_train[batch_mask]
        t_batch = self.t_train[batch_mask]

        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)

        loss = self.network.loss(x_batch, t_batch)
        self.train_loss_list.append(loss)
        if self.verbose:
            print("train loss:" + str(loss))

        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1

            x_train_sample, t_train_sample = self.x_train, self.t_train
            x_test_sample, t_test_sample = self.x_test, self.t_test
            if self.evaluate_sample_num_per_epoch is not None:
                t = self.evaluate_sample_num_per_epoch
                x_train_sample, t_train_sample = self.x_train[:t], self.t_train[:t]
                x_test_sample, t_test_sample = self.x_test[:t], self.t_test[:t]

            train_acc = self.network.accuracy(x_train_sample, t_train_sample)
            test_acc = self.network.accuracy(x_test_sample, t_test_sample)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)

            if self.verbose:
                print("=== epoch:" + str(self.current_epoch) + ", train acc:" + str(train_acc)
                      + ", test acc:" + str(test_acc) + " ===")
        self.current_iter += 1

    def train(self):
        """Run ``max_iter`` steps (the rest of them, resumed), then print the accuracy on the
        whole test set."""
        for i in range(self.start_iter, self.max_iter):
            self.train_step()
            self.checkpoint_if_due()

        test_acc = self.network.accuracy(self.x_test, self.t_test)

        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))
        return test_acc

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_if_due(self):
        """After a step: write a checkpoint at the end of an epoch, of the run, or of every
        ``checkpoint_every`` steps (when ``checkpoint_dir`` is set). Returns its path or
        None."""
        k = self.current_iter
        if self.checkpoints is None or k == 0:
            return None
        epoch_end = k // self.iter_per_epoch > (k - 1) // self.iter_per_epoch
        every = self.checkpoint_every is not None and k % self.checkpoint_every == 0
        if epoch_end or every or k == self.max_iter:
            return self.save_checkpoint()
        return None

    def save_checkpoint(self):
        """Write a checkpoint of the run so far into ``checkpoint_dir``; returns its path."""
        if self.checkpoints is None:
            raise ValueError("Trainer.save_checkpoint: no checkpoint_dir was given")
        if self.saved_iter != self.current_iter:
            arrays, info = self.checkpoint_state()
            self.checkpoints.write(self.current_iter, arrays, info)
            self.saved_iter = self.current_iter
        return self.checkpoints.lineage[-1]

    def settings(self):
        """What a checkpoint must share with the Trainer that resumes it (and ``epochs``)."""
        return {"epochs": self.epochs, "mini_batch_size": self.batch_size,
                "train_size": self.train_size,
                "evaluate_sample_num_per_epoch": self.evaluate_sample_num_per_epoch,
                "optimizer": type(self.optimizer).__name__,
                "optimizer_param": self.optimizer_param}

    def checkpoint_state(self):
        """The run so far as ``(arrays, info)`` (see :mod:`fastconv.checkpoint`)."""
        arrays = {"params/" + key: np.asarray(val) for key, val in self.network.params.items()}
        opt_arrays, opt_info = optimizer_state(self.optimizer)
        rng_arrays, rng_info = rng_state()
        arrays.update(opt_arrays)
        arrays.update(rng_arrays)
        for name, layer in _named_layers(self.network):
            for attr in _LAYER_STATE:  # BatchNormalization's running statistics
                if isinstance(getattr(layer, attr, None), np.ndarray):
                    arrays[f"layers/{name}/{attr}"] = getattr(layer, attr)
        arrays["metrics/train_loss"] = np.asarray(self.train_loss_list)
        arrays["metrics/train_acc"] = np.asarray(self.train_acc_list, dtype=np.float64)
        arrays["metrics/test_acc"] = np.asarray(self.test_acc_list, dtype=np.float64)
        info = {"step": self.current_iter, "epoch": self.current_epoch,
                "max_iter": self.max_iter, "settings": self.settings(),
                "optimizer": opt_info, "rng": rng_info}
        return arrays, info

    def restore(self, checkpoint):
        """Continue from ``checkpoint`` (a :class:`fastconv.checkpoint.Checkpoint`).

        Raises
        ------
        CheckpointError
            Its settings, parameter names, shapes or dtypes differ from this Trainer's, or
            it is past the last step of ``epochs``.
        """
        path, arrays, info = checkpoint.path, checkpoint.arrays, checkpoint.info
        theirs, mine = info["settings"], self.settings()
        for name in mine:
            if name != "epochs" and theirs.get(name) != mine[name]:
                raise CheckpointError(f"checkpoint {path} was written with {name}="
                                      f"{theirs.get(name)!r}, this Trainer has {mine[name]!r}")
        if checkpoint.step > self.max_iter:
            raise CheckpointError(f"checkpoint {path} is at step {checkpoint.step}, past the "
                                  f"{self.max_iter} steps of epochs={self.epochs}")
        params = self.network.params
        stored = sorted(k[len("params/"):] for k in arrays if k.startswith("params/"))
        if stored != sorted(params):
            raise CheckpointError(f"checkpoint {path} holds the parameters {stored}, the "
                                  f"network has {sorted(params)}")
        for key, val in params.items():
            new = arrays["params/" + key]
            if new.shape != val.shape or new.dtype != val.dtype:
                raise CheckpointError(f"checkpoint {path}: {key} is {new.dtype} {new.shape}, "
                                      f"the network's is {val.dtype} {val.shape}")
        for key, val in params.items():
            val[...] = arrays["params/" + key]  # in place: the layers hold these arrays
        for name, layer in _named_layers(self.network):
            for attr in _LAYER_STATE:
                if f"layers/{name}/{attr}" in arrays:
                    setattr(layer, attr, np.array(arrays[f"layers/{name}/{attr}"]))
        restore_optimizer(self.optimizer, arrays, info["optimizer"], path)
        set_rng_state(arrays, info["rng"])
        self.train_loss_list = list(arrays["metrics/train_loss"])
        self.train_acc_list = [float(a) for a in arrays["metrics/train_acc"]]
        self.test_acc_list = [float(a) for a in arrays["metrics/test_acc"]]
        self.current_iter = self.start_iter = self.saved_iter = checkpoint.step
        self.current_epoch = int(info["epoch"])
        if self.checkpoints is not None:
            self.checkpoints.continue_from(path)


_LAYER_STATE = ("running_mean", "running_var")


def _named_layers(network):
    layers = getattr(network, "layers", None)
    if isinstance(layers, dict):
        return list(layers.items())
    if isinstance(layers, (list, tuple)):
        return [(str(i), layer) for i, layer in enumerate(layers)]
    return []
