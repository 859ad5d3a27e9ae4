# coding: utf-8
# Weight decay, dropout and batch norm with the Trainer on a slice of MNIST (book-style ch06).
import os
import sys
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.trainer import Trainer

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
x_train, t_train = x_train[:300], t_train[:300]
x_test, t_test = x_test[:300], t_test[:300]

np.random.seed(7)
network = MultiLayerNetExtend(input_size=784, hidden_size_list=[40, 40, 40], output_size=10,
                              weight_decay_lambda=0.1, use_dropout=True, dropout_ration=0.2,
                              use_batchnorm=True)
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=3, mini_batch_size=100,
                  optimizer='sgd', optimizer_param={'lr': 0.05}, verbose=True)
trainer.train()
print("train acc list:", trainer.train_acc_list)
print("test acc list:", trainer.test_acc_list)
