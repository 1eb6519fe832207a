"""Session fixtures: small datasets, written once, and the raw data logged."""

import os
from typing import Any, Dict

# Quiets EnvLogger's C++ INFO lines; only effective before EnvLogger loads.
os.environ.setdefault('GLOG_minloglevel', '1')

# pylint: disable=g-import-not-at-top,wrong-import-position
import pytest

from environments import writer
from tests.environments import helpers
# pylint: enable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope='session')
def short_dataset(tmp_path_factory) -> Dict[str, Any]:
  """3 mixed-policy cartpole episodes of 5, 9 and 3 steps, each truly terminal.

  Returns {'path': dataset dir, 'records': StepData list, 'metadata': dict}.
  """
  path = str(tmp_path_factory.mktemp('short') / 'cartpole_mixed')
  with helpers.short_episodes([5, 9, 3], terminal=True), \
      helpers.recording_logger() as records:
    metadata = writer.write_dataset(path, 'cartpole_swingup', 'mixed', 3,
                                    seed=7)
  return {'path': path, 'records': list(records), 'metadata': metadata}


@pytest.fixture(scope='session')
def full_dataset(tmp_path_factory) -> Dict[str, Any]:
  """2 full (1000-step, time-limited) random cartpole_swingup episodes."""
  path = str(tmp_path_factory.mktemp('full') / 'cartpole_random')
  with helpers.recording_logger() as records:
    metadata = writer.write_dataset(path, 'cartpole_swingup', 'random', 2,
                                    seed=3)
  return {'path': path, 'records': list(records), 'metadata': metadata}
