"""The seed framework's README example, on fastconv.keras.

Only the import lines and the data loading differ from the seed: MNIST comes from
``fastconv.datasets.load_mnist`` (set ``FASTCONV_DATA`` to a folder holding the four IDX
gzip files, or let it download) with one-hot labels and images shaped (N, 1, 28, 28),
instead of ``scipy.io.loadmat('data/MNISTData.mat')`` and the transposes. The block at the
end, marked as such, reloads the saved file and checks that it predicts identically (the
seed's README does the same in its section 4.8).

Run it from a scratch folder: it writes accuracy.png, loss.png, confusion_matrix.png and the
saved model (named ``model\\MNIST_cnn.h5`` as in the seed, a Windows path; on Linux that is
one file with a backslash in its name).
"""
from fastconv.keras.layers import *
from fastconv.keras.models import Model, load_model
from fastconv.keras.visualization import history_show, confusion_show
import numpy as np
from fastconv.datasets import load_mnist
import time

(X_train, y_train), (X_test, y_test) = load_mnist(normalize=True, flatten=False,
                                                  one_hot_label=True)

input_layer = Input((1, 28, 28))
model = Model(input_layer, "MNIST_cnn")

# 添加网络层
model.add_layer(Conv2D(20, 9, input_shape = (1, 28, 28), activate_fcn = "ReLU"))
model.add_layer(AveragePooling2D(2, input_shape = (20, 20, 20)))
model.add_layer(Flatten((20, 10, 10)))
model.add_layer(Dense(100, 2000, activate_fcn = "ReLU"))
model.add_layer(Output(10, 100))

model.compile(0.01, "cross_tropy")

T1 = time.time()
history = model.fit(X_train, y_train, batch_size = 32, epochs = 3, verbose = 1, shuffle = True)
T2 = time.time()
print('训练用时:%s分' % ((T2 - T1) / 60))

print(f"模型在测试集上的表现\n{model.evaluate(X_test, y_test)}")
history_show(history)
labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
confusion_show(labels, model.predict_classes(X_test), y_test.argmax(axis = 1))

model.save("model\\MNIST_cnn.h5")

# ---- not in the seed's example: summary, and the reload check of the seed's section 4.8 ----
model.summary()
model_l = load_model("model\\MNIST_cnn.h5")
print(f"reloaded: {model_l.evaluate(X_test, y_test)}")
print("reloaded model predicts identically:",
      np.array_equal(model_l.predict(X_test), model.predict(X_test)))
