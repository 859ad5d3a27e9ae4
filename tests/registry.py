"""One registry of implementations per operation, shared by tests/ and bench/.

``REGISTRY[op][name]`` is an :class:`Impl`; every implementation of one ``op`` takes the same
arguments and returns the same thing (signatures in ``SIGNATURES``). Names:

``naive``           plain Python loops (``tests/naive.py``): the reference, small shapes only
``numpy_im2col``    the book's NumPy algorithm, as is (it computes in float64 whatever the input)
``numpy_strided``   ``sliding_window_view`` + one GEMM: the fast-NumPy trick, keeps the dtype
``numba_serial``    fastconv (``util``, ``layers.Convolution``, ``kernels.pooling``, in float32
                    mode) with every kernel in its serial Numba variant
``numba_parallel``  the same with every kernel in its ``prange`` variant
``torch``           PyTorch CPU (``torch.nn.functional`` / the ATen backward ops), if installed

Set ``FASTCONV_BENCH_TORCH=0`` to leave torch out even when it is installed.
"""
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastconv import config, layers, util
from fastconv.kernels import conv, pooling

if __package__:  # imported as tests.registry
    from . import naive
else:  # tests/ on sys.path: pytest's rootdir insertion, bench/conftest.py
    import naive

try:
    if os.environ.get("FASTCONV_BENCH_TORCH", "1").strip().lower() in ("0", "false", "no", "off"):
        raise ImportError("disabled by FASTCONV_BENCH_TORCH=0")
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

__all__ = ["Impl", "REGISTRY", "OPS", "IMPL_NAMES", "SIGNATURES", "HAS_TORCH", "make_args",
           "numba_variant", "set_num_threads"]

HAS_TORCH = torch is not None
OPS = ("im2col", "col2im", "conv_forward", "conv_backward", "maxpool_forward",
       "maxpool_backward", "avgpool_forward", "avgpool_backward")
IMPL_NAMES = ("naive", "numpy_im2col", "numpy_strided", "numba_serial", "numba_parallel",
              "torch")
SIGNATURES = {
    "im2col": "(x, FH, FW, stride, pad) -> col, book layout (N*out_h*out_w, C*FH*FW)",
    "col2im": "(col, x_shape, FH, FW, stride, pad) -> img (N, C, H, W)",
    "conv_forward": "(x, W, b, stride, pad) -> out (N, FN, out_h, out_w)",
    "conv_backward": "(dout, x, W, stride, pad) -> (dx, dW, db)",
    "maxpool_forward": "(x, PH, PW, stride, pad) -> (out, arg_max), arg_max in the book's layout",
    "maxpool_backward": "(dout, arg_max, x_shape, PH, PW, stride, pad) -> dx",
    "avgpool_forward": "(x, PH, PW, stride, pad) -> out",
    "avgpool_backward": "(dout, x_shape, PH, PW, stride, pad) -> dx",
}


def _as_state(*args):
    return args


def _keep_raw(raw, state):
    return raw


def _always(*args):
    return True


@dataclass(frozen=True)
class Impl:
    """One implementation of one op, split so that a benchmark times only ``run``.

    Attributes
    ----------
    name : str
    run : callable ``run(state) -> raw``, the timed part.
    prepare : callable ``prepare(*args) -> state``, untimed (default: the args tuple). Holds
        what a layer keeps from its forward pass (the book's ``col``), tensor conversion ...
    finish : callable ``finish(raw, state) -> result``, untimed: converts ``raw`` to the op's
        uniform result (NumPy arrays, the book's arg_max layout).
    supports : callable ``supports(*args) -> bool``: False where the algorithm cannot run
        these arguments (the book's pooling with pad > 0).
    """
    name: str
    run: Callable[[Any], Any]
    prepare: Callable[..., Any] = _as_state
    finish: Callable[[Any, Any], Any] = _keep_raw
    supports: Callable[..., bool] = _always

    def __call__(self, *args):
        state = self.prepare(*args)
        return self.finish(self.run(state), state)


def _star(func):
    """``run`` for a plain function of the op's arguments."""
    return lambda state: func(*state)


