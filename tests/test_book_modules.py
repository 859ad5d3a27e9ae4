"""util, functions, gradient, optimizer and trainer against hand-computed book formulas."""
import numpy as np
import pytest

import naive

from fastconv import functions as F
from fastconv import optimizer as O
from fastconv.gradient import numerical_gradient, numerical_gradient_2d
from fastconv.trainer import Trainer
from fastconv.util import conv_output_size, shuffle_dataset, smooth_curve


def test_conv_output_size_is_true_division_like_the_book():
    assert conv_output_size(28, 5) == 24.0
    assert conv_output_size(28, 5, stride=2) == 12.5


def test_shuffle_dataset_uses_one_permutation():
    x = np.arange(20).reshape(10, 2)
    t = np.arange(10)
    np.random.seed(0)
    perm = np.random.permutation(10)
    np.random.seed(0)
    xs, ts = shuffle_dataset(x, t)
    np.testing.assert_array_equal(xs, x[perm])
    np.testing.assert_array_equal(ts, perm)
    x4 = np.arange(10 * 4).reshape(10, 1, 2, 2)
    xs4, ts4 = shuffle_dataset(x4, t)
    np.testing.assert_array_equal(xs4[:, 0, 0, 0] // 4, ts4)


def test_smooth_curve_keeps_length_and_constants():
    y = smooth_curve(np.full(30, 2.0))
    assert y.shape == (30,)
    np.testing.assert_allclose(y, 2.0, rtol=1e-12)


def _kaiser_11():
    """The book's window, np.kaiser(11, 2), from its definition I0(2 sqrt(1 - r^2)) / I0(2)."""
    r = np.linspace(-1.0, 1.0, 11)
    return np.i0(2.0 * np.sqrt(1.0 - r ** 2)) / np.i0(2.0)


def test_smooth_curve_spreads_a_spike_over_the_window():
    """A spike in the middle comes out as the normalised window around it; one at the start
    also gets its mirror image (the book pads by reflection), so it keeps more weight."""
    w = _kaiser_11() / _kaiser_11().sum()
    x = np.zeros(30)
    x[15] = 1.0
    expected = np.zeros(30)
    expected[10:21] = w
    np.testing.assert_allclose(smooth_curve(x), expected, rtol=1e-12, atol=1e-15)
    x = np.zeros(30)
    x[1] = 1.0
    expected = np.zeros(30)
    expected[:7] = w[6::-1]   # the spike: y[m] gets w[6 - m]
    expected[:5] += w[4::-1]  # its mirror image one step before x[0]: w[4 - m]
    np.testing.assert_allclose(smooth_curve(x), expected, rtol=1e-12, atol=1e-15)


def test_functions_hand_values():
    np.testing.assert_allclose(F.softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])
    np.testing.assert_allclose(F.softmax(np.array([1000.0, 1000.0])), [0.5, 0.5])
    y = np.array([[0.25, 0.75], [0.5, 0.5]])
    expected = -(np.log(0.75 + 1e-7) + np.log(0.5 + 1e-7)) / 2
    np.testing.assert_allclose(F.cross_entropy_error(y, np.array([1, 0])), expected)
    np.testing.assert_allclose(F.cross_entropy_error(y, np.array([[0, 1], [1, 0]])), expected)
    np.testing.assert_array_equal(F.step_function(np.array([-1.0, 0.0, 2.0])), [0, 0, 1])
    np.testing.assert_array_equal(F.relu_grad(np.array([-1.0, 0.0, 2.0])), [0, 1, 1])
    np.testing.assert_allclose(F.sigmoid_grad(np.array([0.0])), [0.25])
    np.testing.assert_allclose(F.sum_squared_error(np.array([1.0, 2.0]), np.array([0.0, 0.0])),
                               2.5)


def test_numerical_gradient_of_quadratic():
    x = np.array([[1.0, -2.0], [3.0, 0.5]])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 2), x), 2 * x,
                               rtol=1e-8)
    np.testing.assert_allclose(numerical_gradient_2d(lambda v: np.sum(v ** 2), x.copy()),
                               2 * x, rtol=1e-8)


def _run(opt, steps=3):
    params = {"w": np.array([1.0, -2.0])}
    for i in range(steps):
        opt.update(params, {"w": np.array([0.5, 0.25]) * (i + 1)})
    return params["w"]


