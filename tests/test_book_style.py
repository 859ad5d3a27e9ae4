"""Book-style scripts of chapters 4, 5, 6 and 8: under ``python -m fastconv run`` and under a
plain NumPy stand-in for the book's modules (tests/book_twin), the printed numbers agree.

Each script seeds NumPy itself. Lines must match word for word except numbers, which must
agree to 1e-9 relative (fastconv's sums may round differently in the last bits).
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
BOOK = os.path.join(TESTS, "book_style")
TWIN = os.path.join(TESTS, "book_twin")
DATA = os.environ.get("FASTCONV_DATA", "")
HAVE_MNIST = os.path.isfile(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))
NUMBER = re.compile(r"-?\d+\.\d*(?:e[-+]?\d+)?|-?\d+(?:e[-+]?\d+)?")

needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="MNIST IDX files not in $FASTCONV_DATA")
SCRIPTS = [
    pytest.param("ch04", "train_neuralnet.py", marks=needs_mnist),
    pytest.param("ch05", "gradient_check.py"),
    pytest.param("ch06", "optimizer_compare.py"),
    pytest.param("ch06", "overfit_trainer.py", marks=needs_mnist),
    pytest.param("ch08", "half_float_network.py", marks=needs_mnist),
]


def _run(args, cwd, pythonpath):
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(pythonpath + [env.get("PYTHONPATH", "")])
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_same_printout(actual, expected):
    actual, expected = actual.splitlines(), expected.splitlines()
    assert len(actual) == len(expected), (actual, expected)
    for got, want in zip(actual, expected):
        assert NUMBER.sub("#", got) == NUMBER.sub("#", want), (got, want)
        for a, b in zip(NUMBER.findall(got), NUMBER.findall(want)):
            a, b = float(a), float(b)
            assert abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-15, (got, want)


@pytest.mark.parametrize("chapter, script", SCRIPTS)
def test_same_numbers_as_the_numpy_twin(tmp_path, chapter, script):
    served = tmp_path / "served"
    shutil.copytree(BOOK, served)
    twin = tmp_path / "twin"
    shutil.copytree(BOOK, twin)
    shutil.copytree(TWIN, twin, dirs_exist_ok=True)  # NumPy modules over the fakes

    ref = _run([sys.executable, script], twin / chapter, [TESTS])
    assert ref.returncode == 0, ref.stderr
    got = _run([sys.executable, "-m", "fastconv", "run", script], served / chapter, [])
    assert got.returncode == 0, got.stderr
    assert len(ref.stdout.splitlines()) >= 4
    assert_same_printout(got.stdout, ref.stdout)


def test_the_comparison_catches_a_changed_number():
    assert_same_printout("loss: 0.25 at 3\n", "loss: 0.25000000000001 at 3\n")
    with pytest.raises(AssertionError):
        assert_same_printout("loss: 0.25 at 3\n", "loss: 0.2501 at 3\n")
    with pytest.raises(AssertionError):
        assert_same_printout("loss: 0.25 at 3\n", "loss: 0.25 at 4\n")
