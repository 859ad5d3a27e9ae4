"""MNIST-shaped synthetic digits: class d is a bright bar at row 2*d + 3, on noise.

A vertical jitter of one row makes neighbouring classes overlap, so a short training run
learns them well but not perfectly.
"""
import gzip
import hashlib

import numpy as np


def synthetic_digits(n, seed=0):
    """``n`` uint8 images (n, 28, 28) and uint8 labels (n,), from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 90, (n, 28, 28)).astype(np.uint8)
    rows = 2 * labels.astype(int) + 3 + rng.integers(-1, 2, n)
    starts = rng.integers(2, 8, n)
    for i in range(n):
        images[i, rows[i]:rows[i] + 2, starts[i]:starts[i] + 16] = 255
    return images, labels


def normalized(images, dtype=np.float32):
    """The book's ``load_mnist(normalize=True, flatten=False)`` form: (n, 1, 28, 28) / 255."""
    x = images.astype(dtype).reshape(-1, 1, 28, 28)
    x /= 255.0
    return x


def write_tiny_mnist(folder, n_train=200, n_test=100):
    """MNIST's four IDX files (gzipped) in ``folder`` (a pathlib.Path): digits drawn as bright
    bars, so the labels are learnable at all. Returns the SHA-256 of each uncompressed file,
    the table that replaces ``fastconv.datasets.mnist.SHA256``."""
    rng = np.random.default_rng(0)
    digests = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, d in enumerate(labels):
            images[i, 2 * d + 3:2 * d + 6, 4:24] = 255
        for kind, magic, body in (("images", 2051, images), ("labels", 2049, labels)):
            dims = [n, 28, 28] if kind == "images" else [n]
            data = np.array([magic] + dims, dtype=">u4").tobytes() + body.tobytes()
            name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            digests[name] = hashlib.sha256(data).hexdigest()
    return digests
