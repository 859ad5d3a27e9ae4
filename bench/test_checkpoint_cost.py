"""``python -m bench.checkpoint`` cannot rot: one round on one network."""
from bench import checkpoint


def test_one_round_prints_the_share_of_an_epoch(tmp_path, capsys):
    checkpoint.main(["--rounds", "1", "--networks", "SimpleConvNet", "--dtypes", "float32",
                     "--dir", str(tmp_path)])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.startswith("| SimpleConvNet | float32 |") and row.endswith("% |")
    assert list(tmp_path.iterdir()) == []  # its checkpoints are gone
