"""fastconv.models: the book's SimpleConvNet / DeepConvNet and their params files.

References are independent of fastconv: the book's NumPy algorithms in tests/naive.py,
hand-drawn initial weights, and central differences.
"""
import os
import pickle
import pickletools

import numpy as np
import pytest

from fastconv import config
from fastconv.gradient import numerical_gradient
from fastconv.layers import (Affine, Convolution, Dropout, Pooling, Relu, SoftmaxWithLoss)
from fastconv.models import (DeepConvNet, ParamsFileError, SimpleConvNet, load_params_file,
                             save_params_file)
from fastconv.optimizer import Adam
from naive import simple_convnet_grads


def rel_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


def tiny_simple(seed=0):
    # two classes: the book's loss adds 1e-7 inside the log, which biases the numerical
    # gradient by about 1e-7 / y; with y near 0.5 that stays well below 1e-6
    np.random.seed(seed)
    return SimpleConvNet(input_dim=(1, 10, 10),
                         conv_param={'filter_num': 3, 'filter_size': 3, 'pad': 0, 'stride': 1},
                         hidden_size=10, output_size=2, weight_init_std=0.1)


# ------------------------------------------------------------------------- SimpleConvNet ----
def test_simple_book_init_keys_and_layers():
    np.random.seed(42)
    net = SimpleConvNet()
    np.random.seed(42)  # the book's draws, in the book's order
    W1 = 0.01 * np.random.randn(30, 1, 5, 5)
    W2 = 0.01 * np.random.randn(30 * 12 * 12, 100)
    W3 = 0.01 * np.random.randn(100, 10)
    expected = {'W1': W1, 'b1': np.zeros(30), 'W2': W2, 'b2': np.zeros(100),
                'W3': W3, 'b3': np.zeros(10)}
    assert list(net.params) == list(expected)
    for key, val in expected.items():
        assert net.params[key].dtype == np.float64
        np.testing.assert_array_equal(net.params[key], val)

    assert list(net.layers) == ['Conv1', 'Relu1', 'Pool1', 'Affine1', 'Relu2', 'Affine2']
    kinds = [Convolution, Relu, Pooling, Affine, Relu, Affine]
    assert [type(layer) for layer in net.layers.values()] == kinds
    assert isinstance(net.last_layer, SoftmaxWithLoss)
    pool = net.layers['Pool1']
    assert (pool.pool_h, pool.pool_w, pool.stride, pool.pad) == (2, 2, 2, 0)
    # layers share the arrays of params, so in-place optimizer updates reach them
    for i, key in enumerate(['Conv1', 'Affine1', 'Affine2'], start=1):
        assert net.layers[key].W is net.params['W' + str(i)]
        assert net.layers[key].b is net.params['b' + str(i)]


def test_simple_loss_and_gradient_match_numpy_reference():
    np.random.seed(7)
    net = SimpleConvNet()
    x = np.random.rand(5, 1, 28, 28)
    t = np.array([3, 1, 4, 1, 5])
    # trained-looking weights so every layer matters (0.01 gives a loss of ln 10 anyway)
    for key in net.params:
        net.params[key] += 0.05 * np.random.randn(*net.params[key].shape)
    ref_loss, ref_grads = simple_convnet_grads(net.params, x, t)

    assert net.loss(x, t) == pytest.approx(ref_loss, rel=1e-12)
    grads = net.gradient(x, t)
    assert sorted(grads) == sorted(net.params)
    for key, ref in ref_grads.items():
        assert grads[key].shape == net.params[key].shape
        np.testing.assert_allclose(grads[key], ref, rtol=1e-9, atol=1e-13, err_msg=key)
    # gradient() returns the layers' own dW/db
    assert grads['W1'] is net.layers['Conv1'].dW and grads['b3'] is net.layers['Affine2'].db


