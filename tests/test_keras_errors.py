"""Every error of fastconv.keras: the exception type and the words of its message."""
import numpy as np
import pytest

from fastconv import keras
from fastconv.keras import saving
from fastconv.keras.layers import (AveragePooling2D, Conv2D, Dense, Flatten, Input,
                                   MaxPooling2D, Output)
from fastconv.keras.models import Model, load_model
from fastconv.keras.visualization import confusion_matrix

x2 = np.zeros((2, 1, 4, 4))


def model(out=None, compiled=True, loss="cross_tropy"):
    """Input (1, 4, 4) - Flatten - Output(3), compiled with ``loss``."""
    m = Model(Input((1, 4, 4)), "m")
    m.add_layer(Flatten())
    m.add_layer(out or Output(3))
    if compiled:
        m.compile(0.1, loss)
    return m


def bare():
    return Model(Input((1, 4, 4)))


def saved_entries(tmp_path):
    path = tmp_path / "m.npz"
    model().save(str(path))
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_with(tmp_path, **changes):
    """load_model of a saved model's entries with ``changes`` (None: the entry dropped)."""
    entries = saved_entries(tmp_path)
    for key, value in changes.items():
        key = key.replace("__", "/")
        if value is None:
            del entries[key]
        else:
            entries[key] = value
    path = tmp_path / "changed.npz"
    with open(path, "wb") as f:
        np.savez(f, **entries)
    return load_model(str(path))


def _set_params(layer, arrays):
    layer.set_params(arrays)


def _write(path, data):
    path.write_bytes(data)
    return str(path)


