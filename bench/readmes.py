"""Keep the translated READMEs in step with README.md: same code blocks, same benchmark table.

Each translation carries every fenced code block of README.md unchanged and in the same order,
and the block that ``python -m bench.report`` writes between the bench-report markers.

Usage::

    python -m bench.readmes            # list every difference; exit status 1 if there is one
    python -m bench.readmes --sync     # copy README.md's code blocks and table into each
                                       # translation, then list what needs a hand (prose)
"""
import argparse
import difflib
import re
import sys
from collections import namedtuple
from pathlib import Path

from bench.report import README_BEGIN, README_END, READMES

ROOT = Path(__file__).resolve().parent.parent
ORIGINAL, TRANSLATIONS = READMES[0], READMES[1:]

Block = namedtuple("Block", "start stop text")  # lines [start, stop) of the text, 0-based
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def code_blocks(text):
    """The fenced code blocks of a Markdown ``text``, fences included, in order."""
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group(1)
        stop = i + 1
        while stop < len(lines):
            closing = _FENCE.match(lines[stop])
            if (closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence)
                    and not lines[stop].strip().strip(fence[0])):
                stop += 1
                break
            stop += 1
        blocks.append(Block(i, stop, "\n".join(lines[i:stop])))
        i = stop
    return blocks


def bench_table(text):
    """The text between the bench-report markers, or None where the markers are missing."""
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        return None
    return text.split(README_BEGIN, 1)[1].split(README_END, 1)[0]


def _where(name, number, block):
    first = block.text.split("\n")[1:2] or [""]
    return f"{name} code block {number} (line {block.start + 1}, first line {first[0]!r})"


def _first_change(ours, theirs, name):
    a, b = ours.text.split("\n"), theirs.text.split("\n")
    k = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)) - 1)
    return (f"{name} line {theirs.start + k + 1} reads {b[k]!r} where {ORIGINAL} line "
            f"{ours.start + k + 1} reads {a[k]!r}")


def _similar(a, b):
    return difflib.SequenceMatcher(None, a.text, b.text, autojunk=False).ratio() >= 0.6


def _pairs(ours, theirs):
    """difflib's alignment of two block lists: ('same'|'changed'|'missing'|'extra', i, j).
    Where the counts differ between two matches, a block pairs with a later similar one."""
    matcher = difflib.SequenceMatcher(None, [b.text for b in ours], [b.text for b in theirs],
                                      autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            yield from (("same", i1 + k, j1 + k) for k in range(i2 - i1))
        elif tag == "replace" and i2 - i1 == j2 - j1:
            yield from (("changed", i1 + k, j1 + k) for k in range(i2 - i1))
        else:
            j = j1
            for i in range(i1, i2):
                match = next((k for k in range(j, j2) if _similar(ours[i], theirs[k])), None)
                if match is None:
                    yield "missing", i, None
                    continue
                yield from (("extra", None, k) for k in range(j, match))
                yield "changed", i, match
                j = match + 1
            yield from (("extra", None, k) for k in range(j, j2))


def differences(original, translation, name="translation"):
    """What keeps ``translation`` (text) from matching ``original`` (README.md's text), one
    message per code block that differs, is missing or is extra, and one for the table."""
    ours, theirs = code_blocks(original), code_blocks(translation)
    problems = []
    for kind, i, j in _pairs(ours, theirs):
        if kind == "changed":
            problems.append(f"{name}: {_where(ORIGINAL, i + 1, ours[i])} differs from "
                            f"{_where(name, j + 1, theirs[j])}: "
                            f"{_first_change(ours[i], theirs[j], name)}")
        elif kind == "missing":
            problems.append(f"{name}: {_where(ORIGINAL, i + 1, ours[i])} is missing here "
                            f"(or out of order)")
        elif kind == "extra":
            problems.append(f"{name}: {_where(name, j + 1, theirs[j])} is not in {ORIGINAL} "
                            f"(or out of order)")
    table = bench_table(translation)
    if table is None:
        problems.append(f"{name}: no single pair of bench-report markers")
    elif table != bench_table(original):
        problems.append(f"{name}: the benchmark block between the bench-report markers differs "
                        f"from {ORIGINAL}'s")
    return problems


def sync(original, translation, name="translation"):
    """``translation`` with README.md's version of each code block it can pair (same place in
    the order) and README.md's benchmark block; returns (text, what is left to do by hand)."""
    ours, theirs = code_blocks(original), code_blocks(translation)
    lines = translation.split("\n")
    changed = [(i, j) for kind, i, j in _pairs(ours, theirs) if kind == "changed"]
    for i, j in reversed(changed):  # from the bottom up: the line numbers above stay valid
        lines[theirs[j].start:theirs[j].stop] = ours[i].text.split("\n")
    text = "\n".join(lines)
    table = bench_table(original)
    if table is not None and bench_table(text) is not None:
        head, rest = text.split(README_BEGIN, 1)
        text = head + README_BEGIN + table + README_END + rest.split(README_END, 1)[1]
    return text, differences(original, text, name)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.readmes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sync", action="store_true",
                        help="rewrite the translations' code blocks and table from README.md")
    args = parser.parse_args(argv)
    original = (ROOT / ORIGINAL).read_text(encoding="utf-8")
    problems = []
    for name in TRANSLATIONS:
        if not (ROOT / name).exists():
            problems.append(f"{name}: missing (write it from {ORIGINAL})")
            continue
        text = (ROOT / name).read_text(encoding="utf-8")
        if args.sync:
            new, left = sync(original, text, name)
            if new != text:
                (ROOT / name).write_text(new, encoding="utf-8")
                print(f"updated {name}")
            problems += left
        else:
            problems += differences(original, text, name)
    for problem in problems:
        print(problem)
    if problems and args.sync:
        print("left to do by hand: add or remove these blocks with their translated prose")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
