# coding: utf-8
# Backpropagation against numerical gradients, then SGD steps (book-style ch05 script;
# synthetic data, so it needs no MNIST).
import sys, os
sys.path.append(os.pardir)
import numpy as np
from two_layer_net import TwoLayerNet

np.random.seed(5)
x = np.random.rand(20, 8)
t = np.eye(4)[np.random.randint(0, 4, 20)]  # one-hot, as the book's ch05 scripts

network = TwoLayerNet(input_size=8, hidden_size=6, output_size=4, weight_init_std=0.5)
grad_numerical = network.numerical_gradient(x[:3], t[:3])
grad_backprop = network.gradient(x[:3], t[:3])
for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + str(diff))

for i in range(15):
    batch_mask = np.random.choice(20, 10)
    grad = network.gradient(x[batch_mask], t[batch_mask])
    for key in ('W1', 'b1', 'W2', 'b2'):
        network.params[key] -= 0.3 * grad[key]
    print(i, network.loss(x, t), network.accuracy(x, t))
