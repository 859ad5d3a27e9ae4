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


def _train_run(tmp_path, wall, acc, **changed):
    settings = {"epochs": 20, "train_size": 60000, "mini_batch_size": 100, "optimizer": "Adam",
                "lr": 0.001, "dtype": "float64", "evaluate_sample_num_per_epoch": 1000}
    settings.update(changed)
    model = settings.pop("model", "SimpleConvNet")
    with open(tmp_path / "metrics.json", "w") as f:
        json.dump({"model": model, "wall_time_s": wall, "final_test_acc": acc,
                   "settings": settings}, f)
    return str(tmp_path)


@pytest.mark.parametrize("wall, acc, changed, verdicts", [
    (149.0, 0.9885, {}, ["PASS", "PASS"]),
    (151.0, 0.9879, {}, ["FAIL", "FAIL"]),
    # fast and accurate, but not the run the row asks for
    (60.0, 0.99, {"epochs": 5}, ["FAIL", "FAIL"]),
    (140.0, 0.99, {"model": "DeepConvNet"}, ["FAIL", "FAIL"]),
    (140.0, 0.99, {"lr": 0.01}, ["FAIL", "FAIL"]),
    # float32 mode is shown, not judged: the row is about the default (the book's numbers)
    (110.0, 0.99, {"dtype": "float32"}, ["INFO", "INFO"]),
    (110.0, 0.99, {"dtype": "float32", "epochs": 5}, ["FAIL", "FAIL"]),
])
def test_train_rows(tmp_path, wall, acc, changed, verdicts):
    targets.check_train(_train_run(tmp_path, wall, acc, **changed), run_now=False)
    assert [r["verdict"] for r in targets.rows] == verdicts
    if changed and verdicts[0] == "FAIL":
        assert "not the book's run" in targets.rows[0]["detail"]


def test_info_rows_are_not_counted(tmp_path, capsys, monkeypatch):
    for name in ("check_layers", "check_pooling", "check_steps", "check_compile",
                 "check_memory"):
        monkeypatch.setattr(targets, name, lambda *a: None)
    (tmp_path / "f64").mkdir()
    (tmp_path / "f32").mkdir()
    f32 = _train_run(tmp_path / "f32", 110.0, 0.99, dtype="float32")
    monkeypatch.setattr(targets, "train_now", lambda dtype: f32)
    targets.main(["--train-f32", "--train-run", _train_run(tmp_path / "f64", 151.0, 0.99)])
    out = capsys.readouterr().out
    # the float64 run: wall FAIL, accuracy PASS; the two float32 rows are not in the tally
    assert "1 of 2 target rows pass or skip" in out and out.count("INFO ") == 2


def test_step_times_one_round():
    got = targets.step_times("SimpleConvNet", 1)
    for key in ("book", "fc64", "fc32"):
        assert 0 < got[key] < 60 and got["rounds"][key] == [got[key]]
    ratio = got["book"] / got["fc64"]  # one round: both quartiles are its ratio
    assert targets.round_spread(got, "book", "fc64") == f"round by round {ratio:.1f}-{ratio:.1f}x"


def test_compile_rows_judge_each_network_by_its_limit(monkeypatch):
    # (import s, first-step s) of the cold and then the cached process of each network
    times = {"SimpleConvNet": [(0.2, 5.9), (0.2, 0.3)], "DeepConvNet": [(0.2, 10.2), (0.2, 2.5)]}
    monkeypatch.setattr(targets, "first_step", lambda net, cache: times[net].pop(0))
    out = targets.check_compile()
    assert [r["verdict"] for r in targets.rows] == ["PASS", "PASS", "FAIL", "FAIL"]
    assert out["DeepConvNet"]["cold"]["first_step_s"] == 10.2
