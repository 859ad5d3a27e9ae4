# coding: utf-8
# Backpropagation against numerical gradients on a small SimpleConvNet (book-style script).
import sys, os
sys.path.append(os.pardir)
import numpy as np
from simple_convnet import SimpleConvNet
from common.multi_layer_net import SOURCE, TinyNet

# seeded, and weights larger than the book's 0.01: with 0.01 the hidden units sit within h of
# the ReLU kink and the central differences, not backprop, are wrong
np.random.seed(0)
network = SimpleConvNet(input_dim=(1, 10, 10),
                        conv_param={'filter_num': 10, 'filter_size': 3, 'pad': 0, 'stride': 1},
                        hidden_size=10, output_size=10, weight_init_std=0.1)

X = np.random.rand(100).reshape((1, 1, 10, 10))
T = np.array([1]).reshape((1, 1))

grad_num = network.numerical_gradient(X, T)
grad = network.gradient(X, T)

worst = 0.0
for key, val in grad_num.items():
    diff = np.abs(grad_num[key] - grad[key])
    print(key, diff.mean())
    worst = max(worst, diff.max())

# a module of the book's folder that fastconv does not provide still works
tiny = TinyNet(4, 5, 3)
print("common.multi_layer_net from:", SOURCE, tiny.loss(np.ones((2, 4)), np.array([0, 2])))

if worst > 1e-6:
    sys.exit("gradient_check: MISMATCH %g" % worst)
print("gradient_check: OK")
