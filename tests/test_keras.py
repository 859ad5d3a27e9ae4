"""Tests of fastconv.keras, the seed framework's Keras-like API on fastconv kernels."""
import numpy as np
import pytest

import naive as nv
from fastconv.functions import cross_entropy_error
from fastconv.keras.layers import (AveragePooling2D, Conv2D, Dense, Flatten, Input,
                                   MaxPooling2D, Output)
from fastconv.keras.models import Model, load_model
from fastconv.keras import saving


def seed_example_model(pool=AveragePooling2D, name="MNIST_cnn"):
    """The network of the seed README, written exactly as there."""
    input_layer = Input((1, 28, 28))
    model = Model(input_layer, name)
    model.add_layer(Conv2D(20, 9, input_shape=(1, 28, 28), activate_fcn="ReLU"))
    model.add_layer(pool(2, input_shape=(20, 20, 20)))
    model.add_layer(Flatten((20, 10, 10)))
    model.add_layer(Dense(100, 2000, activate_fcn="ReLU"))
    model.add_layer(Output(10, 100))
    return model


def small_model(seed=0, loss="cross_tropy", out_act="softmax"):
    """A tiny conv net: two convolutions ("same" and "valid" padding), both poolings."""
    np.random.seed(seed)
    model = Model(Input((1, 8, 8)), "tiny")
    model.add_layer(Conv2D(4, 3, "tanh", padding="same"))
    model.add_layer(MaxPooling2D(2))
    model.add_layer(Conv2D(3, 3, "ReLU", padding="valid"))
    model.add_layer(AveragePooling2D(2, stride=1))
    model.add_layer(Flatten())
    model.add_layer(Dense(5, activate_fcn="sigmoid"))
    model.add_layer(Output(3, activate_fcn=out_act))
    model.compile(0.1, loss)
    return model


def one_hot(labels, k):
    return np.eye(k)[labels]


def twin_forward(model, x):
    """``small_model``'s forward written with the plain loops of tests/naive.py and NumPy."""
    conv1, _, conv2, _, _, dense, out = model.layers
    a = np.tanh(nv.loop_conv_forward(x, conv1.W, np.zeros(4), 1, 1))  # "same": pad 3 // 2
    a = nv.loop_maxpool_forward(a, 2, 2, 2, 0)[0]
    a = np.maximum(nv.loop_conv_forward(a, conv2.W, np.zeros(3), 1, 0), 0)
    a = nv.loop_avgpool_forward(a, 2, 2, 1, 0).reshape(len(x), -1)
    a = nv.book_sigmoid(a @ dense.W)
    z = a @ out.W
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_forward_matches_a_naive_twin():
    model = small_model(11)
    x = np.random.default_rng(11).standard_normal((4, 1, 8, 8))
    np.testing.assert_allclose(model.predict(x), twin_forward(model, x), rtol=1e-12,
                               atol=1e-15)


# ---------------------------------------------------------------------- summary
@pytest.mark.parametrize("pool", [AveragePooling2D, MaxPooling2D])
def test_summary_table_of_seed_example(capsys, pool):
    model = seed_example_model(pool)
    model.summary()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model name: MNIST_cnn"
    assert lines[2] == "Layer                        Output Shape              Param #   "
    rows = [("Conv2D", "(None, 20, 20, 20)", 1620), (pool.kind, "(None, 20, 10, 10)", 0),
            ("Flatten", "(None, 2000)", 0), ("Dense", "(None, 100)", 200000),
            ("Output", "(None, 10)", 1000)]
    for i, (name, shape, params) in enumerate(rows):
        # the seed's row format, byte for byte
        assert lines[4 + 2 * i] == "%-29s%-26s%-28s" % (name, shape, params)
    assert "Total params: 202620" in lines
    assert sum(layer.count_params() for layer in model.layers) == 202620


def test_seed_has_no_biases():
    model = seed_example_model()
    conv, dense, out = model.layers[0], model.layers[3], model.layers[4]
    assert conv.W.shape == (20, 1, 9, 9) and not np.any(conv._conv.b)
    assert dense.theta.shape == (100, 2000) and out.theta.shape == (10, 100)
    assert set(model.params()) == {"layer_0.W", "layer_3.W", "layer_4.W"}


# ---------------------------------------------------------------------- gradients
def _numerical_gradient(model, x, y, arr, eps=1e-6):
    """Central differences of the batch-sum loss that ``gradient`` differentiates."""
    grad = np.zeros_like(arr)
    n = len(x)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = model.loss(x, y) * n
        flat[i] = old - eps
        fm = model.loss(x, y) * n
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


@pytest.mark.parametrize("loss,out_act", [("cross_tropy", "softmax"),
                                          ("cross_tropy", "sigmoid"),
                                          ("MSE", "softmax")])
