# coding: utf-8
# A book-style ch08 network, made small: conv - relu - conv - relu - pool - affine - relu -
# dropout - affine - dropout - softmax, with the book's pickle params files.
import sys, os
sys.path.append(os.pardir)
import pickle
import numpy as np
from common.layers import *


class SmallConvNet:
    def __init__(self, input_dim=(1, 28, 28), filter_num=6, hidden_size=30, output_size=10):
        C, H, W = input_dim
        pre_node_nums = np.array([C * 3 * 3, filter_num * 3 * 3, filter_num * (H // 2) ** 2,
                                  hidden_size])
        weight_init_scales = np.sqrt(2.0 / pre_node_nums)  # He
        shapes = [(filter_num, C, 3, 3), (filter_num, filter_num, 3, 3),
                  (filter_num * (H // 2) * (W // 2), hidden_size), (hidden_size, output_size)]
        self.params = {}
        for idx, shape in enumerate(shapes):
            self.params['W' + str(idx + 1)] = weight_init_scales[idx] * np.random.randn(*shape)
            self.params['b' + str(idx + 1)] = np.zeros(shape[0] if idx < 2 else shape[1])

        self.layers = []
        self.layers.append(Convolution(self.params['W1'], self.params['b1'], 1, 1))
        self.layers.append(Relu())
        self.layers.append(Convolution(self.params['W2'], self.params['b2'], 1, 1))
        self.layers.append(Relu())
        self.layers.append(Pooling(pool_h=2, pool_w=2, stride=2))
        self.layers.append(Affine(self.params['W3'], self.params['b3']))
        self.layers.append(Relu())
        self.layers.append(Dropout(0.5))
        self.layers.append(Affine(self.params['W4'], self.params['b4']))
        self.layers.append(Dropout(0.5))
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        for layer in self.layers:
            if isinstance(layer, Dropout):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, train_flg=True), t)

    def accuracy(self, x, t, batch_size=100):
        acc = 0.0
        for i in range(int(x.shape[0] / batch_size)):
            tx = x[i * batch_size:(i + 1) * batch_size]
            tt = t[i * batch_size:(i + 1) * batch_size]
            acc += np.sum(np.argmax(self.predict(tx, train_flg=False), axis=1) == tt)
        return acc / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, layer_idx in enumerate((0, 2, 5, 8)):
            grads['W' + str(i + 1)] = self.layers[layer_idx].dW
            grads['b' + str(i + 1)] = self.layers[layer_idx].db
        return grads

    def save_params(self, file_name="params.pkl"):
        with open(file_name, 'wb') as f:
            pickle.dump(dict(self.params), f)

    def load_params(self, file_name="params.pkl"):
        with open(file_name, 'rb') as f:
            params = pickle.load(f)
        for key, val in params.items():
            self.params[key] = val
        for i, layer_idx in enumerate((0, 2, 5, 8)):
            self.layers[layer_idx].W = self.params['W' + str(i + 1)]
            self.layers[layer_idx].b = self.params['b' + str(i + 1)]
