"""Tests for MultiTaskEnvironment: fixed padded spec, masks, task ids, modes."""

import numpy as np
import pytest

from environments import errors
from environments import multitask

# Observation sizes 5, 24, 8 and action sizes 1, 6, 2.
_TASKS = ('cartpole_swingup', 'walker_walk', 'ball_in_cup_catch')
_PROPRIO = {'cartpole_swingup': 5, 'walker_walk': 24, 'ball_in_cup_catch': 8}
_ACTIONS = {'cartpole_swingup': 1, 'walker_walk': 6, 'ball_in_cup_catch': 2}


def _check_observation(env, observation, task):
  for name, spec in env.observation_spec().items():
    spec.validate(observation[name])  # Shape and dtype, every step.
  p, a = _PROPRIO[task], _ACTIONS[task]
  np.testing.assert_array_equal(observation['proprio_mask'],
                                np.arange(24) < p)
  np.testing.assert_array_equal(observation['action_mask'], np.arange(6) < a)
  np.testing.assert_array_equal(observation['proprio'][p:], 0.0)
  assert observation['task_id'] == _TASKS.index(task)
  assert observation['task_id'].dtype == np.int32


def test_spec_is_padded_to_the_largest_task():
  env = multitask.MultiTaskEnvironment(_TASKS, seed=0)
  spec = env.observation_spec()
  assert set(spec) == {'proprio', 'proprio_mask', 'action_mask', 'task_id'}
  assert spec['proprio'].shape == (24,) and spec['proprio'].dtype == np.float32
  assert spec['proprio_mask'].shape == (24,)
  assert spec['action_mask'].shape == (6,)
  assert spec['task_id'].shape == () and spec['task_id'].dtype == np.int32
  assert spec['task_id'].num_values == 3
  assert env.action_spec().shape == (6,)
  assert env.action_spec().dtype == np.float32
  np.testing.assert_array_equal(env.action_spec().minimum, -1.0)
  np.testing.assert_array_equal(env.action_spec().maximum, 1.0)
  assert env.reward_spec().dtype == np.float32
  assert env.discount_spec().dtype == np.float32


def test_cycle_mode_switches_task_on_every_reset():
  env = multitask.MultiTaskEnvironment(_TASKS, seed=0, mode='cycle')
  assert env.tasks == list(_TASKS) and env.task_id == -1
  rng = np.random.default_rng(0)
  for expected in _TASKS + _TASKS[:1]:
    timestep = env.reset()
    assert env.current_task == expected
    assert env.task_id == _TASKS.index(expected)
    _check_observation(env, timestep.observation, expected)
    timestep = env.step(rng.uniform(-1, 1, 6).astype(np.float32))
    _check_observation(env, timestep.observation, expected)
    assert timestep.reward.dtype == np.float32
    assert timestep.discount.dtype == np.float32


def test_visit_plays_some_tasks_in_its_order_with_the_whole_spec():
  env = multitask.MultiTaskEnvironment(
      _TASKS, seed=0, visit=['ball_in_cup_catch', 'cartpole_swingup'])
  played = []
  for _ in range(4):
    timestep = env.reset()
    played.append(env.current_task)
    _check_observation(env, timestep.observation, env.current_task)
  assert played == ['ball_in_cup_catch', 'cartpole_swingup'] * 2
  assert env.observation_spec()['task_id'].num_values == 3
  with pytest.raises(ValueError, match='subset'):
    multitask.MultiTaskEnvironment(_TASKS, seed=0, visit=['finger_spin'])


def test_proprio_is_flattened_in_sorted_key_order():
  env = multitask.MultiTaskEnvironment(['cartpole_swingup', 'walker_walk'],
                                       seed=0)
  # cartpole: sorted keys (position, velocity); position = (x, cos, sin).
  proprio = env.reset().observation['proprio']
  np.testing.assert_allclose(proprio[1]**2 + proprio[2]**2, 1.0, rtol=1e-5)
  # walker: (height [1], orientations [14] = 7 (cos, sin) pairs, velocity).
  proprio = env.reset().observation['proprio']
  pairs = proprio[1:15].reshape(7, 2)
  np.testing.assert_allclose(np.sum(pairs**2, axis=1), 1.0, rtol=1e-5)


def test_padded_action_dims_are_ignored():
  runs = []
  for padding in (0.0, 0.9):
    env = multitask.MultiTaskEnvironment(['cartpole_swingup', 'walker_walk'],
                                         seed=3)
    env.reset()  # cartpole: one real action dim of the 6.
    action = np.full(6, padding, np.float32)
    action[0] = 0.5
    runs.append([env.step(action).observation['proprio'] for _ in range(5)])
  np.testing.assert_array_equal(np.stack(runs[0]), np.stack(runs[1]))


def test_sample_mode_is_seeded_and_visits_every_task():
  def ids(seed):
    env = multitask.MultiTaskEnvironment(_TASKS, seed=seed, mode='sample')
    return [int(env.reset().observation['task_id']) for _ in range(30)]

  first = ids(5)
  assert first == ids(5)
  assert first != ids(6)
  assert set(first) == {0, 1, 2}


def test_episode_end_then_step_resets_into_next_task():
  env = multitask.MultiTaskEnvironment(['cartpole_balance', 'reacher_easy'],
                                       seed=0)
  timestep = env.step(np.zeros(2, np.float32))  # Before any reset: resets.
  assert timestep.first() and env.current_task == 'cartpole_balance'
  steps = 0
  while not timestep.last():
    timestep = env.step(np.zeros(2, np.float32))
    steps += 1
  assert steps == 1000
  timestep = env.step(np.zeros(2, np.float32))
  assert timestep.first() and env.current_task == 'reacher_easy'


def test_bad_arguments():
  with pytest.raises(ValueError, match='at least one'):
    multitask.MultiTaskEnvironment([], seed=0)
  with pytest.raises(ValueError, match='distinct'):
    multitask.MultiTaskEnvironment(['walker_walk', 'walker_walk'], seed=0)
  with pytest.raises(ValueError, match='mode'):
    multitask.MultiTaskEnvironment(['walker_walk'], seed=0, mode='random')
  with pytest.raises(errors.UnknownTaskError, match='walker_wlak'):
    multitask.MultiTaskEnvironment(['walker_wlak'], seed=0)
  env = multitask.MultiTaskEnvironment(['walker_walk'], seed=0)
  with pytest.raises(RuntimeError, match='reset'):
    env.current_task  # pylint: disable=pointless-statement
  env.reset()
  with pytest.raises(ValueError, match=r'\(6,\)'):
    env.step(np.zeros(2, np.float32))