@pytest.mark.parametrize("net_class", [SimpleConvNet, DeepConvNet])
def test_gradient_does_not_recompute_the_fused_pools_input(net_class, monkeypatch):
    """After a fused forward, a Pooling's ``x`` is recomputed only when read; the backward
    walk must not read it (that would cost a convolution a step)."""
    from fastconv.kernels import conv
    np.random.seed(1)
    net = net_class()
    x = np.random.rand(3, 1, 28, 28)
    net.loss(x, np.array([1, 2, 3]))
    calls = []
    real = conv.conv_relu_forward
    monkeypatch.setattr(conv, "conv_relu_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    from fastconv.fusion import backward_layers
    layers = list(net.layers.values()) if isinstance(net.layers, dict) else net.layers
    backward_layers(layers, net.last_layer.backward(1))
    assert calls == []
    pools = [layer for layer in layers if isinstance(layer, Pooling)]
    assert pools[0].x.shape == (3, 30 if net_class is SimpleConvNet else 16, 24 if net_class is SimpleConvNet else 28, 24 if net_class is SimpleConvNet else 28)
    assert calls == [1]  # read: computed once


def test_simple_gradient_vs_numerical_gradient():
    net = tiny_simple()
    x = np.random.rand(3, 1, 10, 10)
    t = np.array([1, 0, 1])
    num = net.numerical_gradient(x, t)
    grads = net.gradient(x, t)
    for key in net.params:
        assert rel_error(grads[key], num[key]) < 1e-6, key


def test_accuracy_one_hot_and_partial_batches():
    net = tiny_simple(1)
    x = np.random.rand(7, 1, 10, 10)
    t = np.array([0, 1, 1, 0, 1, 0, 0])
    expected = np.mean(np.argmax(net.predict(x), axis=1) == t)
    assert 0 < expected < 1  # a meaningful comparison
    assert net.accuracy(x, t) == pytest.approx(expected)
    assert net.accuracy(x, np.eye(2)[t]) == pytest.approx(expected)  # one-hot labels
    for batch_size in (1, 3, 100):  # the last partial batch counts too
        assert net.accuracy(x, t, batch_size=batch_size) == pytest.approx(expected)


def test_odd_conv_output_gives_consistent_affine_size():
    # 11x11 input, 3x3 filter -> 9x9 -> pool 4x4: the book's float formula would say 60.75
    net = SimpleConvNet(input_dim=(2, 11, 11),
                        conv_param={'filter_num': 4, 'filter_size': 3, 'pad': 0, 'stride': 1},
                        hidden_size=5, output_size=3)
    assert net.params['W2'].shape == (4 * 4 * 4, 5)
    assert net.predict(np.random.rand(2, 2, 11, 11)).shape == (2, 3)


# --------------------------------------------------------------------------- DeepConvNet ----
def test_deep_book_init_and_shapes():
    np.random.seed(3)
    net = DeepConvNet()
    np.random.seed(3)
    scales = np.sqrt(2.0 / np.array([1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3,
                                     32 * 3 * 3, 64 * 3 * 3, 64 * 4 * 4, 50]))
    shapes = [(16, 1), (16, 16), (32, 16), (32, 32), (64, 32), (64, 64)]
    for i, (fn, c) in enumerate(shapes):
        np.testing.assert_array_equal(net.params['W%d' % (i + 1)],
                                      scales[i] * np.random.randn(fn, c, 3, 3))
        np.testing.assert_array_equal(net.params['b%d' % (i + 1)], np.zeros(fn))
    np.testing.assert_array_equal(net.params['W7'], scales[6] * np.random.randn(1024, 50))
    np.testing.assert_array_equal(net.params['W8'], scales[7] * np.random.randn(50, 10))
    assert list(net.params) == [p + str(i) for i in range(1, 9) for p in 'Wb']

    kinds = [Convolution, Relu, Convolution, Relu, Pooling] * 3 + \
        [Affine, Relu, Dropout, Affine, Dropout]
    assert [type(layer) for layer in net.layers] == kinds
    pads = [layer.pad for layer in net.layers if isinstance(layer, Convolution)]
    assert pads == [1, 1, 1, 2, 1, 1]
    for i, idx in enumerate((0, 2, 5, 7, 10, 12, 15, 18), start=1):
        assert net.layers[idx].W is net.params['W%d' % i]

    # 28 -> 28 -> 28 -> pool 14 -> 14 -> pad 2: 16 -> pool 8 -> 8 -> 8 -> pool 4
    x = np.random.rand(2, 1, 28, 28)
    seen = []
    for layer in net.layers:
        x = layer.forward(x, False) if isinstance(layer, Dropout) else layer.forward(x)
        seen.append(x.shape[1:])
    assert seen[4] == (16, 14, 14) and seen[7] == (32, 16, 16) and seen[9] == (32, 8, 8)
    assert seen[14] == (64, 4, 4) and seen[15] == (50,) and seen[-1] == (10,)


def test_deep_dropout_follows_train_flg():
    np.random.seed(0)
    net = DeepConvNet()
    x = np.random.rand(3, 1, 28, 28)
    t = np.array([1, 2, 3])
    test_a, test_b = net.predict(x), net.predict(x, train_flg=False)
    np.testing.assert_array_equal(test_a, test_b)  # deterministic at test time
    assert not np.allclose(net.predict(x, train_flg=True), test_a)
    net.loss(x, t)  # the loss trains: dropout masks were drawn
    drops = [layer for layer in net.layers if isinstance(layer, Dropout)]
    assert all(d.mask is not None and 0 < d.mask.mean() < 1 for d in drops)
    assert net.accuracy(x, t) == pytest.approx(np.mean(np.argmax(test_a, axis=1) == t))


def test_deep_gradient_vs_numerical_on_small_input():
    def cp(n, pad=1):
        return {'filter_num': n, 'filter_size': 3, 'pad': pad, 'stride': 1}
    np.random.seed(7)
    # 8x8 -> pool 4 -> pad 2: 6 -> pool 3 -> pool 1
    net = DeepConvNet(input_dim=(1, 8, 8), conv_param_1=cp(2), conv_param_2=cp(2),
                      conv_param_3=cp(3), conv_param_4=cp(3, 2), conv_param_5=cp(4),
                      conv_param_6=cp(4), hidden_size=6, output_size=2)
    assert net.params['W7'].shape == (4, 6)
    for key in net.params:  # biases off zero: zero-padded inputs would sit on ReLU kinks
        if key[0] == 'b':
            net.params[key][...] = 0.1 * np.random.rand(*net.params[key].shape)
    for layer in net.layers:  # a deterministic loss for central differences
        if isinstance(layer, Dropout):
            layer.dropout_ratio = 0.0
    x = np.random.rand(2, 1, 8, 8)
    t = np.array([0, 1])
    grads = net.gradient(x, t)
    for key, val in net.params.items():
        num = numerical_gradient(lambda w: net.loss(x, t), val)
        assert rel_error(grads[key], num) < 1e-6, key


# --------------------------------------------------------------------------- float32 mode ----
def test_float32_mode_keeps_float32():
    previous = config.keep_dtype()
    config.set_keep_dtype(True)
    try:
        np.random.seed(0)
        net = SimpleConvNet(dtype=np.float32)
        np.random.seed(0)
        ref = SimpleConvNet()
        for key in net.params:
            assert net.params[key].dtype == np.float32
            np.testing.assert_array_equal(net.params[key], ref.params[key].astype(np.float32))
        x = np.random.rand(4, 1, 28, 28).astype(np.float32)
        t = np.array([0, 1, 2, 3])
        assert net.predict(x).dtype == np.float32
        grads = net.gradient(x, t)
        assert all(g.dtype == np.float32 for g in grads.values())
        Adam().update(net.params, grads)
        assert all(p.dtype == np.float32 for p in net.params.values())
    finally:
        config.set_keep_dtype(previous)


# ---------------------------------------------------------------------------- params files ----
def test_save_load_round_trip_rebinds_layers(tmp_path):
    np.random.seed(1)
    net = SimpleConvNet()
    x = np.random.rand(3, 1, 28, 28)
    path = tmp_path / "params.pkl"
    net.save_params(str(path))
    np.random.seed(2)
    other = SimpleConvNet()
    other.load_params(str(path))
    for i, key in enumerate(['Conv1', 'Affine1', 'Affine2'], start=1):
        np.testing.assert_array_equal(other.params['W%d' % i], net.params['W%d' % i])
        assert other.layers[key].W is other.params['W%d' % i]
        assert other.layers[key].b is other.params['b%d' % i]
    np.testing.assert_array_equal(other.predict(x), net.predict(x))

    deep = DeepConvNet()
    deep.save_params(tmp_path / "deep.pkl")
    deep2 = DeepConvNet()
    deep2.load_params(tmp_path / "deep.pkl")
    assert deep2.layers[18].W is deep2.params['W8']
    np.testing.assert_array_equal(deep2.predict(x), deep.predict(x))


def test_saved_file_is_what_the_books_code_loads(tmp_path):
    net = SimpleConvNet()
    net.save_params(tmp_path / "params.pkl")
    with open(tmp_path / "params.pkl", "rb") as f:
        plain = pickle.load(f)  # the book's load_params
    assert type(plain) is dict and list(plain) == list(net.params)
    for key, val in plain.items():
        assert type(val) is np.ndarray
        np.testing.assert_array_equal(val, net.params[key])


def _numpy1_style(params):
    """A protocol-2 pickle naming numpy.core.multiarray, as NumPy 1.x wrote the book's files."""
    blob = pickle.dumps(params, protocol=2)  # NumPy 2 names numpy._core, NumPy 1 numpy.core
    assert (b"numpy._core.multiarray\n_reconstruct" in blob
            or b"numpy.core.multiarray\n_reconstruct" in blob)
    return blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


@pytest.mark.parametrize("style", ["protocol0", "numpy1", "default", "protocol5"])
def test_book_pickle_formats_load(tmp_path, style):
    np.random.seed(5)
    params = {k: np.random.randn(*v.shape) for k, v in SimpleConvNet().params.items()}
    blob = {"protocol0": lambda: pickle.dumps(params, protocol=0),
            "numpy1": lambda: _numpy1_style(params),
            "default": lambda: pickle.dumps(params),
            "protocol5": lambda: pickle.dumps(params, protocol=5)}[style]()
    if style == "numpy1":
        names = [arg for op, arg, _ in pickletools.genops(blob) if op.name == "GLOBAL"]
        assert "numpy.core.multiarray _reconstruct" in names
    path = tmp_path / "book.pkl"
    path.write_bytes(blob)
    net = SimpleConvNet()
    net.load_params(str(path))
    for key, val in params.items():
        np.testing.assert_array_equal(net.params[key], val)
    assert net.layers['Affine2'].W is net.params['W3']


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("how", ["os.system", "eval", "nested"])
def test_malicious_pickle_is_refused_without_running(tmp_path, how):
    marker = tmp_path / "pwned"
    payload = {"os.system": _Evil(os.system, f"touch {marker}"),
               "eval": _Evil(eval, f"open({str(marker)!r}, 'w')"),
               "nested": {"W1": np.zeros(3), "b1": _Evil(os.system, f"touch {marker}")}}[how]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ParamsFileError, match="refusing to load the global"):
        load_params_file(path)
    with pytest.raises(ParamsFileError):
        SimpleConvNet().load_params(str(path))
    assert not marker.exists()
    # control: the payload is live, plain pickle.load (the book's load_params) runs it
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_codecs_encode_only_latin1(tmp_path):
    import _codecs
    path = tmp_path / "codec.pkl"
    path.write_bytes(pickle.dumps({"W1": _Evil(_codecs.encode, "abc", "rot13")}, protocol=2))
    with pytest.raises(ParamsFileError, match="rot13"):
        load_params_file(path)


