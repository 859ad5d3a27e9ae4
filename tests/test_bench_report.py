"""bench.report writes the README's benchmark block between its markers, nothing else."""
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
