"""The book's network classes served by the drop-in (fastconv.models.book, dropin.BOOK_NETWORKS).

The references are the book-style SimpleConvNet of tests/book_style/ch07 run on the plain
NumPy modules of tests/book_twin (no fastconv), and hand-drawn weights.
"""
import importlib
import os
import shutil
import sys

import numpy as np
import pytest

from conftest import assert_close
from fastconv import dropin
from fastconv.models import book
from test_dropin import BOOK, _forget_book_modules

TWIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "book_twin")
CONV = {'filter_num': 3, 'filter_size': 3, 'pad': 0, 'stride': 1}


@pytest.fixture
def folder(tmp_path):
    """A copy of the book-style folder; sys.path and the book's modules restored after."""
    saved = list(sys.path)
    _forget_book_modules()
    shutil.copytree(BOOK, tmp_path / "book")
    yield tmp_path / "book"
    dropin.uninstall()
    for name in ("simple_convnet", "naive_twin_net"):
        sys.modules.pop(name, None)
    _forget_book_modules()
    sys.path[:] = saved


@pytest.fixture
def twin_class(folder):
    """The book-style SimpleConvNet class on the NumPy twin modules (fastconv not installed)."""
    shutil.copytree(TWIN, folder, dirs_exist_ok=True)
    sys.path[:0] = [str(folder / "ch07"), str(folder)]
    module = importlib.import_module("simple_convnet")
    assert module.Convolution.__module__ == "common.layers"  # the twin's, not fastconv's
    yield module.SimpleConvNet
    sys.modules.pop("simple_convnet", None)
    _forget_book_modules()


def test_fingerprint_ignores_comments_and_docstrings_only():
    code = "import numpy as np\n\nclass A:\n    def f(self, x):\n        return x + 1\n"
    translated = ('# coding: utf-8\n"""Module docs."""\nimport numpy as np  # 数値計算\n\n\n'
                  'class A:\n    """단순한 클래스"""\n    def f(self, x):\n'
                  '        # comment\n'
                  '        return x + 1\n')
    assert dropin.code_fingerprint(code) == dropin.code_fingerprint(translated)
    assert dropin.code_fingerprint(code) != dropin.code_fingerprint(code.replace("+ 1", "+ 2"))


def test_book_file_is_served_and_a_modified_copy_is_not(folder, monkeypatch):
    path = folder / "ch07" / "simple_convnet.py"
    fingerprint = dropin.code_fingerprint(path.read_bytes())
    monkeypatch.setitem(dropin.BOOK_NETWORKS, fingerprint,
                        ("SimpleConvNet", "fastconv.models.book"))
    sys.path[:0] = [str(folder / "ch07"), str(folder)]
    dropin.install()
    module = importlib.import_module("simple_convnet")
    assert module.SimpleConvNet is book.SimpleConvNet
    assert module.__file__ == str(path) and module.pickle.__name__ == "pickle"  # its own names

    sys.modules.pop("simple_convnet")
    path.write_text(path.read_text().replace("acc / x.shape[0]", "acc / (x.shape[0] + 0)"))
    module = importlib.import_module("simple_convnet")
    assert module.SimpleConvNet.__module__ == "simple_convnet"  # the copy, as written


def test_failing_book_network_file_gives_its_own_error(folder, monkeypatch):
    path = folder / "ch07" / "simple_convnet.py"
    path.write_text(path.read_text() + "\nraise OSError('network file broke')\n")
    monkeypatch.setitem(dropin.BOOK_NETWORKS, dropin.code_fingerprint(path.read_bytes()),
                        ("SimpleConvNet", "fastconv.models.book"))
    sys.path[:0] = [str(folder / "ch07"), str(folder)]
    dropin.install()
    with pytest.raises(OSError, match="network file broke"):
        importlib.import_module("simple_convnet")


