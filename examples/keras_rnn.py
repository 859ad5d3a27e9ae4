"""The seed framework's recurrent model on fastconv.keras: a 3-D trajectory, one step ahead.

The seed trained this network on a recorded trajectory (a (T, 3) array of points) to predict
each next point. Here the trajectory is synthetic, so nothing is downloaded: a point circling
at a slowly breathing radius while it swings up and down, sampled at even time steps. The
first 600 steps train the model; the next 200, which it never saw, test it.

The rows of one batch are consecutive time steps, so ``fit`` runs with ``shuffle=False``, and
the state carries from batch to batch: after training it sits at the end of the training
steps, which is where the test steps begin.

The script prints the mean squared error of the RNN's predictions on the test steps next to
that of the simplest forecast, "the next point is the last point", and saves the predicted
and true test trajectories to ``keras_rnn.png`` (or the path given as the first argument).
"""
import sys

import numpy as np

from fastconv.keras.layers import Input, Output, Recurrent
from fastconv.keras.models import Model

TRAIN, TEST = 600, 200


def trajectory(steps, dt=0.15):
    """(steps, 3) points of a smooth closed-form curve, dt apart in time."""
    t = np.arange(steps) * dt
    radius = 1.0 + 0.3 * np.sin(0.11 * t)
    return np.stack([radius * np.cos(t), radius * np.sin(t), 0.8 * np.sin(1.5 * t + 0.4)],
                    axis=1)


def split(data):
    """Inputs and one-step-ahead targets of the training and the test steps."""
    X_train, y_train = data[:TRAIN], data[1:TRAIN + 1]
    X_test, y_test = data[TRAIN:TRAIN + TEST], data[TRAIN + 1:TRAIN + TEST + 1]
    return X_train, y_train, X_test, y_test


def train(X_train, y_train, epochs=60, verbose=0):
    """The seed's network: 10 tanh units, a linear output, MSE loss and the MAE metric."""
    model = Model(Input((3,)), "POI_rnn")
    model.add_layer(Recurrent(10, 3, activate_fcn="tanh"))
    model.add_layer(Output(3, 10, activate_fcn="Linear"))
    model.compile(0.015, "MSE", "MAE")
    history = model.fit(X_train, y_train, batch_size=50, epochs=epochs, verbose=verbose,
                        shuffle=False)
    return model, history


def mse(pred, true):
    return float(np.mean((pred - true) ** 2))


def plot(y_test, pred, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 4.5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    ax.plot(*y_test.T, label="true", color="black", linewidth=1)
    ax.plot(*pred.T, label="RNN, one step ahead", color="tab:red", linestyle="--")
    ax.set_title("test steps")
    ax.legend(loc="upper left")
    ax2 = fig.add_subplot(1, 2, 2)
    for i, name in enumerate("xyz"):
        ax2.plot(y_test[:, i], color="black", linewidth=1, label="true" if i == 0 else None)
        ax2.plot(pred[:, i], linestyle="--", label=f"{name} predicted")
    ax2.set_xlabel("test step")
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(path="keras_rnn.png"):
    np.random.seed(0)
    data = trajectory(TRAIN + TEST + 1)
    data -= data[:TRAIN].mean(axis=0)  # centred on the training steps, as the seed did
    X_train, y_train, X_test, y_test = split(data)
    model, history = train(X_train, y_train)
    model.summary()
    print(f"last epoch: MAE {history['MAE'][-1]:.6f}, loss {history['loss'][-1]:.6f}")
    pred = model.predict(X_test)
    rnn, last = mse(pred, y_test), mse(X_test, y_test)
    print(f"test steps: {TEST}, mean squared error per coordinate")
    print(f"  RNN one step ahead:        {rnn:.6f}")
    print(f"  repeat the last point:     {last:.6f}")
    print(f"  RNN / repeat-last:         {rnn / last:.4f}")
    print("plot:", plot(y_test, pred, path))
    return rnn, last


if __name__ == "__main__":
    main(*sys.argv[1:2])
