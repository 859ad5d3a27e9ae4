"""Training-history and confusion-matrix plots (the seed's ``cnn.utils.visualization``).

Both functions save PNG files and return their paths. The seed only saved when given a file
name and then called ``plt.show()``, which blocks in a script and does nothing on a headless
machine; here a default name is used when none is given and ``show=True`` opts in to the
window. Figures are closed after saving, so loops do not pile them up.
"""
import itertools

import numpy as np

__all__ = ["history_show", "confusion_show", "confusionsave", "confusion_matrix"]


def _pyplot():
    # imported lazily: matplotlib is an optional dependency of fastconv; without a display
    # it picks the Agg backend by itself
    import matplotlib.pyplot as plt
    return plt


def _finish(plt, fig, path, show):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    if show:
        plt.show()
    plt.close(fig)
    return path


def _curve(plt, values, title, ylabel, path, show):
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(values) + 1)
    ax.plot(epochs, values, marker="o")
    ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("epoch")
    ax.legend(["train"], loc="upper left")
    return _finish(plt, fig, path, show)


def _metric_key(history):
    """The metric's key in a ``fit`` history: the one key besides ``"loss"``."""
    keys = [key for key in history if key != "loss"]
    if "loss" not in history or len(keys) != 1:
        raise ValueError(f"history_show: history must hold 'loss' and one metric (such as "
                         f"'accuracy' or 'MAE'), got keys {sorted(history)}")
    return keys[0]


def history_show(history, accuracy_file=None, loss_file=None, show=False):
    """Plot the metric and loss curves of a ``fit`` history into two PNG files.

    Parameters
    ----------
    history : dict
        ``{metric: (epochs,), "loss": (epochs,)}`` as returned by ``Model.fit``; the metric
        is ``"accuracy"`` or ``"MAE"``.
    accuracy_file, loss_file : str, optional
        Output paths; default ``"<metric>.png"`` (``"accuracy.png"``, ``"MAE.png"``) and
        ``"loss.png"``.
    show : bool
        Also open the figures in a window (blocks until closed).

    Returns
    -------
    tuple of str
        ``(accuracy_file, loss_file)``.
    """
    plt = _pyplot()
    metric = _metric_key(history)
    accuracy_file = accuracy_file or f"{metric}.png"
    loss_file = loss_file or "loss.png"
    _curve(plt, np.asarray(history[metric]), f"model {metric}", metric, accuracy_file, show)
    _curve(plt, np.asarray(history["loss"]), "model loss", "loss", loss_file, show)
    return accuracy_file, loss_file


def confusion_matrix(y_pred, y_true, classes):
    """Counts ``cm[i, j]`` of samples of true class i predicted as j (``bincount`` trick)."""
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    if y_pred.shape != y_true.shape:
        raise ValueError(f"confusion_matrix: y_pred has {y_pred.size} entries, y_true "
                         f"{y_true.size}")
    for name, y in (("y_pred", y_pred), ("y_true", y_true)):
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(f"confusion_matrix: {name} must be in [0, {classes})")
    return np.bincount(classes * y_true + y_pred,
                       minlength=classes * classes).reshape(classes, classes)


def confusion_show(labels, y_pred, y_true, normalize=False, confusion_file=None, show=False):
    """Plot the confusion matrix of class predictions into a PNG file.

    Parameters
    ----------
    labels : list of str
        Class names, index order.
    y_pred, y_true : array-like (m,)
        Predicted and true class indices (e.g. ``model.predict_classes(x)`` and
        ``y.argmax(axis=1)``).
    normalize : bool
        Divide the counts by the largest count (the seed's normalisation).
    confusion_file : str, optional
        Output path; default ``"confusion_matrix.png"``.
    show : bool
        Also open the figure in a window.

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    classes = len(labels)
    cm = confusion_matrix(y_pred, y_true, classes)
    if normalize:
        cm = cm.astype(np.float64) / max(cm.max(), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * classes, 0.8 + 0.55 * classes))
    im = ax.imshow(cm, interpolation="nearest", cmap=plt.cm.Blues)
    ax.set_title("confusion matrix")
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(classes))
    ax.set_xticklabels(labels, rotation=45)
    ax.set_yticks(range(classes))
    ax.set_yticklabels(labels)
    ax.set_ylim(classes - 0.5, -0.5)
    fmt = ".2f" if normalize else "d"
    thresh = cm.max() / 2.0
    for i, j in itertools.product(range(classes), range(classes)):
        ax.text(j, i, format(cm[i, j], fmt), ha="center", va="center", fontsize=8,
                color="white" if cm[i, j] > thresh else "black")
    ax.set_ylabel("True label")
    ax.set_xlabel("Predicted label")
    return _finish(plt, fig, confusion_file or "confusion_matrix.png", show)


# the seed's module also exported it under this name
confusionsave = confusion_show