def _out_hw(H, W, FH, FW, stride, pad):
    return (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1


# ------------------------------------------------------------------ the book's algorithm ----
def _book_conv_backward_prepare(dout, x, W, stride, pad):
    # the book's Convolution keeps col and col_W from its forward pass
    _, col, col_W = naive.book_conv_forward(x, W, np.zeros(W.shape[0]), stride, pad)
    return dout, x, W, col, col_W, stride, pad


def _book_avgpool_forward(x, PH, PW, stride, pad):
    # the book has no average pooling: its Pooling with mean in place of max
    N, C, H, W = x.shape
    out_h, out_w = _out_hw(H, W, PH, PW, stride, pad)
    col = naive.book_im2col(x, PH, PW, stride, pad).reshape(-1, PH * PW)
    return np.mean(col, axis=1).reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)


def _book_avgpool_backward(dout, x_shape, PH, PW, stride, pad):
    pool_size = PH * PW
    d = dout.transpose(0, 2, 3, 1).reshape(-1, 1) / pool_size
    dcol = np.repeat(d, pool_size, axis=1).reshape(-1, x_shape[1] * pool_size)
    return naive.book_col2im(dcol, x_shape, PH, PW, stride, pad)


def _pad_zero(x, PH, PW, stride, pad):
    return pad == 0


# ------------------------------------------------------------------------ NumPy strided ----
def _windows(x, FH, FW, stride, pad, fill=0):
    """(N, C, out_h, out_w, FH, FW) view of every window of x (padded with ``fill``)."""
    if pad:
        x = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], constant_values=fill)
    return sliding_window_view(x, (FH, FW), axis=(2, 3))[:, :, ::stride, ::stride]


def _scatter_windows(parts, x_shape, stride, pad):
    """Add ``parts`` (N, C, out_h, out_w, FH, FW) back onto the image through a writable
    window view: one add per tap, and one tap never hits a cell twice."""
    N, C, H, W = x_shape
    FH, FW = parts.shape[4:]
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=parts.dtype)
    win = sliding_window_view(img, (FH, FW), axis=(2, 3), writeable=True)[:, :, ::stride, ::stride]
    for fh in range(FH):
        for fw in range(FW):
            win[..., fh, fw] += parts[..., fh, fw]
    return img[:, :, pad:pad + H, pad:pad + W]


def strided_im2col(x, FH, FW, stride, pad):
    win = _windows(x, FH, FW, stride, pad)
    N, C, out_h, out_w = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(N * out_h * out_w, C * FH * FW)


def strided_col2im(col, x_shape, FH, FW, stride, pad):
    N, C, H, W = x_shape
    out_h, out_w = _out_hw(H, W, FH, FW, stride, pad)
    parts = col.reshape(N, out_h, out_w, C, FH, FW).transpose(0, 3, 1, 2, 4, 5)
    return _scatter_windows(parts, x_shape, stride, pad)


def strided_conv_forward(x, W, b, stride, pad):
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    out_h, out_w = _out_hw(H, Wd, FH, FW, stride, pad)
    out = strided_im2col(x, FH, FW, stride, pad) @ W.reshape(FN, -1).T + b
    return out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2)


def _strided_conv_backward_prepare(dout, x, W, stride, pad):
    return dout, x.shape, W, strided_im2col(x, W.shape[2], W.shape[3], stride, pad), stride, pad


def _strided_conv_backward(state):
    dout, x_shape, W, col, stride, pad = state
    FN, C, FH, FW = W.shape
    d = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
    dW = (d.T @ col).reshape(W.shape)
    dx = strided_col2im(d @ W.reshape(FN, -1), x_shape, FH, FW, stride, pad)
    return dx, dW, d.sum(axis=0)


def strided_maxpool_forward(x, PH, PW, stride, pad):
    # pad with -inf so that padding never wins, as fastconv and PyTorch
    win = _windows(x, PH, PW, stride, pad, fill=-np.inf)
    N, C, out_h, out_w = win.shape[:4]
    flat = win.reshape(N, C, out_h, out_w, PH * PW)
    arg = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return out, arg.transpose(0, 2, 3, 1).reshape(-1)


