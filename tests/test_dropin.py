"""fastconv.install / ``python -m fastconv run``: the book's ``common`` served by fastconv.

tests/book_style is laid out like the book's repository; its ``common/`` modules (and
``dataset/mnist.py``) raise when imported, so a script there only runs if fastconv served them.
Subprocess tests run on a copy, since the scripts write files into their folder.
"""
import gzip
import hashlib
import importlib
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastconv
import naive
import fastconv.layers
from fastconv import dropin
from fastconv.models import SimpleConvNet

BOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "book_style")


def _forget_book_modules():
    for name in list(sys.modules):
        if name.split(".")[0] in ("common", "dataset", "simple_convnet"):
            del sys.modules[name]


@pytest.fixture
def book_on_path():
    """The book folder on sys.path (as the scripts' sys.path.append(os.pardir) does)."""
    saved_path = list(sys.path)
    _forget_book_modules()
    sys.path.append(BOOK)
    yield BOOK
    dropin.uninstall()
    _forget_book_modules()
    sys.path[:] = saved_path


@pytest.fixture
def book_copy(tmp_path):
    dest = tmp_path / "book"
    shutil.copytree(BOOK, dest)
    return dest


def run(args, cwd, env=None, **kw):
    full_env = dict(os.environ, MPLBACKEND="Agg", **(env or {}))
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=120, **kw)


# ------------------------------------------------------------------------------ in-process ----
def test_fake_book_package_is_live(book_on_path):
    # control: without fastconv the fake book modules are what Python imports
    with pytest.raises(RuntimeError, match="BOOK-COMMON-__init__"):
        importlib.import_module("common.layers")


def test_install_serves_fastconv_modules(book_on_path):
    fastconv.install()
    import common
    import common.layers
    from common.layers import Convolution
    assert Convolution is fastconv.layers.Convolution
    assert common.layers.BatchNormalization is fastconv.layers.BatchNormalization
    for name in ("util", "layers", "functions", "gradient", "optimizer", "trainer"):
        served = importlib.import_module("common." + name)
        mine = importlib.import_module("fastconv." + name)
        for public in mine.__all__:  # the very objects of fastconv's module
            assert getattr(served, public) is getattr(mine, public), (name, public)
        assert getattr(common, name) is served
    assert common.__path__ == [os.path.join(BOOK, "common")]
    assert "fastconv" in common.__doc__


def test_other_book_modules_load_from_the_book_folder(book_on_path):
    fastconv.install()
    from common import multi_layer_net
    assert multi_layer_net.SOURCE == "book folder"
    assert multi_layer_net.__file__ == os.path.join(BOOK, "common", "multi_layer_net.py")
    assert multi_layer_net.Relu is fastconv.layers.Relu  # its own imports get fastconv
    net = multi_layer_net.TinyNet(4, 3, 2)
    x, t = np.arange(8.0).reshape(2, 4) / 8, np.array([0, 1])
    p = net.params
    hidden = np.maximum(naive.book_affine_forward(x, p['W1'], p['b1']), 0)
    expected = naive.book_softmax_loss(naive.book_affine_forward(hidden, p['W2'], p['b2']), t)[0]
    assert net.loss(x, t) == pytest.approx(expected, rel=1e-12)


def test_book_folder_added_after_common_was_imported():
    saved_path = list(sys.path)
    _forget_book_modules()
    try:
        fastconv.install()
        import common.util  # noqa: F401 (no book folder on sys.path yet)
        assert sys.modules["common"].__path__ == []
        sys.path.append(BOOK)  # what the script's sys.path.append(os.pardir) does later
        from common import multi_layer_net
        assert multi_layer_net.SOURCE == "book folder"
    finally:
        dropin.uninstall()
        _forget_book_modules()
        sys.path[:] = saved_path


def test_dataset_mnist_alias(book_on_path):
    fastconv.install()
    import dataset.mnist
    from dataset.mnist import load_mnist
    from fastconv.datasets import mnist
    assert dataset.mnist.load_mnist is mnist.load_mnist and load_mnist is mnist.load_mnist
    assert dataset.mnist.dataset_dir == os.path.join(BOOK, "dataset")
    # the book's own (empty) dataset package itself was imported normally
    assert dataset.__file__ == os.path.join(BOOK, "dataset", "__init__.py")


def test_dataset_alias_can_be_left_off(book_on_path):
    fastconv.install(dataset=False)
    import common.layers  # noqa: F401
    with pytest.raises(RuntimeError, match="BOOK-DATASET-mnist"):
        importlib.import_module("dataset.mnist")


def test_install_is_idempotent_and_uninstall_restores(book_on_path):
    fastconv.install()
    fastconv.install()
    assert sum(isinstance(f, dropin._Finder) for f in sys.meta_path) == 1
    assert isinstance(sys.meta_path[0], dropin._Finder)
    import common.layers  # noqa: F401
    dropin.uninstall()
    assert not dropin.installed()
    assert not any(n == "common" or n.startswith("common.") for n in sys.modules)
    with pytest.raises(RuntimeError, match="BOOK-COMMON-__init__"):
        importlib.import_module("common.layers")