def test_gradient_check_every_parameter(loss, out_act):
    model = small_model(1, loss, out_act)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1, 8, 8))
    y = one_hot(rng.integers(0, 3, 4), 3)
    analytic = model.gradient(x, y)
    assert set(analytic) == set(model.params()) and len(analytic) == 4
    for key, arr in model.params().items():
        assert arr.dtype == np.float64
        numeric = _numerical_gradient(model, x, y, arr)
        err = np.abs(analytic[key] - numeric).max() / max(np.abs(numeric).max(), 1e-8)
        assert err < 1e-5, (key, err)


def test_cross_tropy_softmax_logit_gradient_is_seeds_a_minus_y():
    model = small_model(3)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 1, 8, 8)), one_hot(rng.integers(0, 3, 5), 3)
    a = model.forward(x)
    loss, dz = model.loss_fcn.forward_backward(model.layers[-1], y)
    np.testing.assert_allclose(dz, a - y, atol=1e-12)
    assert loss == pytest.approx(cross_entropy_error(a, y))


# ---------------------------------------------------------------------- fit / evaluate
def _stripes(n, rng):
    """8x8 images: class 0 has a bright left half, class 1 a bright right half."""
    labels = rng.integers(0, 2, n)
    x = rng.normal(0.0, 0.3, (n, 1, 8, 8))
    x[labels == 0, :, :, :4] += 1.0
    x[labels == 1, :, :, 4:] += 1.0
    return x, labels


def _stripe_model():
    model = Model(Input((1, 8, 8)), "stripes")
    model.add_layer(Conv2D(4, 3, "ReLU"))
    model.add_layer(MaxPooling2D(2))
    model.add_layer(Flatten())
    model.add_layer(Dense(8, activate_fcn="ReLU"))
    model.add_layer(Output(2))
    model.compile(0.02, "cross_tropy")
    return model


def test_fit_learns_separable_problem():
    rng = np.random.default_rng(0)
    np.random.seed(0)
    x, labels = _stripes(200, rng)
    model = _stripe_model()
    history = model.fit(x, one_hot(labels, 2), batch_size=16, epochs=8, verbose=0)
    assert set(history) == {"accuracy", "loss"}
    assert history["accuracy"].shape == history["loss"].shape == (8,)
    assert history["loss"][-1] < history["loss"][0]
    x_test, l_test = _stripes(200, rng)
    accuracy, loss = model.evaluate(x_test, one_hot(l_test, 2))
    assert accuracy >= 0.95 and loss < 0.3


