"""`benchmarks.common`: what every sweep shares."""

import os
import signal
import subprocess
import sys
import time

# A sweep (its own process, as from a terminal) running one run.
_SWEEP = """
import sys
from benchmarks import common
from tests.benchmarks import test_common
common.run_in_own_process(test_common.run_that_checkpoints_on_ctrl_c,
                          (sys.argv[1], 4.0), 'sweep', '/runs/a')
print('waited for the run')
"""


def run_that_checkpoints_on_ctrl_c(started: str, seconds: float) -> None:
  """A run's launcher as Ctrl-C finds it: it stops in its own time."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  open(started, 'w').close()
  time.sleep(seconds)


def test_ctrl_c_pressed_twice_waits_for_the_run_without_a_traceback(
    tmp_path):
  started = tmp_path / 'started'
  sweep = subprocess.Popen([sys.executable, '-c', _SWEEP, str(started)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True,
                           cwd=os.path.dirname(os.path.dirname(
                               os.path.dirname(os.path.abspath(__file__)))))
  deadline = time.time() + 120
  while not started.exists():
    assert time.time() < deadline and sweep.poll() is None
    time.sleep(0.1)
  for _ in range(2):  # Two Ctrl-Cs while the run is still stopping.
    sweep.send_signal(signal.SIGINT)
    time.sleep(0.5)
  output, _ = sweep.communicate(timeout=60)
  assert sweep.returncode == 0, output
  assert 'waited for the run' in output and 'Traceback' not in output, output
