# coding: utf-8
# Four optimizers on one small network (book-style ch06 script). numpy comes only from the
# star import of common.optimizer, as in the book's optimizer_compare_mnist.py.
import os
import sys
sys.path.append(os.pardir)
from common.util import smooth_curve
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.optimizer import *

np.random.seed(6)
x = np.random.rand(60, 12)
t = np.random.randint(0, 3, 60)

optimizers = {'SGD': SGD(), 'Momentum': Momentum(), 'AdaGrad': AdaGrad(), 'Adam': Adam()}
networks, train_loss = {}, {}
for key in optimizers.keys():
    networks[key] = MultiLayerNetExtend(input_size=12, hidden_size_list=[10, 10], output_size=3)
    train_loss[key] = []

for i in range(20):
    batch_mask = np.random.choice(60, 20)
    for key in optimizers.keys():
        grads = networks[key].gradient(x[batch_mask], t[batch_mask])
        optimizers[key].update(networks[key].params, grads)
        train_loss[key].append(networks[key].loss(x[batch_mask], t[batch_mask]))
    if i % 5 == 0:
        print("===========" + "iteration:" + str(i) + "===========")
        for key in optimizers.keys():
            print(key + ":" + str(train_loss[key][-1]))
print("smoothed:", smooth_curve(np.array(train_loss['Adam']))[:3])
