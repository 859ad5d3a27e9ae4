"""Small calls: where fastconv runs the book's own expression its numbers are the book's bits,
and the sizes of ``fastconv.sizes`` switch between the two ways a call can run."""
import importlib
import os
import sys

import numpy as np
import pytest

import naive as nv
from conftest import assert_close
from fastconv import config, functions, layers, optimizer, sizes
from fastconv.kernels import activation, im2col, optim, pooling
from fastconv.layers import Affine, Relu, SoftmaxWithLoss

TWIN = os.path.join(os.path.dirname(__file__), "book_twin")


@pytest.fixture(scope="module")
def book():
    """tests/book_twin's ``common`` modules (the book's code), leaving no ``common`` behind."""
    saved = {n: m for n, m in sys.modules.items() if n == "common" or n.startswith("common.")}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, TWIN)
    try:
        mods = {m: importlib.import_module("common." + m) for m in ("layers", "functions")}
    finally:
        sys.path.remove(TWIN)
        for name in [n for n in sys.modules if n == "common" or n.startswith("common.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    return type("Book", (), mods)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture
def spy(monkeypatch):
    """spy(module, name): wrap a function, return the list of its calls' first arguments."""
    def wrap(module, name):
        calls, real = [], getattr(module, name)

        def spied(*args, **kwargs):
            calls.append(args[0] if args else None)
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, spied)
        return calls
    return wrap


# ---------------------------------------------------------------------------------- Affine ----
@pytest.mark.parametrize("N", [1, 3, 100])
@pytest.mark.parametrize("D, U", [(784, 50), (100, 100), (50, 10)])
def test_affine_on_2d_input_is_the_books_np_dot(book, spy, N, D, U):
    rng = np.random.default_rng(N * D + U)
    W, b = rng.standard_normal((D, U)), rng.standard_normal(U)
    x, dout = rng.standard_normal((N, D)), rng.standard_normal((N, U))
    matmuls = spy(layers, "matmul")
    mine, ref = Affine(W, b), book.layers.Affine(W, b)
    assert same_bits(mine.forward(x), ref.forward(x))
    assert same_bits(mine.backward(dout), ref.backward(dout))
    assert same_bits(mine.dW, ref.dW) and same_bits(mine.db, ref.db)
    assert matmuls == []


@pytest.mark.parametrize("N", [1, 3])
def test_affine_after_a_convolution_runs_on_fastconv_threads_where_blas_would(spy, N):
    # (N, 30, 12, 12) x (4320, 50): N * W.size is 216,000 at N = 1 (np.dot runs one BLAS
    # thread there) and 648,000 at N = 3 (BLAS would start its threads)
    rng = np.random.default_rng(N)
    x = rng.standard_normal((N, 30, 12, 12))
    W, b = rng.standard_normal((4320, 50)), rng.standard_normal(50)
    dout = rng.standard_normal((N, 50))
    assert (N * W.size >= sizes.AFFINE_THREADS_FROM) == (N == 3)
    matmuls = spy(layers, "matmul")
    layer = Affine(W, b)
    out = layer.forward(x)
    dx = layer.backward(dout)
    assert len(matmuls) == (3 if N == 3 else 0)
    assert_close(out, nv.book_affine_forward(x, W, b))
    for got, want in zip((dx, layer.dW, layer.db), nv.book_affine_backward(dout, x, W)):
        assert_close(got, want)
    assert dx.shape == x.shape and layer.original_x_shape == x.shape


@pytest.mark.parametrize("shape", [(3, 784), (100, 30, 12, 12)])
def test_affine_backward_without_dx_sets_the_same_gradients(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    W, b = rng.standard_normal((int(np.prod(shape[1:])), 20)), rng.standard_normal(20)
    dout = rng.standard_normal((shape[0], 20))
    full, lean = Affine(W, b), Affine(W, b)
    full.forward(x), lean.forward(x)
    dx = full.backward(dout)
    assert lean.backward(dout, need_dx=False) is None and dx.shape == shape
    assert same_bits(lean.dW, full.dW) and same_bits(lean.db, full.db)
    for got, want in zip((dx, full.dW, full.db), nv.book_affine_backward(dout, x, W)):
        assert_close(got, want)


def test_affine_errors_name_the_sizes():
    layer = Affine(np.zeros((784, 50)), np.zeros(50))
    with pytest.raises(ValueError, match=r"x has 783 features.*W has shape \(784, 50\)"):
        layer.forward(np.zeros((3, 783)))
    with pytest.raises(ValueError, match=r"x has 783 features"):
        layer.forward(np.zeros((300, 3, 261)))  # 4-D: on fastconv's threads' side
    layer.forward(np.zeros((3, 784)))
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 50\), got \(3, 49\)"):
        layer.backward(np.zeros((3, 49)))


def test_float32_stays_float32_on_both_sides_of_the_affine_threshold():
    config.set_keep_dtype(True)
    try:
        for shape in ((2, 784), (100, 16, 4, 4)):
            W = np.ones((int(np.prod(shape[1:])), 64), np.float32)
            layer = Affine(W, np.zeros(64, np.float32))
            out = layer.forward(np.ones(shape, np.float32))
            dx = layer.backward(np.ones(out.shape, np.float32))
            assert out.dtype == dx.dtype == layer.dW.dtype == np.float32
            assert out[0, 0] == W.shape[0]
    finally:
        config.set_keep_dtype(False)


# ------------------------------------------------------------------------------------ Relu ----
def _relu_input(size, dtype):
    rng = np.random.default_rng(size)
    x = rng.standard_normal(size).astype(dtype)
    x[:6] = [-0.0, 0.0, np.nan, np.inf, -np.inf, 1.0]
    return x.reshape(1, size)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("book_below", [0, 1 << 30])  # always the kernel / always the book's
def test_relu_both_ways_are_the_books_bits(book, monkeypatch, spy, dtype, book_below):
    monkeypatch.setattr(layers, "_RELU_BOOK_BELOW", book_below)
    kernels = spy(activation, "relu_forward")
    for size in (10, 100, 5000):
        x = _relu_input(size, dtype)
        mine, ref = Relu(), book.layers.Relu()
        assert same_bits(mine.forward(x), ref.forward(x))
        assert same_bits(mine.mask, ref.mask)
        dout, dref = _relu_input(size, dtype)[::-1].copy(), _relu_input(size, dtype)[::-1].copy()
        back = mine.backward(dout)
        assert back is dout  # in place, as the book
        assert same_bits(back, ref.backward(dref))
    assert len(kernels) == (3 if book_below == 0 else 0)


def test_relu_default_sizes_switch_at_the_table(spy):
    n = sizes.BOOK_BELOW["relu"]
    assert layers._RELU_BOOK_BELOW == n
    kernels = spy(activation, "relu_forward")
    Relu().forward(np.ones(n - 1))
    assert kernels == []
    Relu().forward(np.ones(n))
    assert len(kernels) == 1


def test_relu_backward_names_a_wrong_shape():
    relu = Relu()
    relu.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\)"):
        relu.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="dout must be an ndarray"):
        relu.backward([[1.0] * 3] * 2)


