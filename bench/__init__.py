"""fastconv's benchmark suite: ``pytest bench`` runs it, ``python -m bench.report`` reports it.

See ``bench/report.py`` for the options and ``tests/registry.py`` for the implementations.
"""
