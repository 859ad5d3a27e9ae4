"""The seed framework's ``Model``: add_layer, compile, fit, evaluate, predict, summary, save.

``compile(learning_rate, loss_fcn, metric)`` takes the seed's metric as a third argument:
``"accuracy"`` (the default) or ``"MAE"`` (:mod:`fastconv.keras.metrics`); ``fit``'s history
and ``evaluate`` report it next to the loss.

Bugs of the seed fixed here:

* ``evaluate`` returned ``sum(y_true - y_pred)`` (a difference of class indices) instead of
  the accuracy; it now returns ``(accuracy, loss)``.
* ``predict`` called the misspelled ``set_intput`` and so always raised.
* ``fit`` computed the number of batches from ``batch_size`` before replacing the default
  ``-1`` by N, so full-batch training reported a negative batch count.
* ``add_layer`` used a bare ``assert`` (gone under ``python -O``); it raises ``ValueError``
  naming both shapes.
* ``compile`` fell back to MSE for any unknown loss name; unknown names now raise.
* Whole-set ``predict``/``evaluate`` ran the full test set through the network in one batch
  (gigabytes of im2col for MNIST); they run in chunks of ``batch_size``.

Training is the seed's: plain gradient descent ``W -= learning_rate * grad`` after every batch
(:class:`fastconv.optimizer.SGD`), where ``grad`` is the gradient of the *sum* of the batch's
per-sample losses: the seed back-propagates ``a - y`` undivided and its Dense/Output layers
step on ``delta.T @ x``. (Its Conv2D alone divided by the batch size, so its gradients were of
no single objective; here every layer steps on the same one, which :meth:`Model.gradient`
returns and the tests check numerically.) The reported loss is the batch mean, as the seed's.
"""
import sys
import time

import numpy as np
from tqdm import tqdm

from ..optimizer import SGD
from .callbacks import FitState, backup_callback
from .layers import Input, Layer, Output
from .losses import get_loss
from .metrics import get_metric

__all__ = ["Model", "load_model"]

_PREDICT_BATCH = 256


def _one_hot(y, units, where):
    """Targets as float (N, units): one-hot rows pass through, int labels are expanded."""
    y = np.asarray(y)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        if y.size and (y.min() < 0 or y.max() >= units):
            raise ValueError(f"{where}: labels must be in [0, {units}), got "
                             f"[{y.min()}, {y.max()}]")
        return np.eye(units)[y]
    if y.ndim != 2 or y.shape[1] != units:
        raise ValueError(f"{where}: y must be one-hot of shape (N, {units}) or integer "
                         f"labels (N,), got shape {y.shape}")
    return y.astype(np.float64, copy=False)