# ------------------------------------------------------------------- softmax, cross entropy ----
@pytest.mark.parametrize("N", [1, 3, 100])
def test_softmax_and_cross_entropy_are_the_books_bits(book, N):
    rng = np.random.default_rng(N)
    x = rng.standard_normal((N, 10)) * 5
    t = rng.integers(-10, 10, N)
    one_hot = np.eye(10)[t]
    assert same_bits(functions.softmax(x), book.functions.softmax(x))
    assert same_bits(functions.softmax(x[0]), book.functions.softmax(x[0]))
    y = functions.softmax(x)
    for labels in (t, one_hot):
        assert same_bits(functions.cross_entropy_error(y, labels),
                         book.functions.cross_entropy_error(y, labels))
    assert same_bits(functions.cross_entropy_error(y[0], one_hot[0]),
                     book.functions.cross_entropy_error(y[0], one_hot[0]))
    mine, ref = SoftmaxWithLoss(), book.layers.SoftmaxWithLoss()
    assert same_bits(mine.forward(x, t), ref.forward(x, t))
    assert same_bits(mine.backward(), ref.backward())


def test_cross_entropy_error_names_bad_labels():
    y = functions.softmax(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="t holds the label 10 but y has 10 classes"):
        functions.cross_entropy_error(y, np.array([0, 10, 2]))
    with pytest.raises(ValueError, match="t holds the label -11"):
        functions.cross_entropy_error(y, np.array([0, -11, 2]))
    with pytest.raises(TypeError, match="integer class indices"):
        functions.cross_entropy_error(y, np.array([0.0, 1.0, 2.0]))


# ------------------------------------------------------------------------------------ Adam ----
def test_adam_runs_the_books_lines_on_small_arrays(monkeypatch, spy):
    monkeypatch.setitem(sizes.BOOK_BELOW, "adam", 1000)
    rng = np.random.default_rng(0)
    shapes = {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    ref = {k: v.copy() for k, v in params.items()}
    fused = spy(optim, "adam_update")
    mine, book = optimizer.Adam(), nv.BookAdam()
    for _ in range(3):
        grads = {k: rng.standard_normal(s) for k, s in shapes.items()}
        mine.update(params, grads)
        book.update(ref, grads)
    for key in shapes:
        assert same_bits(params[key], ref[key]), key
    assert [p.shape for p in fused] == [(784, 50)] * 3  # the others are under 1000 values


# ------------------------------------------------------------------ one thread below a size ----
@pytest.mark.parametrize("N", [1, 100])
def test_pooling_and_im2col_run_serial_below_their_size(monkeypatch, N):
    calls = []
    for kern in (pooling._maxpool_forward_2x2s2, im2col._im2col):
        for variant in ("serial", "parallel"):
            real = getattr(kern, variant)
            monkeypatch.setattr(kern, variant, lambda *a, _r=real, _v=variant: (
                calls.append(_v), _r(*a))[1])
    x = np.random.default_rng(N).standard_normal((N, 30, 24, 24))
    out, idx = pooling.maxpool_forward(x, 2, 2, 2, 0)
    col = im2col.im2col(x[:, :1], 5, 5)
    big = (x.size >= pooling.SERIAL_BELOW, col.size >= im2col.SERIAL_BELOW)
    assert calls == ["parallel" if b else "serial" for b in big]
    assert same_bits(out[:1, :2], nv.loop_maxpool_forward(x[:1, :2], 2, 2, 2, 0)[0])
    assert same_bits(col[:400], nv.book_im2col(x[:1, :1], 5, 5))