def test_optimizers_match_hand_iterations():
    g = [np.array([0.5, 0.25]) * (i + 1) for i in range(3)]
    w0 = np.array([1.0, -2.0])
    np.testing.assert_allclose(_run(O.SGD(lr=0.1)), w0 - 0.1 * sum(g))
    v = np.zeros(2)
    w = w0.copy()
    for gi in g:
        v = 0.9 * v - 0.1 * gi
        w = w + v
    np.testing.assert_allclose(_run(O.Momentum(lr=0.1)), w)
    h = np.zeros(2)
    w = w0.copy()
    for gi in g:
        h = h + gi * gi
        w = w - 0.1 * gi / (np.sqrt(h) + 1e-7)
    np.testing.assert_allclose(_run(O.AdaGrad(lr=0.1)), w)
    h = np.zeros(2)
    w = w0.copy()
    for gi in g:
        h = 0.99 * h + 0.01 * gi * gi
        w = w - 0.1 * gi / (np.sqrt(h) + 1e-7)
    np.testing.assert_allclose(_run(O.RMSprop(lr=0.1)), w)
    m = np.zeros(2)
    v = np.zeros(2)
    w = w0.copy()
    for it, gi in enumerate(g, 1):
        m = m + 0.1 * (gi - m)
        v = v + 0.001 * (gi ** 2 - v)
        w = w - 0.001 * np.sqrt(1 - 0.999 ** it) / (1 - 0.9 ** it) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(_run(O.Adam()), w)
    v = np.zeros(2)
    w = w0.copy()
    for gi in g:
        v = 0.9 * v - 0.1 * gi
        w = w + 0.81 * v - 1.9 * 0.1 * gi
    np.testing.assert_allclose(_run(O.Nesterov(lr=0.1)), w)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_is_bit_identical_to_the_book(dtype):
    """float64 runs the fused kernel, float32 and strided gradients NumPy's lines: both give
    the book's bits, over several steps (the moments carry over)."""
    rng = np.random.default_rng(13)
    shapes = {"W": (30, 1, 5, 5), "b": (30,), "W2": (4320, 100)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    book_params = {k: v.copy() for k, v in params.items()}
    ours, book = O.Adam(lr=0.01), naive.BookAdam(lr=0.01)
    for step in range(4):
        grads = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
        grads["b"] = rng.standard_normal(60).astype(dtype)[::2]  # strided: NumPy's path
        ours.update(params, grads)
        book.update(book_params, grads)
    for key in shapes:
        assert params[key].dtype == dtype
        np.testing.assert_array_equal(params[key], book_params[key])
        np.testing.assert_array_equal(ours.m[key], book.m[key])
        np.testing.assert_array_equal(ours.v[key], book.v[key])


class _LinearNet:
    """Least squares y = x @ W, enough for the Trainer's protocol."""

    def __init__(self):
        self.params = {"W": np.zeros((2, 2))}

    def loss(self, x, t):
        return float(np.mean((x @ self.params["W"] - t) ** 2))

    def gradient(self, x, t):
        return {"W": 2 * x.T @ (x @ self.params["W"] - t) / t.size}

    def accuracy(self, x, t):
        return float(np.mean(np.argmax(x @ self.params["W"], 1) == np.argmax(t, 1)))


def test_trainer_lists_and_iterations(capsys):
    x = np.eye(2).repeat(10, axis=0)
    t = x.copy()
    np.random.seed(0)
    tr = Trainer(_LinearNet(), x, t, x, t, epochs=3, mini_batch_size=5,
                 optimizer="rmsprpo", optimizer_param={"lr": 0.1},
                 evaluate_sample_num_per_epoch=4, verbose=True)
    assert tr.iter_per_epoch == 4.0 and tr.max_iter == 12
    acc = tr.train()
    assert len(tr.train_loss_list) == 12
    assert len(tr.train_acc_list) == len(tr.test_acc_list) == 3
    assert tr.train_loss_list[-1] < tr.train_loss_list[0]
    assert acc == 1.0
    assert "Final Test Accuracy" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(_LinearNet(), x, t, x, t, optimizer="lbfgs")