class Model:
    """A sequential network (the seed's ``Model(Input_layer, name)``).

    Parameters
    ----------
    Input_layer : Input
        Declares the per-sample input shape.
    name : str
        Printed by :meth:`summary` and stored by :meth:`save`.
    """

    def __init__(self, Input_layer, name="cnn"):
        if not isinstance(Input_layer, Input):
            raise TypeError(f"Model: the first argument must be an Input layer, got "
                            f"{type(Input_layer).__name__}")
        self.input = Input_layer
        self.cur_output_shape = Input_layer.input_shape
        self.name = str(name)
        self.layers = []
        self.lr = 0.0
        self.loss_fcn = None
        self.loss_fcn_name = None
        self.metric = None
        self._optimizer = None

    # ------------------------------------------------------------------ building
    def add_layer(self, layer):
        """Append ``layer``; build it from the current output shape if it has none.

        Raises
        ------
        ValueError
            If the layer was built for another input shape than the model now outputs, or
            an ``Output`` layer is already the last layer.
        """
        if not isinstance(layer, Layer) or isinstance(layer, Input):
            raise TypeError(f"add_layer: expected a layer such as Conv2D or Dense, got "
                            f"{type(layer).__name__}")
        if self.layers and isinstance(self.layers[-1], Output):
            raise ValueError("add_layer: the model already ends with an Output layer")
        if not layer.built:
            layer.build(self.cur_output_shape)
        elif tuple(layer.input_shape) != tuple(self.cur_output_shape):
            prev = self.layers[-1].kind if self.layers else "Input"
            raise ValueError(f"add_layer: {layer.kind} expects input shape "
                             f"{tuple(layer.input_shape)} but {prev} outputs shape "
                             f"{tuple(self.cur_output_shape)}")
        self.layers.append(layer)
        self.cur_output_shape = layer.output_shape[1:]
        self.loss_fcn = None  # the network changed: compile again
        self._optimizer = None

    def compile(self, learning_rate, loss_fcn="cross_tropy", metric=None):
        """Set the learning rate of plain gradient descent, the loss and the metric.

        Parameters
        ----------
        learning_rate : float
            Step size, > 0.
        loss_fcn : str
            ``"cross_tropy"`` or ``"MSE"`` (see :mod:`fastconv.keras.losses`).
        metric : {None, "accuracy", "MAE"}
            Reported by ``fit`` and ``evaluate``; ``None`` means ``"accuracy"``.
        """
        lr = float(learning_rate)
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"compile: learning_rate must be a positive number, got "
                             f"{learning_rate!r}")
        if not self.layers or not isinstance(self.layers[-1], Output):
            raise ValueError("compile: the last layer must be an Output layer")
        loss = get_loss(loss_fcn)
        loss.check_output(self.layers[-1].activation)
        metric = get_metric(metric)
        self.lr = lr
        self.loss_fcn = loss
        self.loss_fcn_name = loss.name
        self.metric = metric
        self._optimizer = SGD(lr)

    # ------------------------------------------------------------------ passes
    def forward(self, x):
        """Outputs of the last layer for a batch ``x`` (N, *input_shape)."""
        a = self.input.forward(x)
        for layer in self.layers:
            a = layer.forward(a)
        return a

    def _backward(self, y):
        """Loss of the last forward and the gradients of every layer (in the layers)."""
        out = self.layers[-1]
        loss, dz = self.loss_fcn.forward_backward(out, y)
        dout = out.backward_logits(dz)
        for layer in reversed(self.layers[:-1]):
            dout = layer.backward(dout)
        return loss

    def params(self):
        """``{"layer_<i>.<name>": array}`` of all trainable arrays (shared, not copies)."""
        return {f"layer_{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params().items()}

    def _grads(self):
        return {f"layer_{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads().items()}

    def loss(self, x, y):
        """Mean loss of the batch ``(x, y)`` (no update)."""
        self._require_compiled("loss")
        a = self.forward(x)
        return self.loss_fcn.value(a, _one_hot(y, a.shape[1], "loss"),
                                   self.layers[-1].activation)

    def gradient(self, x, y):
        """Gradients of ``loss(x, y) * len(x)`` (the batch sum that ``fit`` steps on).

        Returns
        -------
        dict
            Same keys as :meth:`params`; fresh arrays.
        """
        self._require_compiled("gradient")
        self.forward(x)
        self._backward(_one_hot(y, self.layers[-1].units, "gradient"))
        return {k: np.array(v) for k, v in self._grads().items()}

    def _require_compiled(self, where):
        if self.loss_fcn is None:
            raise RuntimeError(f"{where}: call compile(learning_rate, loss_fcn) first")

    # ------------------------------------------------------------------ training
    def fit(self, x, y, batch_size=-1, epochs=1, verbose=1, shuffle=True, callbacks=None):
        """Train with plain gradient descent.

        Parameters
        ----------
        x : ndarray (N, *input_shape)
        y : ndarray (N, k) one-hot, or (N,) integer labels
        batch_size : int
            Samples per update; ``-1`` (default) means the whole set.
        epochs : int
        verbose : {0, 1, 2}
            0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        shuffle : bool
            Draw a new order (``np.random``) before every epoch; ``False`` keeps the order
            (time order, for a Recurrent layer).
        callbacks : list, optional
            ``[BackupAndRestore(backup_dir)]`` (:mod:`fastconv.keras.callbacks`): back up
            the run as it goes, and continue an interrupted one from its backup.

        Returns
        -------
        dict
            ``{metric: (epochs,), "loss": (epochs,)}`` with the compiled metric's name
            (``"accuracy"`` or ``"MAE"``): per epoch, the metric and mean loss of the outputs
            seen during the epoch (before each batch's update).
        """
        self._require_compiled("fit")
        x = np.asarray(x)
        N = x.shape[0]
        y = _one_hot(y, self.layers[-1].units, "fit")
        if y.shape[0] != N or N == 0:
            raise ValueError(f"fit: x has {N} samples and y has {y.shape[0]}; need the same "
                             f"positive number")
        if batch_size == -1:  # before anything uses it (the seed's order was reversed)
            batch_size = N
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"fit: batch_size must be a positive int or -1, got "
                             f"{batch_size!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
        backup = backup_callback(callbacks)
        batch_size = min(int(batch_size), N)
        n_batches = -(-N // batch_size)
        metric = self.metric
        state = FitState(epochs, metric.name)
        history = state.history
        if backup is not None:
            backup.on_train_begin(self, state, {"samples": N, "batch_size": batch_size,
                                                "shuffle": bool(shuffle), "epochs": epochs},
                                  n_batches)
        if verbose:
            print("Model train start.")
            print("=" * 65)
        for epoch in range(state.epoch, epochs):
            if state.order is None:
                state.order = np.random.permutation(N) if shuffle else np.arange(N)
            t0 = time.perf_counter()
            bar = None
            if verbose == 1:
                bar = tqdm(total=n_batches, initial=state.start // batch_size,
                           desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                           file=sys.stdout, leave=True, dynamic_ncols=True)
            for start in range(state.start, N, batch_size):
                idx = state.order[start:start + batch_size]
                xb, yb = x[idx], y[idx]
                a = self.forward(xb)
                loss = self._backward(yb)
                self._optimizer.update(self.params(), self._grads())
                nb = len(idx)
                state.loss_sum += loss * nb
                state.metric_sum += metric.total(a, yb)
                state.seen += nb
                state.start = start + nb
                if bar is not None:
                    bar.set_postfix({metric.name: f"{state.metric_sum / state.seen:.4f}",
                                     "loss": f"{state.loss_sum / state.seen:.4f}"},
                                    refresh=False)
                    bar.update(1)
                if backup is not None and state.start < N:
                    backup.on_batch_end(self, state)
            if bar is not None:
                bar.close()
            history["loss"][epoch] = state.loss_sum / N
            history[metric.name][epoch] = state.metric_sum / N
            state.next_epoch(epoch + 1)
            if backup is not None:
                backup.on_epoch_end(self, state)
            if verbose:
                print("epoch %8s/%-8s\t%s: %-10s\tloss: %-10s\ttime: %.1fs"
                      % (epoch + 1, epochs, metric.name,
                         np.round(history[metric.name][epoch], 6),
                         np.round(history["loss"][epoch], 6), time.perf_counter() - t0))
                print("=" * 65)
        if backup is not None:
            backup.on_train_end()
        return history

    # ------------------------------------------------------------------ inference
    def predict(self, test_data, batch_size=_PREDICT_BATCH):
        """Outputs of the network (N, k), computed ``batch_size`` samples at a time."""
        x = np.asarray(test_data)
        if len(self.layers) == 0:
            raise RuntimeError("predict: the model has no layers")
        step = max(1, int(batch_size))
        outs = [self.forward(x[i:i + step]) for i in range(0, x.shape[0], step)]
        return np.concatenate(outs, axis=0)

    def predict_classes(self, test_data, batch_size=_PREDICT_BATCH):
        """Predicted class indices (N,): ``predict(test_data).argmax(axis=1)``."""
        return self.predict(test_data, batch_size).argmax(axis=1)

    def evaluate(self, x_test, y_test, batch_size=_PREDICT_BATCH):
        """``(metric, loss)`` on a test set: the compiled metric (accuracy in [0, 1] by
        default) and the mean loss.

        ``y_test`` is one-hot (N, k) or integer labels (N,), or (N, k) targets of a regression.
        """
        self._require_compiled("evaluate")
        a = self.predict(x_test, batch_size)
        y = _one_hot(y_test, a.shape[1], "evaluate")
        if y.shape[0] != a.shape[0]:
            raise ValueError(f"evaluate: x has {a.shape[0]} samples but y has {y.shape[0]}")
        return (self.metric.value(a, y),
                self.loss_fcn.value(a, y, self.layers[-1].activation))

    # ------------------------------------------------------------------ reporting, saving
    def summary(self):
        """Print the seed's table: layer, output shape and weight count, then the total."""
        total = 0
        print("model name: " + self.name)
        print("_" * 65)
        print("Layer                        Output Shape              Param #   ")
        print("=" * 65)
        for layer in self.layers:
            name, output_shape, params = layer.summary()
            total += params
            print("%-29s%-26s%-28s" % (name, output_shape, params))
            print("_" * 65)
        print("=" * 65)
        print("Total params: %d" % total)
        print("_" * 65)

    def save(self, filename):
        """Write the model to one file (see :func:`fastconv.keras.saving.save_model`)."""
        from .saving import save_model
        return save_model(filename, self)


def load_model(filename):
    """Rebuild a model written by :meth:`Model.save` (no code is run while loading)."""
    from .saving import load_model as _load
    return _load(filename)
