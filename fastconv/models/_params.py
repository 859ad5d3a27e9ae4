"""Reading and writing the book's ``params.pkl`` files without trusting them.

The book saves ``network.params`` with ``pickle.dump`` (a dict ``{'W1': ndarray, ...}``) and
loads it back with ``pickle.load``, which runs whatever code a crafted file asks for. Here a
restricted unpickler resolves only the few globals that rebuilding plain NumPy arrays needs,
and the result must then be a dict of str keys and floating-point arrays.
"""
import os
import pickle

import numpy as np

from .._safeio import atomic_write, safe_unpickle

__all__ = ["ParamsFileError", "load_params_file", "save_params_file", "check_params",
           "ParamsIOMixin"]


class ParamsFileError(ValueError):
    """A params file is missing, is not a pickle, holds something other than a dict of
    arrays, or does not fit the network."""


def load_params_file(file_name):
    """Load a params file (the book's format) without executing code from it.

    Parameters
    ----------
    file_name : str or os.PathLike
        A pickle of a dict ``{name: ndarray}``, as the book's ``save_params`` writes.

    Returns
    -------
    dict
        ``{str: ndarray}`` with floating-point arrays.

    Raises
    ------
    ParamsFileError
        The file is missing or unreadable, is not a pickle, refers to any global other than
        NumPy's array reconstruction (e.g. ``os.system``), or is not a dict of str keys and
        floating-point arrays.
    """
    file_name = os.fspath(file_name)
    try:
        with open(file_name, "rb") as f:
            # latin1 lets pickles written by Python 2 decode their array bytes, as NumPy asks
            obj = safe_unpickle(f)
    except OSError as exc:
        raise ParamsFileError(f"cannot read params file {file_name}: {exc.strerror or exc}") \
            from None
    except pickle.UnpicklingError as exc:
        raise ParamsFileError(f"{file_name}: not a valid params file: {exc}") from None
    except Exception as exc:  # truncated or garbage bytes fail in many ways
        raise ParamsFileError(f"{file_name}: not a valid params file (a pickled dict of NumPy "
                              f"arrays): {type(exc).__name__}: {exc}") from None

    if not isinstance(obj, dict):
        raise ParamsFileError(f"{file_name}: holds a {type(obj).__name__}, expected a dict "
                              "{name: NumPy array}")
    params = {}
    for key, val in obj.items():
        if not isinstance(key, str):
            raise ParamsFileError(f"{file_name}: key {key!r} is not a string")
        if type(val) is not np.ndarray:
            raise ParamsFileError(f"{file_name}: {key} is a {type(val).__name__}, expected a "
                                  "NumPy array")
        if not np.issubdtype(val.dtype, np.floating):
            raise ParamsFileError(f"{file_name}: {key} has dtype {val.dtype}, expected a "
                                  "floating-point array")
        params[key] = val
    return params


def save_params_file(params, file_name="params.pkl"):
    """Write ``params`` as the book's ``save_params`` does: a pickled dict of arrays.

    The file is written to a temporary name and renamed, so an interrupted save never leaves
    half a file behind.
    """
    file_name = os.fspath(file_name)
    plain = {key: np.asarray(val) for key, val in params.items()}
    atomic_write(file_name, lambda f: pickle.dump(plain, f))


def check_params(loaded, expected, file_name, model_name):
    """Raise :class:`ParamsFileError` unless ``loaded`` has exactly the keys and shapes of
    ``expected`` (the network's own params)."""
    missing = sorted(set(expected) - set(loaded))
    extra = sorted(set(loaded) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise ParamsFileError(f"{file_name}: keys do not match {model_name} ({', '.join(parts)});"
                              " was it saved from another model?")
    for key in expected:
        if loaded[key].shape != expected[key].shape:
            raise ParamsFileError(
                f"{file_name}: {key} has shape {loaded[key].shape} but this {model_name} expects "
                f"{expected[key].shape}; was it saved from another model or configuration?")


class ParamsIOMixin:
    """``save_params`` / ``load_params`` of the book's networks.

    Subclasses define ``_param_layers()``: the layers holding ``W1, b1``, ``W2, b2``, ... in
    order.
    """

    def _bind_params(self):
        # layers keep references, so after replacing arrays in self.params they must be
        # pointed at the new ones (the book's load_params does the same)
        for i, layer in enumerate(self._param_layers(), start=1):
            layer.W = self.params["W" + str(i)]
            layer.b = self.params["b" + str(i)]

    def save_params(self, file_name="params.pkl"):
        """Pickle ``self.params`` as a dict ``{key: array}`` (loadable by the book's code)."""
        save_params_file(self.params, file_name)

    def load_params(self, file_name="params.pkl"):
        """Load a params file (the book's format) and point the layers at the arrays.

        Raises
        ------
        ParamsFileError
            See :func:`load_params_file`; also when keys or shapes do not fit this network.
        """
        params = load_params_file(file_name)
        check_params(params, self.params, os.fspath(file_name), type(self).__name__)
        for key, val in params.items():
            # keep the network's dtype (float64, or float32 in float32 mode)
            self.params[key] = np.ascontiguousarray(val, dtype=self.params[key].dtype)
        self._bind_params()
