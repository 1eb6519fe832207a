"""Shared fixtures for the launcher tests: one small real cartpole dataset."""

import pytest

import environments

TASK = 'cartpole_swingup'


@pytest.fixture(scope='session')
def cartpole_dataset(tmp_path_factory) -> str:
  """4 episodes (4000 steps) of the mixed expert/medium/random behaviour."""
  path = str(tmp_path_factory.mktemp('data') / 'cartpole_mixed')
  environments.write_dataset(path, task=TASK, policy='mixed', num_episodes=4,
                             seed=0)
  return path


@pytest.fixture(scope='session')
def walker_dataset(tmp_path_factory) -> str:
  """1 random episode (1000 steps) of walker_walk: 6 actions, 24 inputs."""
  path = str(tmp_path_factory.mktemp('data') / 'walker_random')
  environments.write_dataset(path, task='walker_walk', policy='random',
                             num_episodes=1, seed=0)
  return path
