"""Checkpoints of a training run: one ``.npz`` file of arrays with a JSON header.

A checkpoint ``checkpoint-<step>.npz`` holds

``checkpoint.json``        the header (JSON text): format name and version, step, epoch, the
                           run's settings, the metrics so far that are not arrays, the
                           optimizer's and the random state's scalars
``params/<key>``           the network's parameters
``optimizer/<name>/<key>`` the optimizer's arrays (Adam's ``m`` and ``v``, Momentum's ``v``)
``rng/key``                the 624 words of ``np.random``'s Mersenne Twister
``metrics/<name>``         the loss and accuracy lists so far

Why ``.npz`` and JSON rather than a pickle: NumPy reads it with ``allow_pickle=False``
(:func:`fastconv._safeio.load_npz`), so loading runs no code from the file, while arrays
keep their dtype and every bit; zip's CRC-32 per member catches corrupted bytes and its
directory at the end of the file catches truncation.

Files are written through a temporary file, fsynced and renamed
(:func:`fastconv._safeio.atomic_write`), so a kill at any moment leaves the previous
checkpoints whole. A :class:`CheckpointFolder` keeps the last two of its own run.
"""
import json
import os
import re
from typing import NamedTuple

import numpy as np

from ._safeio import atomic_write, load_npz

__all__ = ["CheckpointError", "Checkpoint", "CheckpointFolder", "FORMAT", "VERSION",
           "read_checkpoint", "checkpoint_paths", "rng_state", "set_rng_state",
           "optimizer_state", "restore_optimizer"]

FORMAT = "fastconv.checkpoint"
VERSION = 1
HEADER = "checkpoint.json"
_NAME = re.compile(r"checkpoint-(\d+)\.npz")


class CheckpointError(ValueError):
    """A checkpoint is unreadable, truncated, corrupted, of another format version, or does
    not fit the run it should continue; the message names the file."""


class Checkpoint(NamedTuple):
    """One checkpoint as read: its file, the step it was taken after, its arrays and its
    header (``info``)."""
    path: str
    step: int
    arrays: dict
    info: dict


