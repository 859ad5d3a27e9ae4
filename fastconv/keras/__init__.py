"""The Keras-like API of the seed NumPy CNN framework, on fastconv's kernels.

The seed's imports map by replacing ``cnn.`` with ``fastconv.keras.``::

    from fastconv.keras.layers import *
    from fastconv.keras.models import Model, load_model
    from fastconv.keras.visualization import history_show, confusion_show
    # (or fastconv.keras.utils.visualization, the seed's own path)

Modules: :mod:`~fastconv.keras.layers` (Input, Conv2D, MaxPooling2D, AveragePooling2D,
Flatten, Dense, Output, Recurrent), :mod:`~fastconv.keras.models` (Model, load_model),
:mod:`~fastconv.keras.recurrent` (the seed's simple RNN layer, on the Numba kernel of
:mod:`fastconv.kernels.recurrent`), :mod:`~fastconv.keras.losses`,
:mod:`~fastconv.keras.metrics` (``compile``'s third argument: accuracy or MAE),
:mod:`~fastconv.keras.activations`, :mod:`~fastconv.keras.saving`,
:mod:`~fastconv.keras.visualization`.
"""
from .layers import (AveragePooling2D, Conv2D, Dense, Flatten, Input, MaxPooling2D,
                     Output, Recurrent)
from .models import Model, load_model

__all__ = ["Input", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dense",
           "Output", "Recurrent", "Model", "load_model", "history_show", "confusion_show"]


def __getattr__(name):
    # matplotlib is optional: import the plotting module only when a plot is asked for
    if name in ("history_show", "confusion_show"):
        from . import visualization
        return getattr(visualization, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
