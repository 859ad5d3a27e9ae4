"""Bit-identical results for 1, 2 and 8 Numba threads and for the serial variants."""
import json
import os
import subprocess
import sys


def test_results_identical_for_1_2_8_threads_and_serial():
    env = dict(os.environ, NUMBA_NUM_THREADS="8")
    probe = os.path.join(os.path.dirname(__file__), "_thread_probe.py")
    done = subprocess.run([sys.executable, probe], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    digests = json.loads(done.stdout)
    assert set(digests) == {"parallel-1", "parallel-2", "parallel-8", "serial"}
    assert len(set(digests.values())) == 1, digests
