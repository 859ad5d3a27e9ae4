"""The drop-in against the book's module interface: star imports, fallbacks and errors.

BOOK_STAR_NAMES is what ``from M import *`` gives from the book's own modules (they have no
``__all__``), written down from the book's sources.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastconv
import fastconv.layers
import fastconv.trainer
from fastconv import dropin
from test_dropin import BOOK, _forget_book_modules, book_copy, book_on_path, run  # noqa: F401

OPTIMIZERS = ["AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop", "SGD"]
FUNCTIONS = ["cross_entropy_error", "identity_function", "np", "relu", "relu_grad", "sigmoid",
             "sigmoid_grad", "softmax", "softmax_loss", "step_function", "sum_squared_error"]
BOOK_STAR_NAMES = {
    "common.util": ["col2im", "conv_output_size", "im2col", "np", "shuffle_dataset",
                    "smooth_curve"],
    "common.functions": FUNCTIONS,
    "common.layers": FUNCTIONS + ["Affine", "BatchNormalization", "Convolution", "Dropout",
                                  "Pooling", "Relu", "Sigmoid", "SoftmaxWithLoss", "col2im",
                                  "im2col"],
    "common.gradient": ["np", "numerical_gradient", "numerical_gradient_2d"],
    "common.optimizer": OPTIMIZERS + ["np"],
    "common.trainer": OPTIMIZERS + ["Trainer", "np", "os", "sys"],
    "dataset.mnist": ["dataset_dir", "download_mnist", "gzip", "img_dim", "img_size",
                      "init_mnist", "key_file", "load_mnist", "np", "os", "pickle", "save_file",
                      "test_num", "train_num", "url_base", "urllib"],
}


@pytest.mark.parametrize("module", sorted(BOOK_STAR_NAMES))
def test_star_import_gives_the_books_names(book_on_path, module):
    fastconv.install()
    namespace = {}
    exec(f"from {module} import *", namespace)
    missing = sorted(set(BOOK_STAR_NAMES[module]) - set(namespace))
    assert not missing, f"{module}: {missing}"
    assert namespace["np"] is np
    if module == "common.layers":
        assert namespace["Convolution"] is fastconv.layers.Convolution
        assert namespace["im2col"] is fastconv.util.im2col
        assert namespace["softmax"] is fastconv.functions.softmax
    if module == "common.trainer":
        assert namespace["Trainer"] is fastconv.trainer.Trainer and namespace["os"] is os
    if module == "dataset.mnist":
        assert namespace["img_dim"] == (1, 28, 28) and namespace["train_num"] == 60000
        assert namespace["key_file"]["test_label"] == "t10k-labels-idx1-ubyte.gz"


def test_fastconvs_own_star_exports_stay_its_api():
    namespace = {}
    exec("from fastconv.layers import *", namespace)
    assert "np" not in namespace and "Convolution" in namespace


def test_optimizer_compare_style_script(book_copy):
    # ch06/optimizer_compare_mnist uses np and OrderedDict-free names from star imports only
    script = book_copy / "ch07" / "star_names.py"
    script.write_text(
        "import sys, os\nsys.path.append(os.pardir)\n"
        "from common.optimizer import *\nfrom common.util import smooth_curve\n"
        "optimizers = {'SGD': SGD(), 'Adam': Adam()}\n"
        "x = np.arange(3.0)\n"
        "print('np from star:', np.sum(x), type(optimizers['Adam']).__name__)\n")
    proc = run([sys.executable, "-m", "fastconv", "run", "star_names.py"],
               cwd=book_copy / "ch07")
    assert proc.returncode == 0, proc.stderr
    assert "np from star: 3.0 Adam" in proc.stdout


# ------------------------------------------------------------------------------ bad input ----
def test_unserved_common_module_loads_the_books_file(book_on_path, tmp_path):
    fastconv.install()
    from common import multi_layer_net  # the fake book folder's own file
    assert multi_layer_net.__file__ == os.path.join(BOOK, "common", "multi_layer_net.py")


def test_book_file_that_fails_gives_the_books_error(tmp_path):
    book = tmp_path / "book"
    shutil.copytree(BOOK, book)
    (book / "common" / "broken.py").write_text("x = 1\nraise KeyError('the book broke')\n")
    saved = list(sys.path)
    _forget_book_modules()
    sys.path.append(str(book))
    try:
        fastconv.install()
        with pytest.raises(KeyError, match="the book broke") as info:
            import common.broken  # noqa: F401
        # the book's file is the innermost frame, not fastconv's finder
        assert info.traceback[-1].path == book / "common" / "broken.py"
    finally:
        dropin.uninstall()
        _forget_book_modules()
        sys.path[:] = saved


def test_script_that_raises_gives_its_traceback_and_exit_code(book_copy):
    ch07 = book_copy / "ch07"
    (ch07 / "raises.py").write_text("print('before')\n\ndef f():\n    return 1 / 0\n\nf()\n")
    plain = run([sys.executable, "raises.py"], cwd=ch07)
    served = run([sys.executable, "-m", "fastconv", "run", "raises.py"], cwd=ch07)
    assert served.returncode == plain.returncode == 1
    assert served.stdout == plain.stdout == "before\n"
    assert served.stderr == plain.stderr  # the script's frames only
    assert 'raises.py", line 4, in f' in served.stderr


def test_missing_script_as_python_says(book_copy):
    ch07 = book_copy / "ch07"
    plain = run([sys.executable, "nope.py"], cwd=ch07)
    served = run([sys.executable, "-m", "fastconv", "run", "nope.py"], cwd=ch07)
    assert served.returncode == plain.returncode == 2
    assert "nope.py" in served.stderr and "No such file or directory" in served.stderr
    assert "Traceback" not in served.stderr


# ------------------------------------------------------------------------------- start-up ----
HEAVY = ("matplotlib", "tqdm", "h5py", "PIL", "IPython")


def test_imports_stay_light(book_copy):
    ch07 = book_copy / "ch07"
    (ch07 / "modules.py").write_text(
        "import sys, os\nsys.path.append(os.pardir)\nfrom common.layers import *\n"
        "from common.trainer import Trainer\nimport dataset.mnist\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    proc = run([sys.executable, "-m", "fastconv", "run", "modules.py"], cwd=ch07)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    proc = run([sys.executable, "-c", "import sys, fastconv.layers, fastconv.models\n"
                f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"], cwd=ch07)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