def test_served_simple_convnet_against_the_numpy_twin(twin_class, tmp_path):
    np.random.seed(11)
    ref = twin_class(input_dim=(1, 10, 10), conv_param=CONV, hidden_size=7, output_size=4,
                     weight_init_std=0.3)
    np.random.seed(11)
    net = book.SimpleConvNet(input_dim=(1, 10, 10), conv_param=CONV, hidden_size=7,
                             output_size=4, weight_init_std=0.3)
    for key in ref.params:
        np.testing.assert_array_equal(net.params[key], ref.params[key])
    rng = np.random.default_rng(2)
    x, t = rng.random((25, 1, 10, 10)), rng.integers(0, 4, 25)
    grads, expected = net.gradient(x, t), ref.gradient(x, t)
    for key in expected:
        assert_close(grads[key], expected[key])
    # 25 samples in batches of 10: the book counts 20 of them and divides by 25
    assert net.accuracy(x, t, batch_size=10) == ref.accuracy(x, t, batch_size=10)
    assert net.accuracy(x, t, batch_size=10) <= 20 / 25
    # params files both ways, dtype kept as the book's load_params keeps it
    ref.params['W3'][...] = rng.random(ref.params['W3'].shape)
    ref.save_params(str(tmp_path / "ref.pkl"))
    net.load_params(str(tmp_path / "ref.pkl"))
    np.testing.assert_array_equal(net.layers['Affine2'].W, ref.params['W3'])
    net.params['b3'] = net.params['b3'].astype(np.float32)
    net.save_params(str(tmp_path / "net.pkl"))
    ref.load_params(str(tmp_path / "net.pkl"))
    net.load_params(str(tmp_path / "net.pkl"))
    assert net.params['b3'].dtype == ref.params['b3'].dtype == np.float32
    assert_close(net.predict(x), ref.predict(x))


def test_served_simple_convnet_odd_convolution_size_as_the_book():
    # (11 - 3) + 1 = 9 outputs: the book's true division gives int(3 * 4.5 * 4.5) = 60 inputs
    np.random.seed(0)
    net = book.SimpleConvNet(input_dim=(1, 11, 11), conv_param=CONV, hidden_size=5)
    assert net.params['W2'].shape == (60, 5)


def test_served_deep_convnet_uses_the_books_written_out_fan_ins():
    np.random.seed(3)
    net = book.DeepConvNet(input_dim=(3, 28, 28), hidden_size=20)
    np.random.seed(3)
    W1 = np.sqrt(2.0 / 9) * np.random.randn(16, 3, 3, 3)  # 1*3*3 whatever the channels
    np.testing.assert_array_equal(net.params['W1'], W1)
    assert net.params['W7'].shape == (64 * 4 * 4, 20)
    rng = np.random.default_rng(4)
    x, t = rng.random((150, 3, 28, 28)), rng.integers(0, 10, 150)
    np.random.seed(5)
    y = net.predict(x[:100])
    hits = np.sum(np.argmax(y, axis=1) == t[:100])
    assert net.accuracy(x, t) == hits / 150  # the last 50 are skipped


@pytest.mark.skipif(not os.environ.get("FASTCONV_BOOK"),
                    reason="set FASTCONV_BOOK to a checkout of the book's repository")
def test_the_books_own_files_are_known():
    root = os.environ["FASTCONV_BOOK"]
    for name, cls in [("ch07/simple_convnet.py", "SimpleConvNet"),
                      ("ch08/deep_convnet.py", "DeepConvNet"),
                      ("ch05/two_layer_net.py", "TwoLayerNet"),
                      ("common/multi_layer_net.py", "MultiLayerNet"),
                      ("common/multi_layer_net_extend.py", "MultiLayerNetExtend")]:
        with open(os.path.join(root, name), "rb") as f:
            assert dropin.BOOK_NETWORKS[dropin.code_fingerprint(f.read())][0] == cls


def test_bench_served_runs(capsys):
    from bench import served
    args = ["--rounds", "1", "--networks", "SimpleConvNet"]
    if os.environ.get("FASTCONV_BOOK"):
        args += ["--book", os.environ["FASTCONV_BOOK"]]
    served.main(args)
    out = capsys.readouterr().out
    assert "fastconv.models.book.SimpleConvNet" in out and "ms" in out
    if os.environ.get("FASTCONV_BOOK"):
        assert "simple_convnet.SimpleConvNet" in out  # the book file's own class, unserved
