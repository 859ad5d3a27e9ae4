"""Shared fixtures: tolerance helpers and hypothesis settings."""
import os
import sys


import numpy as np
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # tests/naive.py, tests/registry.py

settings.register_profile("fastconv", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fastconv")


def assert_close(actual, expected, rtol=1e-12):
    """Elementwise |a - e| <= rtol * (|e| + max|e|): relative 1e-12, with the absolute floor
    that summation-order rounding needs where terms cancel to ~0."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-300))


# float32 keeps 24 bits (unit roundoff u = 2**-24 = 6e-8). The sums here have up to a few
# thousand terms; rounded in any order their error grows like sqrt(K) u (under 5e-6 for
# K = 5000), a little more through the few layers of a network's backward. 1e-4 of the scale
# leaves a margin of ten or more above that, and is still 5x below float16's u (5e-4) and far
# below what a wrong index, bias or sign makes.
F32_RTOL = 1e-4


def hide_module(monkeypatch, prefix):
    """Make ``import prefix...`` fail for the rest of the test, as if not installed."""
    import builtins
    real_import = builtins.__import__

    def guarded(name, *args, **kwargs):
        if name == prefix or name.startswith(prefix + "."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", guarded)


class TouchOnLoad:
    """Pickled, it asks the loader to run ``touch marker``: a safe loader never does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)
