# coding: utf-8
# Mini-batch training of the ch04 two-layer network on a slice of MNIST (book-style script).
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from two_layer_net import TwoLayerNet

np.random.seed(4)
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
x_train, t_train = x_train[:500], t_train[:500]
x_test, t_test = x_test[:200], t_test[:200]

network = TwoLayerNet(input_size=784, hidden_size=20, output_size=10)

# numerical against analytic gradients on a few samples
small = TwoLayerNet(input_size=6, hidden_size=4, output_size=10)
xs, ts = np.random.rand(3, 6), np.eye(10)[[1, 4, 7]]
numeric, analytic = small.numerical_gradient(xs, ts), small.gradient(xs, ts)
for key in ('W1', 'b1', 'W2', 'b2'):
    print(key + ":" + str(np.average(np.abs(numeric[key] - analytic[key]))))

iters_num, batch_size, learning_rate = 30, 50, 0.5
iter_per_epoch = max(x_train.shape[0] / batch_size, 1)
train_loss_list = []
for i in range(iters_num):
    batch_mask = np.random.choice(x_train.shape[0], batch_size)
    x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
    grad = network.gradient(x_batch, t_batch)
    for key in ('W1', 'b1', 'W2', 'b2'):
        network.params[key] -= learning_rate * grad[key]
    train_loss_list.append(network.loss(x_batch, t_batch))
    if i % iter_per_epoch == 0:
        print("train acc, test acc | " + str(network.accuracy(x_train, t_train)) + ", "
              + str(network.accuracy(x_test, t_test)))
print("last loss:", train_loss_list[-1])
