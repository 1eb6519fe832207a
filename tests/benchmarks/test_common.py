"""`benchmarks.common`: what every sweep shares."""

import os
import signal
import threading
import time

from benchmarks import common


def _run_that_checkpoints_on_ctrl_c(seconds: float) -> None:
  """A run's launcher as Ctrl-C finds it: it stops in its own time."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  time.sleep(seconds)


def test_ctrl_c_pressed_twice_waits_for_the_run_without_a_traceback():
  for delay in (1.0, 1.5):  # Two Ctrl-Cs while the run is still stopping.
    threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()
  start = time.time()
  common.run_in_own_process(_run_that_checkpoints_on_ctrl_c, (4.0,),
                            'sweep', '/runs/a')
  assert time.time() - start >= 4.0  # It waited for the run to end.
