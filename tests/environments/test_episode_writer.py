"""`EpisodeWriter`: episodes collected elsewhere become a dataset, whole ones only."""

import os

import numpy as np
import pytest

import environments
from environments import layout
from environments import suite
from environments import writer
from tests.environments import helpers

TASK = 'cartpole_swingup'


def _rollouts(num_episodes, length, seed=0):
  """(timesteps, actions) of real, shortened cartpole episodes."""
  env = helpers.ShortEpisodes(suite.make_environment(TASK, seed), length,
                              terminal=False)
  rng = np.random.default_rng(seed)
  episodes = []
  for _ in range(num_episodes):
    timesteps, actions = [env.reset()], []
    while not timesteps[-1].last():
      actions.append(rng.uniform(-1, 1, (1,)).astype(np.float32))
      timesteps.append(env.step(actions[-1]))
    episodes.append((timesteps, actions))
  return env, episodes


def _writer(path, env):
  return writer.EpisodeWriter(
      str(path), TASK, suite.environment_spec(env), policy='pac',
      description='PAC actor 0', seed=7, source='test')


def test_written_episodes_load_back_exactly(tmp_path):
  env, episodes = _rollouts(num_episodes=2, length=30)
  out = tmp_path / 'episodes'
  episode_writer = _writer(out, env)
  for k, (timesteps, actions) in enumerate(episodes):
    episode_writer.add(timesteps, actions, learner_step=100 * k)
  assert not out.exists()  # Installed only by close().
  metadata = episode_writer.close()
  assert metadata['num_episodes'] == 2 and metadata['source'] == 'test'
  dataset = environments.load_dataset(str(out))
  assert dataset.num_transitions == 60
  loaded = list(dataset.episodes())
  for (timesteps, actions), episode in zip(episodes, loaded):
    steps = episode['steps']
    np.testing.assert_array_equal(steps['action'][:-1], np.stack(actions))
    np.testing.assert_array_equal(
        steps['reward'][:-1], [t.reward for t in timesteps[1:]])
    np.testing.assert_array_equal(
        steps['observation']['position'],
        np.stack([t.observation['position'] for t in timesteps]))
  assert [e['learner_step'] for e in loaded] == [0, 100]
  assert [e['policy'] for e in loaded] == ['pac', 'pac']


def test_until_closed_there_is_only_a_hidden_directory(tmp_path):
  env, episodes = _rollouts(num_episodes=1, length=10)
  episode_writer = _writer(tmp_path / 'episodes', env)
  episode_writer.add(*episodes[0])
  names = os.listdir(tmp_path)
  assert len(names) == 1 and layout.INCOMPLETE_MARKER in names[0]
  with pytest.raises(environments.NotADatasetError):
    environments.load_dataset(str(tmp_path / names[0]))


def test_a_writer_with_no_episode_leaves_nothing(tmp_path):
  env, _ = _rollouts(num_episodes=0, length=10)
  assert _writer(tmp_path / 'episodes', env).close() is None
  assert os.listdir(tmp_path) == []


def test_a_partial_episode_is_refused(tmp_path):
  env, episodes = _rollouts(num_episodes=1, length=10)
  timesteps, actions = episodes[0]
  episode_writer = _writer(tmp_path / 'episodes', env)
  with pytest.raises(ValueError, match='one action fewer'):
    episode_writer.add(timesteps[:5], actions[:4])
  episode_writer.add(timesteps, actions)
  assert episode_writer.close()['num_episodes'] == 1
