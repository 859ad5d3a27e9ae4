"""Reading and writing the book's ``params.pkl`` files without trusting them.

The book saves ``network.params`` with ``pickle.dump`` (a dict ``{'W1': ndarray, ...}``) and
loads it back with ``pickle.load``, which runs whatever code a crafted file asks for. Here a
restricted unpickler resolves only the few globals that rebuilding plain NumPy arrays needs,
and the result must then be a dict of str keys and floating-point arrays.
"""
import collections
import os
import pickle
import tempfile

import numpy as np

__all__ = ["ParamsFileError", "load_params_file", "save_params_file", "check_params",
           "ParamsIOMixin"]


class ParamsFileError(ValueError):
    """A params file is missing, is not a pickle, holds something other than a dict of
    arrays, or does not fit the network."""


def _latin1_encode(text, encoding):
    # protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, 'latin1');
    # only that one codec is allowed
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed_globals():
    # take the functions from NumPy's own reducers instead of importing private modules, so
    # the names NumPy 1.x wrote (numpy.core...) and NumPy 2.x writes (numpy._core...) both
    # map to whatever this NumPy provides
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
             ("_codecs", "encode"): _latin1_encode,
             ("collections", "OrderedDict"): collections.OrderedDict}
    for core in ("numpy.core", "numpy._core"):
        table[(core + ".multiarray", "_reconstruct")] = reconstruct
        table[(core + ".numeric", "_frombuffer")] = frombuffer
    return table


_ALLOWED = _allowed_globals()


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build dicts, strings and NumPy arrays, and nothing that imports or
    calls anything else."""

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: a params file may only hold a "
                "dict of NumPy arrays") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent ids in a params file")


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
            obj = _ArraysOnlyUnpickler(f, encoding="latin1").load()
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
    directory = os.path.dirname(os.path.abspath(file_name))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".params-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(plain, f)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, file_name)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
