"""``python -m bench.small`` cannot rot: every case runs on both sides and they agree, the
table is written, and ``--tune``'s choice and its rewrite of the table, on hand-made
figures."""
import json
import shutil

import numpy as np
import pytest

from bench import small, tune_sizes
from fastconv import sizes


@pytest.fixture(scope="module")
def sides():
    small.BOOK_LABEL, small.BOOK = small.load_book(None)  # tests/book_twin, no checkout here
    small.FASTCONV = small.fastconv_side()
    return small.BOOK, small.FASTCONV


def test_every_case_runs_on_both_sides_and_they_agree(sides):
    book, mine = sides
    for case in small.cases():
        a, b = case.make(book)(), case.make(mine)()
        if case.call.endswith(".update") or case.call.startswith("Dropout"):
            continue  # updates in place, or each side draws its own mask
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{case.call} {case.shape}")


def test_the_table_is_written(sides, tmp_path):
    parsed = type("Args", (), {"only": "Relu.backward", "rounds": 2, "out": str(tmp_path)})
    small.run(parsed)  # --only: prints, writes nothing
    assert list(tmp_path.iterdir()) == []
    rows = [{"call": "Affine.forward", "shape": "(1,784)x(784,50)", "book_s": 6e-6,
             "fastconv_s": 6.6e-6, "ratio": 1.1}]
    text = small.markdown(rows, {"after_us": 150.0, "steady_us": 120.0, "book_after_us": 140.0,
                                 "ratio": 1.25},
                          {"after_pause_us": 700.0, "book_after_pause_us": 650.0,
                           "ratio": 1.08}, {"when": "now", "rounds": 2, "book": "twin",
                                            "cpu": "cpu", "cores": 2, "numpy": "2",
                                            "numba": "0"})
    assert "**0 of 1 calls within 1.05x.**" in text
    assert "| Affine.forward | (1,784)x(784,50) | 6.0 | 6.6 | 1.10 | over |" in text
    assert "| 1.25 | <= 1.5 |" in text and "| 1.08 | <= 1.5 |" in text
    json.dumps(rows)


@pytest.mark.parametrize("ratios, expected", [
    ([1.8, 1.3, 0.9, 0.7], 4),      # the kernel wins from the third size on
    ([1.8, 0.9, 1.1, 0.7], 8),      # a loss at the third size: only from the fourth
    ([0.9, 0.8, 0.7, 0.6], 1),      # always
    ([1.5, 1.4, 1.3, 1.2], 16),     # never within the sizes tried: twice the largest
])
def test_tune_takes_the_smallest_size_from_which_the_kernel_keeps_winning(monkeypatch, ratios,
                                                                          expected):
    figures = iter(ratios)
    monkeypatch.setattr(tune_sizes, "_best_ratio", lambda first, second, rounds: next(figures))
    threshold, _ = tune_sizes.crossover([1, 2, 4, 8], lambda n: (None, None), rounds=1)
    assert threshold == expected


def test_tune_rewrites_only_the_table(tmp_path):
    path = tmp_path / "sizes.py"
    shutil.copy(tune_sizes.SIZES_PY, path)
    before = path.read_text()
    tune_sizes.write(tune_sizes.table({"relu": 4096, "adam": 512}), path)
    after = path.read_text()
    namespace = {}
    exec(after, namespace)
    assert namespace["BOOK_BELOW"] == {"relu": 4096, "adam": 512}
    assert namespace["SERIAL_BELOW"] == sizes.SERIAL_BELOW
    assert before.split("# --- table")[0] == after.split("# --- table")[0]
    assert before.split("end of table ---")[1] == after.split("end of table ---")[1]