# ----------------------------------------------------------------------------- subprocess ----
def test_scripts_fail_without_fastconv(book_copy):
    proc = run([sys.executable, "conv_layer.py"], cwd=book_copy / "ch07")
    assert proc.returncode != 0 and "BOOK-COMMON-__init__" in proc.stderr


@pytest.mark.parametrize("script, expect", [
    ("conv_layer.py", ["common.layers: fastconv.layers", "im2col: (98, 27)", "conv_layer: OK"]),
    ("pooling_layer.py", ["out shape: (2, 3, 3, 3)", "pooling_layer: OK"]),
    ("gradient_check.py", ["common.multi_layer_net from: book folder", "gradient_check: OK"]),
])
def test_python_m_fastconv_run(book_copy, script, expect):
    proc = run([sys.executable, "-m", "fastconv", "run", script, "alpha", "--beta"],
               cwd=book_copy / "ch07")
    assert proc.returncode == 0, proc.stderr
    for line in expect:
        assert line in proc.stdout
    if script == "conv_layer.py":  # the script's own argv, as `python script args`
        assert "argv: ['alpha', '--beta']" in proc.stdout


def test_install_from_python(book_copy):
    code = ("import fastconv; fastconv.install()\n"
            "import sys, os; sys.path.append(os.pardir)\n"
            "from common.layers import *\n"
            "import common.util, common.trainer\n"
            "print(Convolution.__module__, common.util.im2col.__module__,\n"
            "      common.trainer.Trainer)\n")
    proc = run([sys.executable, "-c", code], cwd=book_copy / "ch07")
    assert proc.returncode == 0, proc.stderr
    assert ("fastconv.layers fastconv.kernels.im2col <class 'fastconv.trainer.Trainer'>"
            in proc.stdout)


def test_exit_code_and_missing_script(book_copy):
    (book_copy / "ch07" / "exits.py").write_text(
        "import sys\nprint(__name__, sys.argv)\nsys.exit(3)\n")
    proc = run([sys.executable, "-m", "fastconv", "run", "exits.py", "x"], cwd=book_copy / "ch07")
    assert proc.returncode == 3 and "__main__ ['exits.py', 'x']" in proc.stdout
    proc = run([sys.executable, "-m", "fastconv", "run", "nope.py"], cwd=book_copy / "ch07")
    assert proc.returncode == 2 and "can't open file" in proc.stderr and "nope.py" in proc.stderr
    assert "Traceback" not in proc.stderr


def _tiny_mnist(folder, n_train=200, n_test=100):
    """Write four small IDX files; return their SHA-256 digests (the loader checks them)."""
    rng = np.random.default_rng(0)
    header = {"images": lambda n: np.array([2051, n, 28, 28], dtype=">u4").tobytes(),
              "labels": lambda n: np.array([2049, n], dtype=">u4").tobytes()}
    digests = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, 784)).astype(np.uint8)
        for kind, body in (("images", images), ("labels", labels)):
            name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
            data = header[kind](n) + body.tobytes()
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def test_book_training_script_through_run(book_copy, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    digests = _tiny_mnist(data)
    # the loader checks SHA-256 digests; its API lets the tiny files' digests replace MNIST's
    code = ("import sys, json\n"
            "from fastconv.datasets import mnist\n"
            f"mnist.SHA256.update(json.loads({json.dumps(digests)!r}))\n"
            "from fastconv.cli import main\n"
            "sys.exit(main(['run', 'train_convnet.py']))\n")
    ch07 = book_copy / "ch07"
    proc = run([sys.executable, "-c", code], cwd=ch07,
               env={"FASTCONV_DATA": str(data), "FASTCONV_OFFLINE": "1",
                    "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "=== epoch:1, train acc:" in proc.stdout and "Saved Network Parameters!" in proc.stdout
    assert (ch07 / "train_convnet.png").stat().st_size > 0

    # the book-style script's params.pkl loads into fastconv's SimpleConvNet ...
    net = SimpleConvNet()
    net.load_params(str(ch07 / "params.pkl"))
    with open(ch07 / "params.pkl", "rb") as f:
        book_params = pickle.load(f)
    np.testing.assert_array_equal(net.params["W2"], book_params["W2"])
    # ... and fastconv's file loads into the book-style class (plain pickle.load)
    net.params["b3"][:] = np.arange(10)
    net.save_params(str(ch07 / "from_fastconv.pkl"))
    code = ("import fastconv; fastconv.install()\n"
            "import sys, os; sys.path.append(os.pardir)\n"
            "from simple_convnet import SimpleConvNet\n"
            "n = SimpleConvNet(); n.load_params('from_fastconv.pkl')\n"
            "print(list(n.layers['Affine2'].b))\n")
    proc = run([sys.executable, "-c", code], cwd=ch07)
    assert proc.returncode == 0, proc.stderr
    assert "[0.0, 1.0, 2.0" in proc.stdout.replace("np.float64(", "").replace(")", "")
