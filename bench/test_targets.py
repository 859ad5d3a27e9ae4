"""``python -m bench.targets`` cannot rot: its verdicts on hand-made figures, and one round
of its step timings."""
import json

import pytest

from bench import targets


@pytest.fixture(autouse=True)
def _fresh_rows():
    targets.rows.clear()
    yield
    targets.rows.clear()


def test_round_spread_is_the_quartiles_of_the_per_round_ratios():
    steps = {"rounds": {"book": [10.0, 20.0, 30.0, 40.0], "fc64": [1.0, 1.0, 1.0, 2.0]}}
    # ratios 10, 20, 30, 20: quartiles 17.5 and 22.5
    assert targets.round_spread(steps, "book", "fc64") == "round by round 17.5-22.5x"


def _train_run(tmp_path, wall, acc, epochs=20, train_size=60000):
    with open(tmp_path / "metrics.json", "w") as f:
        json.dump({"wall_time_s": wall, "final_test_acc": acc,
                   "settings": {"epochs": epochs, "train_size": train_size}}, f)
    return str(tmp_path)


@pytest.mark.parametrize("wall, acc, epochs, verdicts", [
    (149.0, 0.9885, 20, ["PASS", "PASS"]),
    (151.0, 0.9879, 20, ["FAIL", "FAIL"]),
    (60.0, 0.99, 5, ["FAIL", "PASS"]),  # fast, but not the 20-epoch run the row asks for
])
def test_train_rows(tmp_path, wall, acc, epochs, verdicts):
    targets.check_train(_train_run(tmp_path, wall, acc, epochs), run_now=False)
    assert [r["verdict"] for r in targets.rows] == verdicts


def test_step_times_one_round():
    got = targets.step_times("SimpleConvNet", 1)
    for key in ("book", "fc64", "fc32"):
        assert 0 < got[key] < 60 and got["rounds"][key] == [got[key]]
    ratio = got["book"] / got["fc64"]  # one round: both quartiles are its ratio
    assert targets.round_spread(got, "book", "fc64") == f"round by round {ratio:.1f}-{ratio:.1f}x"
