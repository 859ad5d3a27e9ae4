"""fastconv.models' fully connected networks: TwoLayerNet, MultiLayerNet, MultiLayerNetExtend.

References: the plain NumPy twin naive.BookMLP under the same seed (dropout masks and batch
statistics included), hand-drawn initial weights and central differences.
"""
import numpy as np
import pytest

from conftest import assert_close
from fastconv.layers import (Affine, BatchNormalization, Dropout, Relu, Sigmoid,
                             SoftmaxWithLoss)
from fastconv.models import MultiLayerNet, MultiLayerNetExtend, TwoLayerNet
from naive import BookMLP


def _data(n=12, d=6, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, n)


def _rel_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("weight_init_std, scales", [
    ("relu", [np.sqrt(2.0 / 6), np.sqrt(2.0 / 5), np.sqrt(2.0 / 4)]),
    ("He", [np.sqrt(2.0 / 6), np.sqrt(2.0 / 5), np.sqrt(2.0 / 4)]),
    ("sigmoid", [np.sqrt(1.0 / 6), np.sqrt(1.0 / 5), np.sqrt(1.0 / 4)]),
    ("xavier", [np.sqrt(1.0 / 6), np.sqrt(1.0 / 5), np.sqrt(1.0 / 4)]),
    (0.05, [0.05, 0.05, 0.05]),
])
def test_initial_weights_are_the_books_draws(weight_init_std, scales):
    np.random.seed(3)
    net = MultiLayerNet(6, [5, 4], 3, weight_init_std=weight_init_std)
    np.random.seed(3)
    sizes = [6, 5, 4, 3]
    expected = {}
    for i in range(1, 4):
        expected['W' + str(i)] = scales[i - 1] * np.random.randn(sizes[i - 1], sizes[i])
        expected['b' + str(i)] = np.zeros(sizes[i])
    assert list(net.params) == list(expected)
    for key, val in expected.items():
        np.testing.assert_array_equal(net.params[key], val)
    assert (net.input_size, net.output_size, net.hidden_size_list, net.hidden_layer_num) == \
        (6, 3, [5, 4], 2)


def test_extend_layers_and_params():
    np.random.seed(0)
    net = MultiLayerNetExtend(6, [5, 4], 3, activation='sigmoid', use_dropout=True,
                              dropout_ration=0.3, use_batchnorm=True)
    assert list(net.layers) == ['Affine1', 'BatchNorm1', 'Activation_function1', 'Dropout1',
                                'Affine2', 'BatchNorm2', 'Activation_function2', 'Dropout2',
                                'Affine3']
    kinds = [Affine, BatchNormalization, Sigmoid, Dropout] * 2 + [Affine]
    assert [type(layer) for layer in net.layers.values()] == kinds
    assert list(net.params) == ['W1', 'b1', 'W2', 'b2', 'W3', 'b3',
                                'gamma1', 'beta1', 'gamma2', 'beta2']
    assert net.layers['Dropout2'].dropout_ratio == 0.3
    assert net.layers['BatchNorm1'].gamma is net.params['gamma1']
    assert isinstance(net.last_layer, SoftmaxWithLoss)
    assert net.use_dropout and net.use_batchnorm


CONFIGS = [
    dict(activation='relu', weight_decay_lambda=0.1),
    dict(activation='sigmoid', weight_init_std='xavier', use_batchnorm=True),
    dict(activation='relu', weight_decay_lambda=0.05, use_dropout=True, dropout_ration=0.4,
         use_batchnorm=True),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_extend_against_the_numpy_twin(config):
    x, t = _data()
    np.random.seed(5)
    net = MultiLayerNetExtend(6, [5, 4], 3, **config)
    twin = BookMLP({k: v.copy() for k, v in net.params.items()}, 2,
                   activation=config.get('activation', 'relu'),
                   weight_decay_lambda=config.get('weight_decay_lambda', 0),
                   use_dropout=config.get('use_dropout', False),
                   dropout_ratio=config.get('dropout_ration', 0.5),
                   use_batchnorm=config.get('use_batchnorm', False))
    for step in range(2):  # the second step sees the running statistics of the first
        np.random.seed(10 + step)
        grads = net.gradient(x, t)
        np.random.seed(10 + step)
        expected = twin.gradient(x, t)
        assert sorted(grads) == sorted(expected)
        for key in expected:
            assert_close(grads[key], expected[key])
        np.random.seed(20 + step)
        loss = net.loss(x, t, train_flg=True)
        np.random.seed(20 + step)
        assert_close(loss, twin.loss(x, t, train_flg=True))
    assert_close(net.predict(x), twin.predict(x))
    expected_acc = np.sum(np.argmax(twin.predict(x), axis=1) == t) / len(t)
    assert net.accuracy(x, t) == expected_acc
    assert net.accuracy(x, np.eye(3)[t]) == expected_acc


@pytest.mark.parametrize("cls, kwargs", [
    (MultiLayerNet, dict(activation='relu', weight_decay_lambda=0.2)),
    (MultiLayerNet, dict(activation='sigmoid', weight_init_std='sigmoid')),
    (MultiLayerNetExtend, dict(use_batchnorm=True, weight_decay_lambda=0.1)),
])
def test_backprop_against_numerical_gradient(cls, kwargs):
    x, t = _data(n=6, classes=2)
    np.random.seed(7)
    net = cls(6, [5, 4], 2, **kwargs)
    grads = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t)
    assert sorted(grads) == sorted(numeric)
    for key in numeric:
        # batch norm cancels b1, b2: both sides ~0 there, hence the absolute floor
        np.testing.assert_allclose(grads[key], numeric[key], rtol=1e-5, atol=1e-8, err_msg=key)


def test_multi_layer_net_against_the_numpy_twin():
    x, t = _data()
    np.random.seed(8)
    net = MultiLayerNet(6, [5, 4, 3], 3, weight_decay_lambda=0.3)
    twin = BookMLP({k: v.copy() for k, v in net.params.items()}, 3, weight_decay_lambda=0.3)
    grads, expected = net.gradient(x, t), twin.gradient(x, t)
    for key in expected:
        assert_close(grads[key], expected[key])
    assert_close(net.loss(x, t), twin.loss(x, t))
    assert [type(layer) for layer in net.layers.values()] == [Affine, Relu] * 3 + [Affine]


def test_two_layer_net():
    x, t = _data(n=8)
    np.random.seed(9)
    net = TwoLayerNet(6, 5, 3, weight_init_std=0.3)
    np.random.seed(9)
    np.testing.assert_array_equal(net.params['W1'], 0.3 * np.random.randn(6, 5))
    np.testing.assert_array_equal(net.params['W2'], 0.3 * np.random.randn(5, 3))
    assert list(net.layers) == ['Affine1', 'Relu1', 'Affine2']
    assert isinstance(net.lastLayer, SoftmaxWithLoss)
    twin = BookMLP({k: v.copy() for k, v in net.params.items()}, 1)
    grads, expected = net.gradient(x, t), twin.gradient(x, t)
    assert list(grads) == ['W1', 'b1', 'W2', 'b2']
    for key in expected:
        assert_close(grads[key], expected[key])
    numeric = net.numerical_gradient(x, t)
    for key in numeric:
        assert _rel_error(grads[key], numeric[key]) < 1e-6, key
    assert net.accuracy(x, t) == np.sum(np.argmax(twin.predict(x), axis=1) == t) / 8


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="activation"):
        MultiLayerNet(6, [5], 3, activation='tanh')
    with pytest.raises(ValueError, match="weight_init_std"):
        MultiLayerNetExtend(6, [5], 3, weight_init_std='glorot')