def test_evaluate_matches_hand_count_and_predict_classes():
    rng = np.random.default_rng(1)
    model = small_model(4)
    x = rng.standard_normal((37, 1, 8, 8))
    labels = rng.integers(0, 3, 37)
    y = one_hot(labels, 3)
    probs = model.predict(x, batch_size=10)  # several chunks, last one partial
    classes = model.predict_classes(x)
    np.testing.assert_array_equal(classes, probs.argmax(axis=1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    accuracy, loss = model.evaluate(x, y)
    hand = np.mean(twin_forward(model, x).argmax(axis=1) == labels)
    assert 0 < hand < 1  # a count that can tell right from wrong predictions
    assert accuracy == pytest.approx(hand)
    assert loss == pytest.approx(cross_entropy_error(probs, y))
    # integer labels give the same numbers as one-hot ones
    assert model.evaluate(x, labels) == pytest.approx((accuracy, loss))


@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_size_minus_one_is_one_full_batch_step(shuffle):
    rng = np.random.default_rng(5)
    model = small_model(5)
    x, y = rng.standard_normal((9, 1, 8, 8)), one_hot(rng.integers(0, 3, 9), 3)
    before = {k: v.copy() for k, v in model.params().items()}
    grads = model.gradient(x, y)
    model.fit(x, y, batch_size=-1, epochs=1, verbose=0, shuffle=shuffle)
    for key, arr in model.params().items():
        np.testing.assert_allclose(arr, before[key] - 0.1 * grads[key], rtol=1e-10,
                                   atol=1e-12)


def test_verbose_modes(capsys):
    rng = np.random.default_rng(6)
    x, labels = _stripes(20, rng)
    model = _stripe_model()
    model.fit(x, labels, batch_size=8, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, labels, batch_size=8, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert sum(line.startswith("epoch ") for line in out.splitlines()) == 2
    assert "batch/s" not in out and "3/3" not in out
    model.fit(x, labels, batch_size=8, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "3/3" in out and "accuracy=" in out  # the tqdm bar: 3 batches


# ---------------------------------------------------------------------- shapes
def test_add_layer_shape_mismatch_names_both_shapes():
    model = Model(Input((1, 28, 28)))
    model.add_layer(Conv2D(20, 9, input_shape=(1, 28, 28), activate_fcn="ReLU"))
    with pytest.raises(ValueError) as err:
        model.add_layer(AveragePooling2D(2, input_shape=(20, 24, 24)))
    assert "(20, 24, 24)" in str(err.value) and "(20, 20, 20)" in str(err.value)
    model.add_layer(MaxPooling2D(2))
    model.add_layer(Flatten())
    with pytest.raises(ValueError) as err:
        model.add_layer(Dense(100, 1999))
    assert "(1999,)" in str(err.value) and "(2000,)" in str(err.value)
    with pytest.raises(ValueError, match="Flatten"):
        Model(Input((1, 4, 4))).add_layer(Dense(3))


@pytest.mark.parametrize("padding,stride,pad,expected", [
    ("valid", 1, 0, 24), ("same", 1, 2, 28), ("full", 1, 4, 32), ("valid", 2, 0, 12),
    ("same", 2, 2, 14), ("full", 3, 4, 11)])
def test_conv_padding_output_shapes_and_values(padding, stride, pad, expected):
    """The seed's paddings of a 5x5 kernel: valid 0, same 5 // 2, full 5 - 1 (zeros)."""
    layer = Conv2D(3, 5, "linear", input_shape=(2, 12, 12), stride=stride, padding=padding)
    size = (12 + 2 * pad - 5) // stride + 1
    assert layer.output_shape == (None, 3, size, size)
    x = np.random.default_rng(12).standard_normal((2, 2, 12, 12))
    np.testing.assert_allclose(layer.forward(x),
                               nv.loop_conv_forward(x, layer.W, np.zeros(3), stride, pad),
                               rtol=1e-12, atol=1e-14)
    big = Conv2D(3, 5, "linear", input_shape=(2, 28, 28), stride=stride, padding=padding)
    assert big.output_shape == (None, 3, expected, expected)


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="padding"):
        Conv2D(3, 3, input_shape=(1, 8, 8), padding="half")
    with pytest.raises(ValueError, match="activation"):
        Dense(3, 4, activate_fcn="relu6")
    model = small_model()
    with pytest.raises(ValueError, match="loss"):
        model.compile(0.1, "hinge")
    with pytest.raises(ValueError, match="input shape"):
        model.predict(np.zeros((2, 1, 9, 9)))
    assert Dense(3, 4, activate_fcn="relu").activation == "ReLU"


# ---------------------------------------------------------------------- save / load
def _roundtrip(model, path):
    x = np.random.default_rng(7).standard_normal((6, 1, 8, 8))
    model.save(str(path))
    loaded = load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.name == model.name and loaded.lr == model.lr
    assert loaded.loss_fcn_name == model.loss_fcn_name
    assert [l.get_config() for l in loaded.layers] == [l.get_config() for l in model.layers]
    return loaded


def test_save_load_npz_identical_predictions(tmp_path):
    model = small_model(8, "MSE", "sigmoid")
    _roundtrip(model, tmp_path / "m.npz")
    assert (tmp_path / "m.npz").read_bytes()[:4] == b"PK\x03\x04"


def test_save_load_h5_identical_predictions(tmp_path):
    pytest.importorskip("h5py")
    _roundtrip(small_model(9), tmp_path / "sub" / "m.h5")
    assert (tmp_path / "sub" / "m.h5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_h5_name_without_h5py_still_roundtrips(tmp_path, monkeypatch):
    monkeypatch.setattr(saving, "_h5py", lambda: None)
    with pytest.warns(UserWarning, match="h5py"):
        _roundtrip(small_model(10), tmp_path / "m.h5")


_UNPICKLED = []


def _mark():
    _UNPICKLED.append(True)
    return "boom"


class _Evil:
    def __reduce__(self):
        return (_mark, ())


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format=np.array(saving.FORMAT),
             name=np.array([_Evil()], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_model(str(path))
    assert _UNPICKLED == []


# ---------------------------------------------------------------------- plots
def test_history_and_confusion_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from fastconv.keras.visualization import confusion_matrix, confusion_show, history_show
    history = {"accuracy": np.array([0.5, 0.8, 0.9]), "loss": np.array([1.2, 0.6, 0.3])}
    acc, loss = history_show(history, str(tmp_path / "acc.png"), str(tmp_path / "loss.png"))
    y_true = np.array([0, 1, 2, 2, 1, 0, 2])
    y_pred = np.array([0, 2, 2, 2, 1, 0, 1])
    cm_path = confusion_show(["a", "b", "c"], y_pred, y_true,
                             confusion_file=str(tmp_path / "cm.png"))
    for path in (acc, loss, cm_path):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(confusion_matrix(y_pred, y_true, 3),
                                  [[2, 0, 0], [0, 1, 1], [0, 1, 2]])
