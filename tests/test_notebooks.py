"""CI for the notebooks: run every ``notebooks/NN_*.ipynb`` top to bottom and fail on any error.

Each notebook is executed with nbclient in a fresh ``python3`` kernel, at the small sizes
(``FASTCONV_NB_SMALL=1``), from a copy: the committed file, with its stored outputs, is never
rewritten (the executed copy is left in pytest's temporary folder for inspection). The kernel
runs in ``notebooks/``, as a reader's would. The small sizes keep the default suite fast.

MNIST for ``01_quickstart``: ``$FASTCONV_DATA`` if set, else ``../shared/data/mnist`` beside the
checkout when it exists, else the loader's own cache and download; with none of them available
(offline) that notebook is skipped, not failed.

The stored outputs are checked too: every committed notebook holds the outputs of a complete
run, without errors, with its plots as PNG images.
"""
import os
import shutil
from pathlib import Path

import pytest

try:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    import ipykernel  # noqa: F401  (the python3 kernel nbclient starts)
except ImportError as exc:  # pragma: no cover - the [test] extra installs all three
    pytestmark = pytest.mark.skip(reason=f"notebook tests need nbformat, nbclient and ipykernel "
                                         f"(pip install -e '.[test]'): {exc}")
    nbformat = None

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# the plots each notebook must store (at least): see notebooks/_build.py
MIN_PLOTS = {"01_quickstart": 6, "02_kernels": 3, "03_benchmarks": 3}


def _has_mnist(folder):
    """The four IDX files, gzipped or not, in ``folder`` (the loader checks their SHA-256)."""
    return all(os.path.isfile(os.path.join(folder, name + ".gz"))
               or os.path.isfile(os.path.join(folder, name)) for name in MNIST_FILES)


def _provide_mnist(monkeypatch):
    """Point the kernel at MNIST (through the environment it inherits), or skip."""
    if not os.environ.get("FASTCONV_DATA"):
        shared = os.path.join(REPO, "..", "shared", "data", "mnist")
        if os.path.isdir(shared):
            monkeypatch.setenv("FASTCONV_DATA", os.path.abspath(shared))
    from fastconv.datasets import MNISTUnavailableError, load_mnist
    from fastconv.datasets.mnist import cache_dir
    if _has_mnist(cache_dir()):
        return
    try:  # not there yet: let the loader fetch it now (or fail fast when offline)
        load_mnist()
    except MNISTUnavailableError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        pytest.skip(f"MNIST is not available (not in {cache_dir()}, and no download: offline "
                    f"or unreachable); set FASTCONV_DATA to a folder holding the four IDX "
                    f"files. {first_line}")


def _png_count(nb):
    return sum("image/png" in out.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def _errors(nb):
    return [f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.outputs if out.output_type == "error"]


def test_notebooks_found():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_kernels", "03_benchmarks"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_NB_SMALL", "1")
    # ipykernel honours an inherited MPLBACKEND (CI sets Agg), which would hide the plots
    monkeypatch.delenv("MPLBACKEND", raising=False)
    if path.stem.startswith("01"):
        _provide_mnist(monkeypatch)

    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    for cell in nb.cells:  # start from a clean copy: no stale outputs can pass the checks
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed (executed copy: {copy}):\n{exc}", pytrace=False)
    finally:
        nbformat.write(nb, copy)
    assert not _errors(nb)
    plots = _png_count(nb)
    assert plots >= MIN_PLOTS[path.stem], f"{path.name} made {plots} plots"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs(path):
    """The committed notebook reads well on a web page: run to the end, no error, real plots."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    not_run = [i for i, cell in enumerate(code) if cell.execution_count is None]
    assert not not_run, f"{path.name}: code cells {not_run} have no stored run"
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), \
        f"{path.name}: cells were not run top to bottom in one kernel"
    assert not _errors(nb), _errors(nb)
    plots = _png_count(nb)
    assert plots >= MIN_PLOTS[path.stem], f"{path.name} stores {plots} plots"
