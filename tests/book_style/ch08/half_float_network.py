# coding: utf-8
# Train a little, save, load into a new network, then predict with float16 data and
# parameters rounded to float16 (book-style ch08 script).
import sys, os
sys.path.append(os.pardir)
import numpy as np
from small_convnet import SmallConvNet
from dataset.mnist import load_mnist
from common.trainer import Trainer

(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
x_train, t_train = x_train[:200], t_train[:200]
x_test, t_test = x_test[:250], t_test[:250]  # the last 50 fall outside accuracy's batches

np.random.seed(8)
network = SmallConvNet(input_dim=(1, 28, 28))
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=2, mini_batch_size=50,
                  optimizer='Adam', optimizer_param={'lr': 0.003},
                  evaluate_sample_num_per_epoch=100)
trainer.train()
network.save_params("small_convnet_params.pkl")

network = SmallConvNet(input_dim=(1, 28, 28))
network.load_params("small_convnet_params.pkl")
print("caluculate accuracy (float64) ... ")
print(network.accuracy(x_test, t_test))

x_test = x_test.astype(np.float16)
for param in network.params.values():
    param[...] = param.astype(np.float16)
print("caluculate accuracy (float16) ... ")
print(network.accuracy(x_test, t_test))
scores = network.predict(x_test[:3])
print("scores dtype:", scores.dtype, "first row:", scores[0][:3])