def _book_arg_to_cells(arg_max, x_shape, out_h, out_w, PW, stride, pad):
    """(ih, iw) of the input cell each book-layout arg_max entry points at, as (N, C, oh, ow)."""
    N, C = x_shape[:2]
    k = arg_max.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)
    ih = (np.arange(out_h) * stride)[:, None] + k // PW - pad
    iw = np.arange(out_w) * stride + k % PW - pad
    return ih, iw


def strided_maxpool_backward(dout, arg_max, x_shape, PH, PW, stride, pad):
    N, C, H, W = x_shape
    ih, iw = _book_arg_to_cells(arg_max, x_shape, dout.shape[2], dout.shape[3], PW, stride, pad)
    flat = (np.arange(N * C).reshape(N, C, 1, 1) * H + ih) * W + iw
    # bincount adds the overlaps up (stride < pool) in one pass
    dx = np.bincount(flat.ravel(), weights=dout.ravel(), minlength=N * C * H * W)
    return dx.reshape(x_shape).astype(dout.dtype, copy=False)


def strided_avgpool_forward(x, PH, PW, stride, pad):
    return _windows(x, PH, PW, stride, pad).sum(axis=(4, 5)) * (1.0 / (PH * PW))


def strided_avgpool_backward(dout, x_shape, PH, PW, stride, pad):
    g = dout * (1.0 / (PH * PW))
    parts = np.broadcast_to(g[..., None, None], g.shape + (PH, PW))
    return _scatter_windows(parts, x_shape, stride, pad)


# ------------------------------------------------------------------------------ fastconv ----
def _sized_kernels():
    from fastconv.kernels import activation, im2col, pooling
    return [k for module in (activation, im2col, pooling) for k in vars(module).values()
            if isinstance(k, config._Kernel)]


@contextmanager
def numba_variant(parallel):
    """Run fastconv's parallel (True) or serial (False) kernels inside the block; parallel
    at every size (below ``fastconv.sizes.SERIAL_BELOW`` fastconv itself runs serial ones)."""
    before = config.parallel_enabled()
    kernels = _sized_kernels()
    below = [k.serial_below for k in kernels]
    config.set_parallel(parallel)
    if parallel:
        for k in kernels:
            k.serial_below = 0
    try:
        yield
    finally:
        config.set_parallel(before)
        for k, n in zip(kernels, below):
            k.serial_below = n


def _fc_conv_forward(x, W, b, stride, pad):
    # the layer, as a network runs it (per-sample or block GEMMs, chosen per shape)
    return layers.Convolution(W, b, stride, pad).forward(x)


def _fc_conv_backward_prepare(dout, x, W, stride, pad):
    layer = layers.Convolution(W, np.zeros(W.shape[0], W.dtype), stride, pad)
    layer.forward(x)  # what the layer keeps for backward is built here, untimed
    return layer, dout


def _fc_conv_backward(state):
    layer, dout = state
    dx = layer.backward(dout)
    return dx, layer.dW, layer.db


@contextmanager
def _fastconv_mode(parallel):
    # float32 mode on: float32 data stays float32, float64 data is float64 as in the book
    before = config.keep_dtype()
    config.set_keep_dtype(True)
    try:
        with numba_variant(parallel):
            yield
    finally:
        config.set_keep_dtype(before)


def _numba_impl(name, parallel, run, prepare=_as_state):
    def run_variant(state):
        with _fastconv_mode(parallel):
            return run(state)

    def prepare_variant(*args):
        with _fastconv_mode(parallel):
            return prepare(*args)

    return Impl(name, run_variant, prepare_variant)


_FASTCONV = {
    # the book's util API: float64 whatever the input, as the book's im2col
    "im2col": (_star(util.im2col), _as_state),
    "col2im": (_star(util.col2im), _as_state),
    "conv_forward": (_star(_fc_conv_forward), _as_state),
    "conv_backward": (_fc_conv_backward, _fc_conv_backward_prepare),
    "maxpool_forward": (_star(pooling.maxpool_forward), _as_state),
    "maxpool_backward": (_star(pooling.maxpool_backward), _as_state),
    "avgpool_forward": (_star(pooling.avgpool_forward), _as_state),
    "avgpool_backward": (_star(pooling.avgpool_backward), _as_state),
}


