"""Safe file input/output shared by the params files and the MNIST cache.

``safe_unpickle`` rebuilds dicts, lists, tuples, strings, numbers and NumPy arrays and refuses
every other global, so a crafted pickle cannot run code. ``load_npz`` reads a NumPy ``.npz``
without pickle at all, checking every member's CRC-32 first. ``atomic_write`` writes through a
temporary file in the target folder and renames it, so readers never see half a file.
"""
import collections
import os
import pickle
import tempfile
import zipfile

import numpy as np

__all__ = ["safe_unpickle", "load_npz", "atomic_write"]


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
    scalar = np.float64(0).__reduce__()[0]
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
             ("_codecs", "encode"): _latin1_encode,
             ("collections", "OrderedDict"): collections.OrderedDict}
    for core in ("numpy.core", "numpy._core"):
        table[(core + ".multiarray", "_reconstruct")] = reconstruct
        table[(core + ".multiarray", "scalar")] = scalar
        table[(core + ".numeric", "_frombuffer")] = frombuffer
    return table


_ALLOWED = _allowed_globals()


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: only plain containers and "
                "NumPy arrays may be loaded") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent ids")


def safe_unpickle(fileobj):
    """Load a pickle of containers and NumPy arrays (any protocol, Python-2 era included:
    ``encoding='latin1'``) without executing code; ``pickle.UnpicklingError`` otherwise."""
    return _ArraysOnlyUnpickler(fileobj, encoding="latin1").load()


def load_npz(path):
    """Every array of an ``.npz`` file as ``{name: ndarray}``, with no pickle code run.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It is not a zip file (truncated files are not), a member's bytes do not match its
        CRC-32 (corrupted), or an array needs pickle (object arrays are never loaded). The
        message reads after the file's name: ``f"{path} {exc}"``.
    """
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            # np.load reads only what is asked for: test every member's checksum first
            bad = archive.testzip()
    except OSError:
        raise
    except Exception as exc:  # truncated or garbage bytes fail in many ways
        raise ValueError(f"is truncated or not an .npz file ({type(exc).__name__}: {exc})") \
            from None
    if bad is not None:
        raise ValueError(f"is corrupted: member {bad!r} does not match its CRC-32")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except OSError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # object arrays need pickle: refused
            raise ValueError(f"holds pickled objects, which are never loaded ({exc})") \
                from None
        raise ValueError(f"is not a valid .npz file ({exc})") from None
    except Exception as exc:  # a well-formed zip of malformed .npy headers
        raise ValueError(f"is not a valid .npz file ({type(exc).__name__}: {exc})") from None


def atomic_write(path, write, check=None):
    """Write ``path`` through a temp file in the same folder, then ``os.replace``.

    ``write(fileobj)`` fills the temp file; ``check(tmp_path)`` may reject it by raising.
    On any failure the temp file is removed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache may be shared
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _fsync_dir(directory):
    # the rename itself must reach the disk before a crash for the new file to be there
    if hasattr(os, "O_DIRECTORY"):  # POSIX; Windows cannot open a folder
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
