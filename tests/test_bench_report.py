"""bench.report writes the READMEs' benchmark block between their markers, nothing else."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench import report  # noqa: E402


def test_update_readme_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\nbefore\n{report.README_BEGIN}\nold table\n| a |\n"
                      f"{report.README_END}\nafter\n")
    assert report.update_readme(["| new |", "", "line"], readme)
    assert readme.read_text() == (f"# title\nbefore\n{report.README_BEGIN}\n| new |\n\nline\n"
                                  f"{report.README_END}\nafter\n")


def test_update_readme_without_markers_changes_nothing(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    assert not report.update_readme(["| new |"], readme)
    assert readme.read_text() == "no markers here\n"


def test_project_readme_has_the_markers():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert text.count(report.README_BEGIN) == 1 and text.count(report.README_END) == 1


def test_a_report_into_bench_results_writes_the_block_of_all_four_readmes(tmp_path, monkeypatch):
    data = json.loads(open(os.path.join(ROOT, "bench", "results", "benchmark.json"),
                           encoding="utf-8").read())
    results = tmp_path / "bench" / "results"
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "RESULTS", results)
    monkeypatch.setattr(report, "plot", lambda *args: False)  # no chart needed here
    for name in report.READMES:
        (tmp_path / name).write_text(f"{name}\n{report.README_BEGIN}\nold\n{report.README_END}\n",
                                     encoding="utf-8")
    report.write_report(data, results)
    blocks = {(tmp_path / name).read_text(encoding="utf-8").split("\n", 1)[1]
              for name in report.READMES}
    assert len(blocks) == 1
    block = blocks.pop()
    assert "old" not in block and "| op | shape | dtype |" in block and "- CPU: " in block
