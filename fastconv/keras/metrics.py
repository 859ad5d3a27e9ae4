"""Metrics of the seed framework, the third argument of ``Model.compile``.

``"accuracy"`` (aliases ``"acc"``, ``"categorical_accuracy"``; the default)
    share of samples whose largest output is at the target's largest entry (one-hot targets).
``"MAE"`` (alias ``"mae"``)
    the seed's regression metric: the mean absolute error of each output, summed over the
    outputs, ``sum(mean(|a - y|, axis=0))``.

Both are means over the samples of a per-sample value, so ``fit`` adds up :meth:`Metric.total`
over the batches of an epoch and divides by the number of samples once.
"""
import numpy as np

__all__ = ["get_metric", "Accuracy", "MAE", "METRICS"]


class Metric:
    """Base class. ``name`` is the key in ``fit``'s history and what ``save`` stores."""

    name = None

    def total(self, a, y):
        """Sum over the batch of the per-sample values, for outputs ``a`` and targets ``y``
        (both (m, k))."""
        raise NotImplementedError

    def value(self, a, y):
        """The metric of the batch: the mean of the per-sample values."""
        return self.total(a, y) / a.shape[0]


class Accuracy(Metric):
    """Categorical accuracy (argmax of the outputs against argmax of the targets)."""

    name = "accuracy"

    def total(self, a, y):
        return float(np.count_nonzero(a.argmax(axis=1) == y.argmax(axis=1)))


class MAE(Metric):
    """The seed's MAE: per-output mean absolute errors, summed over the outputs."""

    name = "MAE"

    def total(self, a, y):
        return float(np.sum(np.abs(a - y)))


METRICS = {"accuracy": Accuracy, "MAE": MAE}
_ALIASES = {"accuracy": "accuracy", "acc": "accuracy", "categorical_accuracy": "accuracy",
            "mae": "MAE"}


def get_metric(name):
    """A metric object for ``name``; ``None`` means accuracy.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    key = "accuracy" if name is None else str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"compile: unknown metric {name!r}; expected 'accuracy' or 'MAE'")
    return METRICS[_ALIASES[key]]()
