"""Test helpers: short episodes, a recording EnvLogger, dataset file paths.

Suite episodes are 1000 steps; most dataset tests only need the format, so they
use episodes cut short by `ShortEpisodes`, which ends each episode after a few
steps (with discount 0 when asked to, to exercise true terminations).
"""

import contextlib
import os
from typing import Any, Iterator, List

import dm_env
import envlogger
import numpy as np
import pytest

from environments import suite
from environments import wrappers
from environments import writer


class ShortEpisodes(wrappers.EnvironmentWrapper):
  """Ends every episode after `length` steps; discount 0 there if `terminal`."""

  def __init__(self, environment: dm_env.Environment, length: int,
               terminal: bool):
    super().__init__(environment)
    self._length = length
    self._terminal = terminal
    self._count = 0

  def reset(self) -> dm_env.TimeStep:
    self._count = 0
    return self._environment.reset()

  def step(self, action) -> dm_env.TimeStep:
    timestep = self._environment.step(action)
    self._count += 1
    if self._count < self._length:
      return timestep
    discount = np.float32(0.0 if self._terminal else 1.0)
    return timestep._replace(step_type=dm_env.StepType.LAST, discount=discount)


@contextlib.contextmanager
def short_episodes(lengths: List[int], terminal: bool) -> Iterator[None]:
  """Makes `suite.make_environment` cut episodes; episode i lasts lengths[i]."""
  real = suite.make_environment
  remaining = list(lengths)

  class Cycling(ShortEpisodes):

    def reset(self) -> dm_env.TimeStep:
      self._length = remaining.pop(0) if remaining else self._length
      return super().reset()

  def make(task: str, seed: int) -> dm_env.Environment:
    return Cycling(real(task, seed), lengths[0], terminal)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(suite, 'make_environment', make)
    yield


@contextlib.contextmanager
def recording_logger() -> Iterator[List[Any]]:
  """Captures every StepData that the writer hands to EnvLogger, in order."""
  records = []

  class Recording(envlogger.EnvLogger):

    def _transform_step(self, timestep, action=None):
      data = super()._transform_step(timestep, action)
      records.append(data)
      return data

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(writer.envlogger, 'EnvLogger', Recording)
    yield records


def riegeli_file(dataset_path: str, name: str) -> str:
  """Path of EnvLogger file `name` (e.g. 'steps.riegeli') inside a dataset."""
  steps = os.path.join(dataset_path, 'steps')
  if name == 'metadata.riegeli':
    return os.path.join(steps, name)
  (shard,) = [d for d in os.listdir(steps)
              if os.path.isdir(os.path.join(steps, d))]
  return os.path.join(steps, shard, name)
