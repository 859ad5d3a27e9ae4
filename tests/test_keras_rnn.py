"""Tests of the seed framework's Recurrent layer, its kernel and compile's metric."""
import os
import runpy

import numpy as np
import pytest

import naive
from fastconv.kernels.recurrent import ACTIVATIONS, rnn_backward, rnn_forward
from fastconv.keras.layers import Dense, Input, Output, Recurrent
from fastconv.keras.models import Model, load_model
from fastconv.keras import saving

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "examples", "keras_rnn.py")


def sequence(T=9, n=3, units=5, seed=0):
    """x, U, W, h0 of a small problem with states well inside tanh's range."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((T, n)), rng.standard_normal((units, n)) * 0.6,
            rng.standard_normal((units, units)) * 0.4, rng.standard_normal(units) * 0.5)


def rnn_model(units=6, seed=0, metric="MAE"):
    np.random.seed(seed)
    model = Model(Input((3,)), "POI_rnn")
    model.add_layer(Recurrent(units, 3, activate_fcn="tanh"))
    model.add_layer(Output(3, units, activate_fcn="Linear"))
    model.compile(0.015, "MSE", metric)
    return model


# ---------------------------------------------------------------------- kernel vs twin
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_kernel_is_the_loop_twin_bit_for_bit(activation):
    x, U, W, h0 = sequence(seed=1)
    dout = np.random.default_rng(2).standard_normal((x.shape[0], U.shape[0]))
    h = rnn_forward(x, U, W, h0, activation)
    np.testing.assert_array_equal(h, naive.loop_rnn_forward(x, U, W, h0, activation))
    grads = rnn_backward(x, U, W, h0, h, dout, activation)
    twin = naive.loop_rnn_backward(x, U, W, h0, h, dout, activation)
    for name, got, want in zip(("dx", "dU", "dW"), grads, twin):
        np.testing.assert_array_equal(got, want, err_msg=name)
    # the twin is a recurrence: check its first step by hand as well
    z0 = x[0] @ U.T + h0 @ W.T
    expected0 = {"tanh": np.tanh(z0), "ReLU": np.maximum(z0, 0),
                 "sigmoid": 1 / (1 + np.exp(-z0)), "linear": z0}[activation]
    np.testing.assert_allclose(h[0], expected0, rtol=1e-13, atol=1e-15)


def test_kernel_float32_stays_float32_and_follows_the_twin():
    x, U, W, h0 = (a.astype(np.float32) for a in sequence(seed=3))
    dout = np.ones((x.shape[0], U.shape[0]), dtype=np.float32)
    h = rnn_forward(x, U, W, h0)
    dx, dU, dW = rnn_backward(x, U, W, h0, h, dout)
    assert {a.dtype for a in (h, dx, dU, dW)} == {np.dtype(np.float32)}
    h64 = naive.loop_rnn_forward(*(a.astype(np.float64) for a in (x, U, W, h0)))
    np.testing.assert_allclose(h, h64, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- gradients
def central_differences(f, arr, eps=1e-6):
    """Numerical gradient of ``f()`` with respect to ``arr``, changed in place and restored."""
    numeric = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        fp = f()
        arr[idx] = old - eps
        fm = f()
        arr[idx] = old
        numeric[idx] = (fp - fm) / (2 * eps)
    return numeric


def _preactivations(x, U, W, h0, h):
    prev = np.vstack([h0[None, :], h[:-1]])
    return x @ U.T + prev @ W.T


@pytest.mark.parametrize("activation", ["tanh", "ReLU"])
def test_layer_gradients_against_central_differences(activation):
    x, U, W, h0 = sequence(T=7, n=3, units=4, seed=4)
    G = np.random.default_rng(5).standard_normal((7, 4))  # loss = sum(G * h)
    layer = Recurrent(4, 3, activation, theta=np.hstack([U, W, h0[:, None]]))

    def loss():
        layer.set_state(h0)
        return float(np.sum(G * layer.forward(x)))

    loss()
    z = _preactivations(x, U, W, h0, layer.a)
    if activation == "ReLU":  # the kink must be far from every step's z for a clean check
        assert np.abs(z).min() > 1e-3 and (z > 0).any() and (z < 0).any()
    dx = layer.backward(G)
    analytic = {"U": layer.dU, "W": layer.dW, "x": dx}
    for name, arr in (("U", layer.U), ("W", layer.W), ("x", x)):
        numeric = central_differences(loss, arr)
        assert np.abs(numeric).max() > 0.1, name  # a gradient that is there to check
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8,
                                   err_msg=name)


def test_model_gradient_of_mse_through_time():
    model = rnn_model(units=4, seed=6)
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    rec = model.layers[0]

    def loss():  # the batch sum that gradient differentiates, from a zero state
        rec.set_state(np.zeros(4))
        return model.loss(x, y) * len(x)

    rec.set_state(np.zeros(4))
    analytic = model.gradient(x, y)
    for key, arr in model.params().items():
        numeric = central_differences(loss, arr)
        np.testing.assert_allclose(analytic[key], numeric, rtol=1e-6, atol=1e-8,
                                   err_msg=key)
    assert set(analytic) == {"layer_0.U", "layer_0.W", "layer_1.W"}


# ---------------------------------------------------------------------- state
def test_state_carries_across_batches():
    x, U, W, h0 = sequence(T=11, seed=8)
    theta = np.hstack([U, W, h0[:, None]])
    two = Recurrent(5, 3, "tanh", theta=theta)
    first, second = two.forward(x[:4]), two.forward(x[4:])
    one = Recurrent(5, 3, "tanh", theta=theta).forward(x)
    np.testing.assert_array_equal(np.vstack([first, second]), one)
    np.testing.assert_array_equal(two.state, one[-1:])
    np.testing.assert_array_equal(one, naive.loop_rnn_forward(x, U, W, h0))


def test_backward_uses_the_state_its_forward_started_from():
    x, U, W, h0 = sequence(T=8, seed=9)
    layer = Recurrent(5, 3, "tanh", theta=np.hstack([U, W, h0[:, None]]))
    layer.forward(x[:3])
    start = layer.state[0].copy()
    h = layer.forward(x[3:])
    dout = np.ones_like(h)
    dx = layer.backward(dout)
    want = naive.loop_rnn_backward(x[3:], U, W, start, h, dout)
    np.testing.assert_array_equal(dx, want[0])
    np.testing.assert_array_equal(layer.dU, want[1])
    np.testing.assert_array_equal(layer.dW, want[2])


def test_set_state():
    x, U, W, h0 = sequence(seed=10)
    layer = Recurrent(5, 3, "ReLU", theta=np.hstack([U, W, np.zeros((5, 1))]))
    layer.forward(x)  # moves the state on
    s = np.linspace(-1.0, 1.0, 5)
    layer.set_state(s)
    np.testing.assert_array_equal(layer.state, s[None, :])
    np.testing.assert_array_equal(layer.forward(x), naive.loop_rnn_forward(x, U, W, s, "ReLU"))
    layer.set_state(s[None, :])  # the seed's (1, units) shape works too
    np.testing.assert_array_equal(layer.forward(x[:1])[0],
                                  naive.loop_rnn_forward(x[:1], U, W, s, "ReLU")[0])
    with pytest.raises(ValueError, match=r"state.*5 values.*\(6,\)"):
        layer.set_state(np.zeros(6))


def test_theta_is_the_seeds_packed_layout():
    theta = np.arange(4 * 8, dtype=np.float64).reshape(4, 8) / 10
    layer = Recurrent(4, 3, "tanh", theta=theta)
    np.testing.assert_array_equal(layer.U, theta[:, :3])
    np.testing.assert_array_equal(layer.W, theta[:, 3:7])
    np.testing.assert_array_equal(layer.state, theta[None, :, 7])
    np.testing.assert_array_equal(layer.theta, theta)


# ---------------------------------------------------------------------- model
def test_summary_row_and_count(capsys):
    model = rnn_model(units=10)
    model.summary()
    lines = capsys.readouterr().out.splitlines()
    assert lines[4] == "%-29s%-26s%-28s" % ("Recurrent", "(None, 10)", 10 * 3 + 10 * 10)
    assert lines[6] == "%-29s%-26s%-28s" % ("Output", "(None, 3)", 30)
    assert "Total params: 160" in lines


def test_fit_history_and_evaluate_report_mae():
    model = rnn_model(units=5, seed=11)
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    rec = model.layers[0]
    rec.set_state(np.zeros(5))
    a = model.forward(x)  # the outputs fit sees in its one full-batch step
    rec.set_state(np.zeros(5))
    history = model.fit(x, y, batch_size=-1, epochs=1, verbose=0, shuffle=False)
    assert set(history) == {"MAE", "loss"}
    seed_mae = np.sum(np.abs(a - y).mean(axis=0))  # the seed's formula
    assert history["MAE"][0] == pytest.approx(seed_mae, rel=1e-12)
    assert history["loss"][0] == pytest.approx(np.sum((a - y) ** 2) / 2 / 20, rel=1e-12)
    state = rec.state.copy()
    mae, loss = model.evaluate(x, y)
    rec.set_state(state)
    b = model.predict(x)
    assert mae == pytest.approx(np.sum(np.abs(b - y).mean(axis=0)), rel=1e-12)
    assert loss == pytest.approx(np.sum((b - y) ** 2) / 2 / 20, rel=1e-12)


def test_accuracy_metric_keeps_the_classifier_history():
    np.random.seed(13)
    model = Model(Input((4,)), "clf")
    model.add_layer(Dense(5, 4))
    model.add_layer(Output(3, 5))
    model.compile(0.1, "cross_tropy", "accuracy")
    rng = np.random.default_rng(14)
    x, labels = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    a = model.predict(x)
    history = model.fit(x, labels, batch_size=-1, epochs=1, verbose=0)
    assert set(history) == {"accuracy", "loss"}
    assert history["accuracy"][0] == np.mean(a.argmax(axis=1) == labels)


def test_predict_in_chunks_equals_one_pass():
    model = rnn_model(seed=15)
    x = np.random.default_rng(16).standard_normal((50, 3))
    rec = model.layers[0]
    states = Model(Input((3,)), "states")
    states.add_layer(rec)
    rec.set_state(np.zeros(6))
    chunked = states.predict(x, batch_size=7)
    rec.set_state(np.zeros(6))
    np.testing.assert_array_equal(chunked, states.predict(x, batch_size=50))
    rec.set_state(np.zeros(6))
    chunked = model.predict(x, batch_size=7)
    rec.set_state(np.zeros(6))
    # the Output layer's matrix product may round a chunk's rows differently (BLAS)
    np.testing.assert_allclose(chunked, model.predict(x, batch_size=50), rtol=1e-13,
                               atol=1e-15)


def test_fit_lowers_the_loss_in_time_order():
    model = rnn_model(seed=17)
    t = np.arange(201) * 0.2
    data = np.stack([np.sin(t), np.cos(t), np.sin(2 * t)], axis=1)
    history = model.fit(data[:-1], data[1:], batch_size=25, epochs=15, verbose=0,
                        shuffle=False)
    assert history["loss"][-1] < 0.5 * history["loss"][0]


# ---------------------------------------------------------------------- save / load
def _roundtrip(tmp_path, name):
    model = rnn_model(seed=18)
    x = np.random.default_rng(19).standard_normal((30, 3))
    model.fit(x[:-1], x[1:], batch_size=10, epochs=2, verbose=0, shuffle=False)
    assert np.abs(model.layers[0].state).max() > 0  # a state worth saving
    path = model.save(str(tmp_path / name))
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.layers[0].state, model.layers[0].state)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.metric.name == "MAE" and loaded.loss_fcn_name == "MSE"
    assert [l.get_config() for l in loaded.layers] == [l.get_config() for l in model.layers]
    return path


def test_save_load_npz_keeps_predictions(tmp_path):
    path = _roundtrip(tmp_path, "rnn.npz")
    assert open(path, "rb").read(4) == b"PK\x03\x04"


def test_save_load_h5_keeps_predictions(tmp_path):
    pytest.importorskip("h5py")
    path = _roundtrip(tmp_path, "rnn.h5")
    assert open(path, "rb").read(8) == b"\x89HDF\r\n\x1a\n"


def test_h5_name_without_h5py_still_roundtrips(tmp_path, monkeypatch):
    monkeypatch.setattr(saving, "_h5py", lambda: None)
    with pytest.warns(UserWarning, match="h5py"):
        _roundtrip(tmp_path, "rnn.h5")


# ---------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    layer = Recurrent(4, 3, "tanh")
    with pytest.raises(ValueError, match=r"x.*3 features.*\(5, 4\)"):
        layer.forward(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"x must be 2-D.*\(2, 5, 3\)"):
        layer.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"theta.*\(4, 8\).*\(4, 7\)"):
        Recurrent(4, 3, "tanh", theta=np.zeros((4, 7)))
    with pytest.raises(ValueError, match="activate_fcn"):
        Recurrent(4, 3, "softmax")
    with pytest.raises(ValueError, match="units"):
        Recurrent(0, 3, "tanh")
    with pytest.raises(ValueError, match="input_shape"):
        Recurrent(4, (3, 2), "tanh")
    model = rnn_model()
    with pytest.raises(ValueError, match="input shape"):
        model.predict(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="metric.*'R2'"):
        model.compile(0.1, "MSE", "R2")
    assert model.metric.name == "MAE"  # a refused compile leaves the model as it was


def test_kernel_wrappers_check_shapes():
    x, U, W, h0 = sequence()
    with pytest.raises(ValueError, match=r"x has 2 features.*U has shape \(5, 3\)"):
        rnn_forward(x[:, :2], U, W, h0)
    with pytest.raises(ValueError, match=r"W must have shape \(5, 5\)"):
        rnn_forward(x, U, W[:4], h0)
    with pytest.raises(ValueError, match=r"h0 must have shape \(5,\)"):
        rnn_forward(x, U, W, h0[:3])
    with pytest.raises(ValueError, match="x must be 2-D"):
        rnn_forward(x[None], U, W, h0)
    with pytest.raises(ValueError, match="activation"):
        rnn_forward(x, U, W, h0, "softmax")
    h = rnn_forward(x, U, W, h0)
    with pytest.raises(ValueError, match=r"dout must have shape \(9, 5\)"):
        rnn_backward(x, U, W, h0, h, h[:-1])
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        rnn_forward(np.full((2, 3), "a"), U, W, h0)


# ---------------------------------------------------------------------- plots, example
def test_history_show_plots_the_metric(tmp_path):
    pytest.importorskip("matplotlib")
    from fastconv.keras.visualization import history_show
    history = {"MAE": np.array([0.5, 0.3]), "loss": np.array([0.2, 0.1])}
    mae, loss = history_show(history, str(tmp_path / "mae.png"), str(tmp_path / "loss.png"))
    for path in (mae, loss):
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="history"):
        history_show({"loss": np.zeros(2)})


def test_example_beats_repeating_the_last_point(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    main = runpy.run_path(EXAMPLE)["main"]
    rnn, last = main(str(tmp_path / "rnn.png"))
    assert rnn < 0.2 * last
    assert open(tmp_path / "rnn.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "repeat the last point" in capsys.readouterr().out
