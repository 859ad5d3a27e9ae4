"""One network, four implementations, for the end-to-end benchmarks.

``make_runner(impl, net_name, dtype, batch)`` gives a :class:`Runner` whose ``step()`` is one
step of the book's Trainer (gradient, Adam update, loss) and whose ``infer(x, t)`` is the
accuracy over a data set, 100 images at a time:

``numpy_im2col``    the fastconv network with the book's layers swapped in (bench/book_layers.py)
                    and the book's Adam (``naive.BookAdam``: NumPy passes per array)
``numba_serial``    the fastconv network, serial kernels
``numba_parallel``  the fastconv network, parallel kernels
``torch``           the same architecture and weights in ``torch.nn``, ``torch.optim.Adam``
"""
from contextlib import ExitStack, contextmanager

import numpy as np

import naive
import registry
from bench.book_layers import to_book
from fastconv import config
from fastconv import layers as fc_layers
from fastconv.models import DeepConvNet, SimpleConvNet
from fastconv.optimizer import Adam

__all__ = ["NETS", "E2E_IMPLS", "make_runner", "make_data", "torch_model"]

NETS = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}
E2E_IMPLS = ("numpy_im2col", "numba_serial", "numba_parallel", "torch")


def make_data(n, dtype, seed=0):
    """``n`` random 1x28x28 images and labels (timing does not need MNIST itself)."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 28, 28)).astype(dtype), rng.integers(0, 10, n)


@contextmanager
def _keep_dtype(flag):
    before = config.keep_dtype()
    config.set_keep_dtype(flag)
    try:
        yield
    finally:
        config.set_keep_dtype(before)


class Runner:
    """A network with its optimizer, a training batch and the switches it runs under."""

    def __init__(self, impl, network, x, t, contexts=()):
        self.impl = impl
        self.network = network
        self.x, self.t = x, t
        self._contexts = contexts
        self.optimizer = Adam(lr=0.001)

    @contextmanager
    def active(self):
        with ExitStack() as stack:
            for make in self._contexts:
                stack.enter_context(make())
            yield

    def step(self):
        """The book's ``Trainer.train_step`` without its sampling and per-epoch evaluation."""
        with self.active():
            grads = self.network.gradient(self.x, self.t)
            self.optimizer.update(self.network.params, grads)
            return self.network.loss(self.x, self.t)

    def infer(self, x, t):
        with self.active():
            return self.network.accuracy(x, t, batch_size=100)


def _book_dropout_module():
    import torch

    class BookDropout(torch.nn.Module):
        """The book's Dropout (not torch's inverted one): mask in training, scale at test."""

        def __init__(self, ratio):
            super().__init__()
            self.ratio = ratio

        def forward(self, x):
            if self.training:
                return x * (torch.rand_like(x) > self.ratio)
            return x * (1.0 - self.ratio)

    return BookDropout


def torch_model(network):
    """``torch.nn.Sequential`` twin of a fastconv network, with copies of its weights."""
    import torch
    from torch import nn

    _BookDropout = _book_dropout_module()

    layers = network.layers.values() if hasattr(network.layers, "values") else network.layers
    dtype = torch.from_numpy(np.asarray(network.params["W1"])).dtype
    modules = []
    for layer in layers:
        if isinstance(layer, fc_layers.Convolution):
            FN, C, FH, FW = layer.W.shape
            conv = nn.Conv2d(C, FN, (FH, FW), stride=layer.stride, padding=layer.pad,
                             dtype=dtype)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.asarray(layer.W)))
                conv.bias.copy_(torch.from_numpy(np.asarray(layer.b)))
            modules.append(conv)
        elif isinstance(layer, fc_layers.Relu):
            modules.append(nn.ReLU())
        elif isinstance(layer, fc_layers.Pooling):
            modules.append(nn.MaxPool2d((layer.pool_h, layer.pool_w), layer.stride, layer.pad))
        elif isinstance(layer, fc_layers.Affine):
            linear = nn.Linear(*layer.W.shape, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.asarray(layer.W).T))
                linear.bias.copy_(torch.from_numpy(np.asarray(layer.b)))
            modules += [nn.Flatten(), linear]  # the book's Affine flattens (N, C, H, W)
        elif isinstance(layer, fc_layers.Dropout):
            modules.append(_BookDropout(layer.dropout_ratio))
        else:
            raise TypeError(f"no torch twin for {type(layer).__name__}")
    return nn.Sequential(*modules)


class TorchRunner(Runner):
    def __init__(self, network, x, t):
        import torch
        super().__init__("torch", torch_model(network), torch.from_numpy(x),
                         torch.from_numpy(t))
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=0.001)
        self.criterion = torch.nn.CrossEntropyLoss()

    def step(self):
        import torch
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        self.criterion(self.network(self.x), self.t).backward()
        self.optimizer.step()
        with torch.no_grad():  # the book's second forward builds no graph either
            return self.criterion(self.network(self.x), self.t).item()

    def infer(self, x, t):
        import torch
        self.network.eval()
        x, t = torch.from_numpy(x), torch.from_numpy(t)
        correct = 0
        with torch.no_grad():
            for i in range(0, x.shape[0], 100):
                correct += (self.network(x[i:i + 100]).argmax(1) == t[i:i + 100]).sum().item()
        return correct / x.shape[0]


def make_runner(impl, net_name, dtype, batch, seed=0):
    """A :class:`Runner` of ``impl`` (one of ``E2E_IMPLS``) on ``net_name`` in ``dtype``.

    Every implementation starts from the same weights (``np.random.seed(seed)``).
    """
    np_dtype = np.dtype(dtype)
    np.random.seed(seed)
    network = NETS[net_name](dtype=np_dtype)
    x, t = make_data(batch, np_dtype, seed + 1)
    if impl == "torch":
        return TorchRunner(network, x, t)
    if impl == "numpy_im2col":
        runner = Runner(impl, to_book(network), x, t)  # computes in float64, as the book
        # the book's Adam too: fastconv's fused one gives the same bits, faster, and the
        # baseline is the book's whole Trainer step
        runner.optimizer = naive.BookAdam(lr=0.001)
        return runner
    parallel = impl == "numba_parallel"
    contexts = [lambda: registry.numba_variant(parallel)]
    if np_dtype == np.float32:
        contexts.append(lambda: _keep_dtype(True))
    return Runner(impl, network, x, t, contexts)
