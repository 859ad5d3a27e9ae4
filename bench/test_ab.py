"""bench.ab: the pairing and the summary on hand-made figures, and one real process."""
import os

import numpy as np

from bench import ab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_order_alternates_pair_by_pair():
    order = []
    ta, tb = ab.compare("A", "B", 4, lambda d: order.append(d) or len(order))
    assert order == ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert ta.tolist() == [1, 4, 5, 8] and tb.tolist() == [2, 3, 6, 7]


def test_summary_gives_the_ratio_of_each_pair():
    ta, tb = np.array([0.010, 0.020, 0.010, 0.010]), np.array([0.011, 0.020, 0.012, 0.009])
    # medians 10 and 11.5 ms; B/A per pair 1.1, 1.0, 1.2, 0.9: median 1.05, quartiles
    # 0.975 and 1.125
    assert ab.summary(ta, tb) == ("A 10.00 ms, B 11.50 ms; B/A per pair: median 1.050, "
                                  "quartiles 0.975-1.125, pairs: 4")


def test_a_process_runs_the_checkouts_fastconv():
    seconds = ab.step_seconds(ROOT, "SimpleConvNet", "f32", 1)
    assert 0 < seconds < 60