@pytest.mark.parametrize("content, message", [
    (b"W1,W2\n1,2\n", "not a valid params file"),
    (b"", "not a valid params file"),
    (pickle.dumps({"W1": np.zeros(3)})[:-20], "not a valid params file"),
    (pickle.dumps([np.zeros(3)]), "holds a list"),
    (pickle.dumps({1: np.zeros(3)}), "key 1 is not a string"),
    (pickle.dumps({"W1": [1.0, 2.0]}), "W1 is a list"),
    (pickle.dumps({"W1": np.array([1, 2])}), "expected a floating-point array"),
    (pickle.dumps({"W1": np.array([None], dtype=object)}), "expected a floating-point"),
])
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(ParamsFileError, match=message) as info:
        load_params_file(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ParamsFileError, match="cannot read params file"):
        SimpleConvNet().load_params(str(tmp_path / "nope.pkl"))


def test_wrong_keys_or_shapes_for_the_model(tmp_path):
    deep_file = tmp_path / "deep.pkl"
    DeepConvNet().save_params(deep_file)
    net = SimpleConvNet()
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ParamsFileError, match=r"keys do not match SimpleConvNet.*unexpected"):
        net.load_params(deep_file)
    small = tmp_path / "small.pkl"
    SimpleConvNet(hidden_size=50).save_params(small)
    with pytest.raises(ParamsFileError, match=r"W2 has shape \(4320, 50\).*\(4320, 100\)"):
        net.load_params(small)
    for key, val in before.items():  # a failed load leaves the network as it was
        np.testing.assert_array_equal(net.params[key], val)


def test_load_casts_to_the_network_dtype(tmp_path):
    path = tmp_path / "p.pkl"
    save_params_file(SimpleConvNet().params, path)
    net = SimpleConvNet(dtype=np.float32)
    net.load_params(path)
    assert all(v.dtype == np.float32 for v in net.params.values())
    assert net.layers['Conv1'].W is net.params['W1']