CASES = [
    ("input sizes", lambda t: Input((0, 4)), ValueError, ["Input", "input_shape", "(0, 4)"]),
    ("input float size", lambda t: Input((1, 2.5)), TypeError, ["input_shape", "2.5"]),
    ("input string", lambda t: Input("28"), TypeError, ["input_shape", "'28'"]),
    ("conv filters", lambda t: Conv2D(0, 3), ValueError, ["Conv2D", "filters", "0"]),
    ("conv input_shape", lambda t: Conv2D(3, 3, input_shape=(8, 8)), ValueError,
     ["Conv2D", "(C, H, W)", "(8, 8)"]),
    ("conv kernel too large", lambda t: Conv2D(3, 9, input_shape=(1, 4, 4)), ValueError,
     ["9x9", "'valid'", "(1, 4, 4)"]),
    ("conv kernel shape", lambda t: Conv2D(3, 3, input_shape=(1, 8, 8),
                                           kernel=np.zeros((3, 1, 2, 2))), ValueError,
     ["kernel", "(3, 1, 3, 3)", "(3, 1, 2, 2)"]),
    ("pool stride", lambda t: MaxPooling2D(2, stride=-1), ValueError, ["stride", "-1"]),
    ("pool padding", lambda t: AveragePooling2D(2, padding="same"), ValueError,
     ["padding='valid'", "'same'"]),
    ("pool input_shape", lambda t: MaxPooling2D(2, input_shape=(8, 8)), ValueError,
     ["(C, H, W)", "(8, 8)"]),
    ("pool window too large", lambda t: MaxPooling2D(5, input_shape=(1, 4, 4)), ValueError,
     ["5x5", "(1, 4, 4)"]),
    ("dense not flat", lambda t: Dense(3, input_dim=(2, 2)), ValueError,
     ["Dense", "flat", "(2, 2)", "Flatten"]),
    ("dense theta shape", lambda t: Dense(3, 4, theta=np.zeros((4, 3))), ValueError,
     ["theta", "(3, 4)", "(4, 3)"]),
    ("set_params shape", lambda t: _set_params(Dense(3, 4), {"W": np.zeros((3, 4))}),
     ValueError, ["W", "(4, 3)", "(3, 4)"]),
    ("cross_tropy on linear", lambda t: model(Output(3, activate_fcn="linear")), ValueError,
     ["cross_tropy", "'linear'", "MSE"]),
    ("model without Input", lambda t: Model(Flatten()), TypeError, ["Input", "Flatten"]),
    ("add a non-layer", lambda t: bare().add_layer("dense"), TypeError,
     ["add_layer", "str"]),
    ("add after Output", lambda t: model().add_layer(Dense(2)), ValueError,
     ["already ends with an Output"]),
    ("learning rate", lambda t: model(compiled=False).compile(0.0), ValueError,
     ["learning_rate", "0.0"]),
    ("compile without Output", lambda t: bare().compile(0.1), ValueError,
     ["last layer must be an Output"]),
    ("fit before compile", lambda t: model(compiled=False).fit(x2, np.array([0, 1])),
     RuntimeError, ["fit", "compile"]),
    ("label out of range", lambda t: model().fit(x2, np.array([0, 3]), verbose=0),
     ValueError, ["labels", "[0, 3)", "[0, 3]"]),
    ("one-hot shape", lambda t: model().fit(x2, np.zeros((2, 4)), verbose=0), ValueError,
     ["one-hot", "(N, 3)", "(2, 4)"]),
    ("fit sample counts", lambda t: model().fit(x2, np.array([0, 1, 2]), verbose=0),
     ValueError, ["2 samples", "3"]),
    ("fit batch_size", lambda t: model().fit(x2, np.array([0, 1]), batch_size=0, verbose=0),
     ValueError, ["batch_size", "0"]),
    ("fit epochs", lambda t: model().fit(x2, np.array([0, 1]), epochs=-1, verbose=0),
     ValueError, ["epochs", "-1"]),
    ("predict without layers", lambda t: bare().predict(x2), RuntimeError, ["no layers"]),
    ("evaluate sample counts", lambda t: model().evaluate(x2, np.array([0, 1, 2])),
     ValueError, ["2 samples", "3"]),
    ("save before compile", lambda t: model(compiled=False).save(str(t / "m.npz")),
     RuntimeError, ["compile"]),
    ("save format", lambda t: saving.save_model(str(t / "m.x"), model(), format="csv"),
     ValueError, ["format", "'csv'"]),
    ("not a model file", lambda t: load_model(_write(t / "m.txt", b"hello, world")),
     ValueError, ["neither HDF5 nor .npz"]),
    ("npz of another kind", lambda t: load_with(t, format=np.array("other")), ValueError,
     ["not a", saving.FORMAT]),
    ("entry not a string", lambda t: load_with(t, name=np.arange(3)), ValueError,
     ["'name'", "string"]),
    ("unknown layer kind", lambda t: load_with(t, layer_0__kind=np.array("Lambda")),
     ValueError, ["unknown layer kind", "'Lambda'"]),
    ("config not an object", lambda t: load_with(t, layer_1__config=np.array("[3]")),
     ValueError, ["Output", "JSON object"]),
    ("config unknown keys", lambda t: load_with(
        t, layer_1__config=np.array('{"units": 3, "code": "x"}')), ValueError,
     ["unknown keys", "'code'"]),
    ("missing weights", lambda t: load_with(t, layer_1__W=None), ValueError,
     ["missing weights", "'layer_1/W'"]),
    ("weights not numeric", lambda t: load_with(t, layer_1__W=np.zeros((16, 3), bool)),
     ValueError, ["'layer_1/W'", "not numeric"]),
    ("confusion sizes", lambda t: confusion_matrix([0, 1], [0], 2), ValueError,
     ["y_pred has 2", "y_true 1"]),
    ("confusion range", lambda t: confusion_matrix([0, 2], [0, 1], 2), ValueError,
     ["y_pred", "[0, 2)"]),
    ("keras attribute", lambda t: keras.fit_generator, AttributeError, ["fit_generator"]),
]


@pytest.mark.parametrize("name, call, exc, words", CASES, ids=[c[0] for c in CASES])
def test_error_message(tmp_path, name, call, exc, words):
    with pytest.raises(exc) as info:
        call(tmp_path)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


def test_without_h5py(tmp_path, monkeypatch):
    """HDF5 asked for explicitly, or an HDF5 file to read, without h5py: a RuntimeError
    saying to install it."""
    pytest.importorskip("h5py")
    m = model()
    m.save(str(tmp_path / "m.h5"))
    monkeypatch.setattr(saving, "_h5py", lambda: None)
    with pytest.raises(RuntimeError, match="needs h5py"):
        saving.save_model(str(tmp_path / "n.h5"), m, format="h5")
    with pytest.raises(RuntimeError, match="install h5py"):
        load_model(str(tmp_path / "m.h5"))
