"""Finds the processes of a run by a token in their environment.

A test gives a run a unique `PAC_TEST_TOKEN`; every process of the run
inherits it (Launchpad workers included, even ones re-parented after their
launcher died), which is how a test proves none is left behind.
"""

import os
from typing import List

TOKEN_VARIABLE = 'PAC_TEST_TOKEN'


def processes_with(token: str) -> List[int]:
  """PIDs (other than this one) whose environment carries `token`."""
  found = []
  for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == os.getpid():
      continue
    try:
      with open(f'/proc/{pid}/environ', 'rb') as f:
        if f'{TOKEN_VARIABLE}={token}'.encode() in f.read():
          found.append(int(pid))
    except OSError:
      pass
  return found
