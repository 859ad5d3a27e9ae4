# coding: utf-8
# Twin of the book's dataset/mnist.py: reads the four IDX .gz files from $FASTCONV_DATA.
import gzip
import os
import numpy as np


def _read(name, offset):
    with gzip.open(os.path.join(os.environ['FASTCONV_DATA'], name), 'rb') as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_mnist(normalize=True, flatten=True, one_hot_label=False):
    data = {'train_img': _read('train-images-idx3-ubyte.gz', 16).reshape(-1, 784),
            'train_label': _read('train-labels-idx1-ubyte.gz', 8),
            'test_img': _read('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 784),
            'test_label': _read('t10k-labels-idx1-ubyte.gz', 8)}
    if normalize:
        for key in ('train_img', 'test_img'):
            data[key] = data[key].astype(np.float32)
            data[key] /= 255.0
    if one_hot_label:
        for key in ('train_label', 'test_label'):
            data[key] = np.eye(10)[data[key]]
    if not flatten:
        for key in ('train_img', 'test_img'):
            data[key] = data[key].reshape(-1, 1, 28, 28)
    return (data['train_img'], data['train_label']), (data['test_img'], data['test_label'])
