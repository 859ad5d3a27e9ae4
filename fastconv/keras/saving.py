"""Saving and loading a :class:`~fastconv.keras.models.Model` as one file of plain data.

The file holds named arrays and strings only:

``format``          ``"fastconv.keras.model/1"``
``name``, ``loss``  model name and loss name
``lr``              learning rate
``input_shape``     int array, the Input layer's shape
``layer_count``     int
``layer_<i>/kind``  layer class name (looked up in a fixed table, never imported by name)
``layer_<i>/config`` JSON text of the constructor arguments
``layer_<i>/<p>``   float arrays of the layer's weights (``W``; a Recurrent layer's ``U``,
                    ``W`` and its current ``state``)
``metric``          the metric given to ``compile`` (absent in older files: accuracy)

Two containers carry it: HDF5 (the seed's format) when h5py is installed, else NumPy's
``.npz``. Loading reads the container's magic bytes, so the file name does not matter;
``.npz`` files are opened with ``allow_pickle=False`` and JSON is parsed as data, so loading
a file never runs code from it.
"""
import inspect
import json
import os
import warnings

import numpy as np

from .._safeio import load_npz
from .layers import LAYER_CLASSES, Input

__all__ = ["save_model", "load_model", "h5py_available", "FORMAT"]

FORMAT = "fastconv.keras.model/1"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def _h5py():
    try:
        import h5py
    except ImportError:
        return None
    return h5py


def h5py_available():
    """Whether HDF5 files can be written and read (h5py importable)."""
    return _h5py() is not None


# ---------------------------------------------------------------------- model <-> entries
def _entries(model):
    """The model as ``{key: str | ndarray}``."""
    if model.loss_fcn_name is None:
        raise RuntimeError("save: compile the model first (the file stores lr and loss)")
    out = {"format": FORMAT, "name": model.name, "loss": model.loss_fcn_name,
           "metric": model.metric.name, "lr": np.float64(model.lr),
           "input_shape": np.asarray(model.input.input_shape, dtype=np.int64),
           "layer_count": np.int64(len(model.layers))}
    for i, layer in enumerate(model.layers):
        out[f"layer_{i}/kind"] = layer.kind
        out[f"layer_{i}/config"] = json.dumps(layer.get_config(), sort_keys=True)
        for pname, arr in layer.saved_arrays().items():
            out[f"layer_{i}/{pname}"] = np.ascontiguousarray(arr)
    return out


def _text(entries, key):
    value = entries[key]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    value = np.asarray(value)
    if value.dtype.kind not in "US" or value.ndim != 0:
        raise ValueError(f"load_model: entry {key!r} must be a string")
    return str(value.item().decode() if value.dtype.kind == "S" else value.item())


def _layer_kwargs(cls, config, where):
    """Check that ``config`` only names plain constructor arguments of ``cls``."""
    if not isinstance(config, dict):
        raise ValueError(f"load_model: {where} config must be a JSON object")
    allowed = set(inspect.signature(cls).parameters) - {"input_shape", "input_dim",
                                                        "kernel", "theta"}
    extra = set(config) - allowed
    if extra:
        raise ValueError(f"load_model: {where} config has unknown keys {sorted(extra)}")
    return config


def _model_from_entries(entries):
    from .models import Model

    if "format" not in entries or _text(entries, "format") != FORMAT:
        raise ValueError(f"load_model: not a {FORMAT} file")
    input_shape = tuple(int(s) for s in np.asarray(entries["input_shape"]).ravel())
    model = Model(Input(input_shape), _text(entries, "name"))
    for i in range(int(np.asarray(entries["layer_count"]))):
        kind = _text(entries, f"layer_{i}/kind")
        if kind not in LAYER_CLASSES:
            raise ValueError(f"load_model: unknown layer kind {kind!r}")
        cls = LAYER_CLASSES[kind]
        config = _layer_kwargs(cls, json.loads(_text(entries, f"layer_{i}/config")), kind)
        layer = cls(**config)
        model.add_layer(layer)
        arrays = {}
        for pname in layer.param_names + layer.state_names:
            key = f"layer_{i}/{pname}"
            if key not in entries:
                raise ValueError(f"load_model: missing weights {key!r}")
            arr = np.asarray(entries[key])
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"load_model: weights {key!r} are not numeric")
            arrays[pname] = arr
        layer.set_params(arrays)
    metric = _text(entries, "metric") if "metric" in entries else None
    model.compile(float(np.asarray(entries["lr"])), _text(entries, "loss"), metric)
    return model


# ---------------------------------------------------------------------- containers
def _write_npz(path, entries):
    arrays = {k: (np.array(v) if isinstance(v, str) else v) for k, v in entries.items()}
    # a file object, so that NumPy does not append ".npz" to the name
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _read_npz(path):
    try:
        return load_npz(path)
    except ValueError as exc:  # pickled objects are refused, not loaded
        raise ValueError(f"load_model: {path} {exc}") from None


def _write_h5(path, entries, h5py):
    with h5py.File(path, "w") as f:
        for key, value in entries.items():
            if isinstance(value, str):
                f.create_dataset(key, data=value, dtype=h5py.string_dtype("utf-8"))
            else:
                f.create_dataset(key, data=value)


def _read_h5(path, h5py):
    entries = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            if obj.dtype.kind == "O":  # h5py's variable-length strings
                entries[name] = obj.asstr()[()]
            else:
                entries[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return entries


def save_model(filename, model, format=None):
    """Write ``model`` to ``filename``.

    Parameters
    ----------
    filename : str or os.PathLike
        Written exactly as given (no suffix is added); parent folders are created.
    model : Model
        A compiled model.
    format : {None, "h5", "npz"}
        ``None``: ``"npz"`` for a ``.npz`` name, else HDF5 when h5py is installed, else
        ``"npz"`` (with a warning when the name asked for HDF5).

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(filename)
    h5py = _h5py()
    suffix = os.path.splitext(path)[1].lower()
    if format is None:
        if suffix == ".npz" or h5py is None:
            format = "npz"
            if suffix in _HDF5_SUFFIXES:
                warnings.warn(f"h5py is not installed: {path} is written as .npz data "
                              f"(load_model reads it all the same)", stacklevel=3)
        else:
            format = "h5"
    if format not in ("h5", "npz"):
        raise ValueError(f"save_model: format must be 'h5' or 'npz', got {format!r}")
    if format == "h5" and h5py is None:
        raise RuntimeError("save_model: format='h5' needs h5py (pip install h5py)")
    entries = _entries(model)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if format == "h5":
        _write_h5(path, entries, h5py)
    else:
        _write_npz(path, entries)
    return path


def load_model(filename):
    """Rebuild a model written by :func:`save_model` (either container).

    Raises
    ------
    ValueError
        If the file is neither container, holds pickled objects, or is not a model file.
    """
    path = os.fspath(filename)
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(_HDF5_MAGIC):
        h5py = _h5py()
        if h5py is None:
            raise RuntimeError(f"load_model: {path} is HDF5; install h5py to read it")
        entries = _read_h5(path, h5py)
    elif magic.startswith(_ZIP_MAGIC):
        entries = _read_npz(path)
    else:
        raise ValueError(f"load_model: {path} is neither HDF5 nor .npz")
    return _model_from_entries(entries)