# ------------------------------------------------------------------------------- PyTorch ----
def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _to_numpy(raw, state):
    return raw.numpy()


def _torch_im2col(state):
    x, FH, FW, stride, pad = state
    col = F.unfold(x, (FH, FW), padding=pad, stride=stride)  # (N, C*FH*FW, out_h*out_w)
    return col.transpose(1, 2).reshape(-1, col.shape[1])  # the book's rows = output cells


def _torch_col2im_prepare(col, x_shape, FH, FW, stride, pad):
    return _t(col).reshape(x_shape[0], -1, col.shape[1]), tuple(x_shape[2:]), FH, FW, stride, pad


def _torch_col2im(state):
    col, hw, FH, FW, stride, pad = state
    return F.fold(col.transpose(1, 2), hw, (FH, FW), padding=pad, stride=stride)


def _torch_conv_backward(state):
    dout, x, W, stride, pad = state
    # the ATen op autograd calls for conv2d, without building a graph
    return torch.ops.aten.convolution_backward(dout, x, W, [W.shape[0]], [stride] * 2, [pad] * 2,
                                               [1, 1], False, [0, 0], 1, [True, True, True])


def _torch_maxpool_finish(raw, state):
    # torch's index is ih*W + iw in the unpadded plane: turn it into the book's window position
    out, index = raw[0].numpy(), raw[1].numpy()
    x, PH, PW, stride, pad = state
    Wd = x.shape[3]
    oh = (np.arange(out.shape[2]) * stride)[:, None]
    ow = np.arange(out.shape[3]) * stride
    k = (index // Wd - oh + pad) * PW + (index % Wd - ow + pad)
    return out, k.transpose(0, 2, 3, 1).reshape(-1).astype(np.intp)


def _torch_maxpool_backward_prepare(dout, arg_max, x_shape, PH, PW, stride, pad):
    ih, iw = _book_arg_to_cells(arg_max, x_shape, dout.shape[2], dout.shape[3], PW, stride, pad)
    index = torch.from_numpy((ih * x_shape[3] + iw).astype(np.int64))
    x = torch.empty(tuple(x_shape), dtype=_t(dout).dtype)  # only its shape is read
    return _t(dout), x, [PH, PW], [stride] * 2, [pad] * 2, [1, 1], False, index


def _torch_avgpool_backward_prepare(dout, x_shape, PH, PW, stride, pad):
    x = torch.empty(tuple(x_shape), dtype=_t(dout).dtype)
    return _t(dout), x, [PH, PW], [stride] * 2, [pad] * 2, False, True, None


def _torch_tensors(*args):
    return tuple(_t(a) if isinstance(a, np.ndarray) else a for a in args)


def _torch_registry():
    def impl(run, prepare=_torch_tensors, finish=_to_numpy):
        return Impl("torch", run, prepare, finish)

    aten = torch.ops.aten
    return {
        "im2col": impl(_torch_im2col),
        "col2im": impl(_torch_col2im, _torch_col2im_prepare),
        "conv_forward": impl(lambda s: F.conv2d(s[0], s[1], s[2], stride=s[3], padding=s[4])),
        "conv_backward": impl(_torch_conv_backward,
                              finish=lambda raw, s: tuple(r.numpy() for r in raw)),
        "maxpool_forward": impl(lambda s: F.max_pool2d(s[0], s[1:3], s[3], s[4],
                                                       return_indices=True),
                                finish=_torch_maxpool_finish),
        "maxpool_backward": impl(_star(aten.max_pool2d_with_indices_backward),
                                 _torch_maxpool_backward_prepare),
        "avgpool_forward": impl(lambda s: F.avg_pool2d(s[0], s[1:3], s[3], s[4],
                                                       count_include_pad=True)),
        "avgpool_backward": impl(_star(aten.avg_pool2d_backward),
                                 _torch_avgpool_backward_prepare),
    }


# ------------------------------------------------------------------------------ registry ----
def _build():
    plain = {
        "naive": {op: getattr(naive, "loop_" + op) for op in OPS},
        "numpy_strided": {op: globals()["strided_" + op] for op in OPS if op != "conv_backward"},
        "numpy_im2col": {
            "im2col": naive.book_im2col, "col2im": naive.book_col2im,
            "conv_forward": lambda *a: naive.book_conv_forward(*a)[0],
            "maxpool_backward": naive.book_pool_backward,
            "avgpool_forward": _book_avgpool_forward, "avgpool_backward": _book_avgpool_backward,
        },
    }
    registry = {op: {} for op in OPS}
    for name, funcs in plain.items():
        for op, func in funcs.items():
            registry[op][name] = Impl(name, _star(func))
    registry["conv_backward"]["numpy_im2col"] = Impl(
        "numpy_im2col", _star(naive.book_conv_backward), _book_conv_backward_prepare)
    registry["maxpool_forward"]["numpy_im2col"] = Impl(
        "numpy_im2col", _star(naive.book_pool_forward), supports=_pad_zero)
    registry["conv_backward"]["numpy_strided"] = Impl(
        "numpy_strided", _strided_conv_backward, _strided_conv_backward_prepare)
    for op, (run, prepare) in _FASTCONV.items():
        registry[op]["numba_serial"] = _numba_impl("numba_serial", False, run, prepare)
        registry[op]["numba_parallel"] = _numba_impl("numba_parallel", True, run, prepare)
    if HAS_TORCH:
        for op, impl in _torch_registry().items():
            registry[op]["torch"] = impl
    # one fixed column order everywhere
    return {op: {n: impls[n] for n in IMPL_NAMES if n in impls} for op, impls in registry.items()}


REGISTRY = _build()


def set_num_threads(n):
    """Threads for fastconv's parallel kernels and for torch alike."""
    config.set_num_threads(n)
    if HAS_TORCH:
        torch.set_num_threads(int(n))


if HAS_TORCH:
    torch.set_num_threads(config.get_num_threads())  # same thread count in both columns


# ---------------------------------------------------------------------------- arguments ----
def window(spec):
    """(FH, FW) of a conv spec (``W`` key) or (PH, PW) of a pooling spec (``pool`` key)."""
    return tuple(spec["W"][2:]) if "W" in spec else tuple(spec["pool"])


def make_args(op, spec, dtype=np.float64, seed=0):
    """Random arguments of ``op`` for ``spec``: ``{"x": (N, C, H, W), "stride", "pad"}`` plus
    ``"W": (FN, C, FH, FW)`` (convolutions) or ``"pool": (PH, PW)`` (pooling)."""
    rng = np.random.default_rng(seed)

    def randn(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    x_shape = tuple(int(s) for s in spec["x"])
    N, C, H, W = x_shape
    FH, FW = window(spec)
    stride, pad = spec["stride"], spec["pad"]
    out_h, out_w = _out_hw(H, W, FH, FW, stride, pad)
    x = randn(*x_shape)
    if op == "im2col":
        return x, FH, FW, stride, pad
    if op == "col2im":
        return randn(N * out_h * out_w, C * FH * FW), x_shape, FH, FW, stride, pad
    if op.startswith("conv"):
        FN = spec["W"][0]
        Wt = randn(FN, C, FH, FW, scale=(2.0 / (C * FH * FW)) ** 0.5)
        if op == "conv_forward":
            return x, Wt, randn(FN, scale=0.1), stride, pad
        return randn(N, FN, out_h, out_w), x, Wt, stride, pad
    dout = randn(N, C, out_h, out_w)
    if op == "maxpool_backward":
        arg_max = strided_maxpool_forward(x, FH, FW, stride, pad)[1]
        return dout, arg_max, x_shape, FH, FW, stride, pad
    if op == "avgpool_backward":
        return dout, x_shape, FH, FW, stride, pad
    return x, FH, FW, stride, pad
