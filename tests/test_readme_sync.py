"""The translated READMEs carry README.md's code blocks, in order, and its benchmark block."""
import os
import re

import pytest

from bench import readmes
from bench.report import README_BEGIN, README_END, READMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRANSLATIONS = READMES[1:]


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


# a README in miniature: two code blocks, prose, the table markers
ORIGINAL = f"""# demo

Install:

```bash
pip install demo
```

Run:

~~~python
import demo
demo.run()
~~~

{README_BEGIN}
| op | time |
{README_END}
"""
TRANSLATED = ORIGINAL.replace("Install:", "インストール:").replace("Run:", "実行:")


@pytest.mark.parametrize("name", TRANSLATIONS)
def test_translation_matches_readme(name):
    problems = readmes.differences(read("README.md"), read(name), name)
    assert not problems, ("\n".join(problems)
                          + "\nfix: python -m bench.readmes --sync (from the repository root)")


def test_the_four_readmes_have_one_identical_benchmark_block():
    tables = {name: readmes.bench_table(read(name)) for name in READMES}
    assert None not in tables.values(), tables
    assert len(set(tables.values())) == 1
    assert "| op | shape | dtype |" in tables["README.md"]


@pytest.mark.parametrize("name", READMES)
def test_first_line_links_to_the_other_readmes(name):
    first = read(name).split("\n", 1)[0]
    targets = re.findall(r"\]\(([^)]+)\)", first)
    assert sorted(targets) == sorted(n for n in READMES if n != name), first


def test_code_blocks_are_found_with_their_lines():
    blocks = readmes.code_blocks(ORIGINAL)
    assert [(b.start, b.stop) for b in blocks] == [(4, 7), (10, 14)]
    assert blocks[1].text == "~~~python\nimport demo\ndemo.run()\n~~~"
    # a shorter fence or another fence character does not close a block
    assert len(readmes.code_blocks("````\n```\nx\n~~~\n````\nafter")) == 1
    assert readmes.code_blocks("```\nnever closed")[0].text == "```\nnever closed"


def test_translated_prose_is_not_a_difference():
    assert readmes.differences(ORIGINAL, TRANSLATED, "ja") == []


def test_a_changed_block_is_named_with_its_lines():
    drifted = TRANSLATED.replace("demo.run()", "demo.run(1)")
    assert readmes.differences(ORIGINAL, drifted, "ja") == [
        "ja: README.md code block 2 (line 11, first line 'import demo') differs from ja code "
        "block 2 (line 11, first line 'import demo'): ja line 13 reads 'demo.run(1)' where "
        "README.md line 13 reads 'demo.run()'"]


def test_missing_extra_and_reordered_blocks_are_reported():
    first, second = (b.text for b in readmes.code_blocks(ORIGINAL))
    missing = TRANSLATED.replace(first, "")
    assert readmes.differences(ORIGINAL, missing, "ja") == [
        "ja: README.md code block 1 (line 5, first line 'pip install demo') is missing here "
        "(or out of order)"]
    extra = TRANSLATED + "\n```\nextra\n```\n"
    assert readmes.differences(ORIGINAL, extra, "ja") == [
        "ja: ja code block 3 (line 20, first line 'extra') is not in README.md "
        "(or out of order)"]
    swapped = TRANSLATED.replace(first, "@@").replace(second, first).replace("@@", second)
    problems = readmes.differences(ORIGINAL, swapped, "ja")
    assert len(problems) == 2 and all("out of order" in p for p in problems)


def test_a_different_or_missing_table_is_reported():
    drifted = TRANSLATED.replace("| op | time |", "| op | time | old |")
    assert readmes.differences(ORIGINAL, drifted, "ja") == [
        "ja: the benchmark block between the bench-report markers differs from README.md's"]
    unmarked = TRANSLATED.replace(README_END, "")
    assert readmes.differences(ORIGINAL, unmarked, "ja") == [
        "ja: no single pair of bench-report markers"]


def test_sync_copies_changed_blocks_and_the_table_and_keeps_the_prose():
    drifted = (TRANSLATED.replace("pip install demo", "pip install demo==0.1")
               .replace("demo.run()", "demo.run(1)\ndemo.stop()")
               .replace("| op | time |", "| old |"))
    text, left = readmes.sync(ORIGINAL, drifted, "ja")
    assert (text, left) == (TRANSLATED, [])


def test_sync_leaves_an_added_block_to_a_hand():
    longer = ORIGINAL.replace("Run:", "Check:\n\n```bash\ndemo --check\n```\n\nRun:")
    text, left = readmes.sync(longer, TRANSLATED, "ja")
    assert text == TRANSLATED
    assert left == ["ja: README.md code block 2 (line 11, first line 'demo --check') is missing "
                    "here (or out of order)"]


def test_a_changed_block_next_to_an_added_one_is_still_paired():
    longer = (ORIGINAL.replace("pip install demo", "pip install demo\npip install demo[extra]")
              .replace("Run:", "Check:\n\n```bash\ndemo --check\n```\n\nRun:"))
    problems = readmes.differences(longer, TRANSLATED, "ja")
    assert len(problems) == 2
    assert problems[0].startswith("ja: README.md code block 1 (line 5, first line 'pip install "
                                  "demo') differs from ja code block 1")
    assert "code block 2 (line 12, first line 'demo --check') is missing" in problems[1]
    text, left = readmes.sync(longer, TRANSLATED, "ja")
    assert "pip install demo[extra]" in text and left == problems[1:]