def checkpoint_paths(folder):
    """``[(step, path)]`` of the checkpoint files in ``folder``, oldest first."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(m.group(1)), os.path.join(folder, name))
             for name in names if (m := _NAME.fullmatch(name))]
    return sorted(found)


def read_checkpoint(path):
    """Read and check one checkpoint file; no pickle code runs.

    Raises
    ------
    CheckpointError
        Unreadable, truncated, corrupted, not a checkpoint, or of another format version.
    """
    path = os.fspath(path)
    try:
        entries = load_npz(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} {exc}") from None
    header = entries.pop(HEADER, None)
    try:
        info = json.loads(str(header.item()))
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise ValueError
    except (AttributeError, ValueError):
        raise CheckpointError(f"{path} is not a fastconv checkpoint (no {HEADER} header)") \
            from None
    if info.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {info.get('version')!r}; "
                              f"this fastconv reads version {VERSION}")
    missing = sorted(set(info.get("arrays", ())) - set(entries))
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the arrays {missing}")
    return Checkpoint(path, int(info["step"]), entries, info)


class CheckpointFolder:
    """The checkpoints of one run in ``folder``: writes them, keeps the last ``keep``, finds
    the newest sound one.

    Every write keeps the new file and the ``keep - 1`` this run wrote (or resumed from)
    before it and removes every other ``checkpoint-*.npz`` in the folder: those of an earlier
    run there, and any that could not be read when resuming.
    """

    def __init__(self, folder, keep=2):
        self.folder = os.fspath(folder)
        self.keep = keep
        self.lineage = []  # this run's files, oldest first

    def latest(self, warn=None):
        """The newest checkpoint that reads back whole, or None if the folder has none.

        ``warn(message)`` is called for each newer one that could not be read, naming it and
        why. The one found starts this run's lineage.

        Raises
        ------
        CheckpointError
            The folder has checkpoints but none of them can be read.
        """
        errors = []
        for _, path in reversed(checkpoint_paths(self.folder)):
            try:
                found = read_checkpoint(path)
            except CheckpointError as exc:
                errors.append(str(exc))
                continue
            for error in errors if warn is not None else ():
                warn(f"{error}; using {os.path.basename(found.path)}, the newest sound one")
            self.continue_from(found.path)
            return found
        if errors:
            raise CheckpointError(f"no sound checkpoint in {self.folder}: "
                                  + "; ".join(errors))
        return None

    def continue_from(self, path):
        """Make ``path`` (a checkpoint of this folder) the start of this run's lineage."""
        self.lineage = [os.fspath(path)]

    def write(self, step, arrays, info):
        """Write ``checkpoint-<step>.npz`` atomically and drop the older ones; returns its
        path."""
        header = dict(info, format=FORMAT, version=VERSION, step=int(step),
                      arrays=sorted(arrays))
        entries = {HEADER: np.array(json.dumps(header))}
        entries.update(arrays)
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"checkpoint-{int(step):08d}.npz")
        if not self.lineage:  # a kill during an earlier run's write left its temp file
            self._remove_stale_parts()
        # uncompressed: the bits are mostly random mantissas, zlib would only cost time
        atomic_write(path, lambda f: np.savez(f, **entries))
        earlier = [p for p in self.lineage if p != path]
        self.lineage = earlier[max(0, len(earlier) - self.keep + 1):] + [path]
        for _, other in checkpoint_paths(self.folder):
            if other not in self.lineage:
                _remove(other)
        return path

    def remove_all(self):
        """Delete this folder's checkpoints (and the folder, if that leaves it empty)."""
        for _, path in checkpoint_paths(self.folder):
            _remove(path)
        self.lineage = []
        try:
            os.rmdir(self.folder)
        except OSError:
            pass  # other files are there, or it is gone

    def _remove_stale_parts(self):
        for name in os.listdir(self.folder) if os.path.isdir(self.folder) else ():
            if name.startswith(".checkpoint-") and name.endswith(".part"):
                _remove(os.path.join(self.folder, name))


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------ state of a run ----
def rng_state():
    """``np.random``'s global state (it picks the batches and draws Dropout's masks) as
    ``(arrays, info)``."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return ({"rng/key": np.array(key, dtype=np.uint32)},
            {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
             "cached_gaussian": float(cached)})


def set_rng_state(arrays, info):
    """Put back a state from :func:`rng_state`."""
    np.random.set_state((info["kind"], arrays["rng/key"], info["pos"], info["has_gauss"],
                         info["cached_gaussian"]))


def optimizer_state(optimizer):
    """The state of one of :mod:`fastconv.optimizer`'s optimizers as ``(arrays, info)``.

    Its attributes are the state: numbers (``lr``, Adam's ``iter``), dicts of arrays
    (Adam's ``m`` and ``v``, Momentum's ``v``, AdaGrad's ``h``) or ``None`` before the first
    update.
    """
    arrays, numbers, dicts, unset = {}, {}, {}, []
    for name, value in vars(optimizer).items():
        if value is None:
            unset.append(name)
        elif isinstance(value, dict):
            dicts[name] = list(value)
            for key, arr in value.items():
                arrays[f"optimizer/{name}/{key}"] = np.asarray(arr)
        elif isinstance(value, bool):
            numbers[name] = value
        elif isinstance(value, (int, float, np.integer, np.floating)):
            # int stays int (Adam's iter); floats keep every bit through JSON's repr
            numbers[name] = int(value) if isinstance(value, (int, np.integer)) \
                else float(value)
        else:
            raise TypeError(f"cannot checkpoint {type(optimizer).__name__}.{name} "
                            f"(a {type(value).__name__})")
    return arrays, {"class": type(optimizer).__name__, "numbers": numbers, "dicts": dicts,
                    "unset": unset}


def restore_optimizer(optimizer, arrays, info, path):
    """Put the state from :func:`optimizer_state` into ``optimizer`` (of the same class)."""
    if info["class"] != type(optimizer).__name__:
        raise CheckpointError(f"checkpoint {path} holds the state of {info['class']}, not of "
                              f"{type(optimizer).__name__}")
    for name, value in info["numbers"].items():
        setattr(optimizer, name, value)
    for name in info["unset"]:
        setattr(optimizer, name, None)
    for name, keys in info["dicts"].items():
        setattr(optimizer, name, {key: np.array(arrays[f"optimizer/{name}/{key}"])
                                  for key in keys})
