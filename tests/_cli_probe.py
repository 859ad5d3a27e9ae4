"""``fastconv ARGS`` in a new process, on the tiny MNIST of a test: the first argument is a
JSON file of the IDX files' SHA-256 digests, which replace the loader's table (as the
in-process tests do with monkeypatch); the rest is the command line. Run by test_resume.py,
which needs a process of its own to signal and to kill.
"""
import json
import sys

from fastconv.cli import main
from fastconv.datasets import mnist

if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        mnist.SHA256 = json.load(f)
    sys.exit(main(sys.argv[2:]))
