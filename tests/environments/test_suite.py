"""Tests for environments.suite and its wrappers: names, specs, scaling."""

import subprocess
import sys

from acme import specs
import numpy as np
import pytest

import environments
from environments import errors
from environments import suite

# Tasks with 1-D, scalar and 2-D observations, and unit and non-unit actions.
_TASKS = ('cartpole_swingup', 'walker_walk', 'ball_in_cup_catch',
          'point_mass_easy', 'manipulator_bring_ball')


def test_task_names_cover_suite_and_parse_underscored_domains():
  tasks = suite.list_tasks()
  for name in ('cartpole_swingup', 'cartpole_balance', 'walker_walk',
               'cheetah_run', 'hopper_hop', 'reacher_easy', 'finger_spin',
               'pendulum_swingup', 'humanoid_stand', 'ball_in_cup_catch',
               'point_mass_easy', 'humanoid_CMU_stand'):
    assert name in tasks
  assert tasks == sorted(tasks)
  assert suite.parse_task('ball_in_cup_catch') == ('ball_in_cup', 'catch')
  assert suite.parse_task('point_mass_hard') == ('point_mass', 'hard')
  assert suite.parse_task('humanoid_CMU_run') == ('humanoid_CMU', 'run')
  assert suite.parse_task('cartpole_swingup_sparse') == ('cartpole',
                                                         'swingup_sparse')
  assert not any(t.startswith('lqr_') for t in tasks)


def test_unknown_task_error_names_task_and_close_matches():
  with pytest.raises(errors.UnknownTaskError) as info:
    suite.make_environment('cartpole_swingupp', seed=0)
  message = str(info.value)
  assert isinstance(info.value, ValueError)
  assert "'cartpole_swingupp'" in message
  assert 'cartpole_swingup,' in message  # Listed as a close match.
  assert 'list_tasks()' in message and '--list-tasks' in message


def test_excluded_domain_says_why():
  with pytest.raises(errors.UnknownTaskError, match='unbounded'):
    suite.make_environment('lqr_lqr_2_1', seed=0)


@pytest.mark.parametrize('task', _TASKS)
def test_specs_and_timesteps_are_float32_with_canonical_actions(task):
  from dm_control import suite as dm_suite  # pylint: disable=g-import-not-at-top
  env = suite.make_environment(task, seed=0)
  raw = dm_suite.load(*suite.parse_task(task), task_kwargs={'random': 0})
  spec = suite.environment_spec(env)

  assert isinstance(spec, specs.EnvironmentSpec)
  assert list(spec.observations) == list(raw.observation_spec())  # Same names.
  for name, array_spec in spec.observations.items():
    assert array_spec.dtype == np.float32
    raw_shape = raw.observation_spec()[name].shape
    assert array_spec.shape == (raw_shape or (1,))
  assert spec.actions.dtype == np.float32
  assert spec.actions.shape == raw.action_spec().shape
  np.testing.assert_array_equal(spec.actions.minimum, -1.0)
  np.testing.assert_array_equal(spec.actions.maximum, 1.0)
  assert spec.rewards.dtype == np.float32 and spec.rewards.shape == ()
  assert spec.discounts.dtype == np.float32 and spec.discounts.shape == ()

  first = env.reset()
  assert first.first() and first.reward is None and first.discount is None
  for name, value in first.observation.items():
    spec.observations[name].validate(value)
    assert value.dtype == np.float32
  rng = np.random.default_rng(0)
  timestep = env.step(rng.uniform(-1, 1, spec.actions.shape).astype(np.float32))
  assert isinstance(timestep.reward, np.float32)
  assert isinstance(timestep.discount, np.float32)
  for name, value in timestep.observation.items():
    spec.observations[name].validate(value)


def test_scalar_observations_become_shape_1():
  env = suite.make_environment('walker_walk', seed=0)
  assert env.observation_spec()['height'].shape == (1,)
  assert env.reset().observation['height'].shape == (1,)


def test_actions_map_affinely_onto_physical_range():
  # quadruped's actuators have non-unit, asymmetric ranges, e.g. [-1, 1.1].
  env = suite.make_environment('quadruped_walk', seed=0)
  inner = env.environment.environment.action_spec()  # dm_control's own spec.
  assert not np.allclose(inner.maximum, 1.0)  # Otherwise this test is vacuous.
  env.reset()
  shape = env.action_spec().shape
  env.step(np.ones(shape, np.float32))
  np.testing.assert_allclose(env.physics.data.ctrl, inner.maximum)
  env.step(-np.ones(shape, np.float32))
  np.testing.assert_allclose(env.physics.data.ctrl, inner.minimum)
  env.step(np.zeros(shape, np.float32))
  np.testing.assert_allclose(env.physics.data.ctrl,
                             (inner.minimum + inner.maximum) / 2)
  env.step(np.full(shape, 5.0, np.float32))  # Out of range: clipped.
  np.testing.assert_allclose(env.physics.data.ctrl, inner.maximum)


def test_wrong_action_shape_is_a_clear_error():
  env = suite.make_environment('cartpole_swingup', seed=0)
  env.reset()
  with pytest.raises(ValueError, match=r'shape \(1,\)'):
    env.step(np.zeros(3, np.float32))


def test_seed_determines_initial_state():
  a = suite.make_environment('cartpole_swingup', seed=1).reset().observation
  b = suite.make_environment('cartpole_swingup', seed=1).reset().observation
  c = suite.make_environment('cartpole_swingup', seed=2).reset().observation
  np.testing.assert_array_equal(a['position'], b['position'])
  assert not np.array_equal(a['position'], c['position'])


def test_package_import_is_light():
  code = ('import sys, environments; '
          'heavy = [m for m in ("dm_control", "mujoco", "tensorflow", "jax", '
          '"envlogger") if m in sys.modules]; '
          'assert not heavy, heavy; '
          'assert callable(environments.make_environment)')
  subprocess.run([sys.executable, '-c', code], check=True)


def test_public_api_is_exported():
  for name in ('make_environment', 'MultiTaskEnvironment', 'load_dataset',
               'list_tasks', 'environment_spec', 'DatasetError',
               'UnknownTaskError', 'DatasetSpecError', 'write_dataset'):
    assert getattr(environments, name) is not None
  with pytest.raises(AttributeError):
    environments.does_not_exist  # pylint: disable=pointless-statement


def test_a_pixel_task_adds_rendered_uint8_frames():
  env = suite.make_environment('cartpole_swingup_pixels', seed=0)
  spec = env.observation_spec()
  assert spec['pixels'].shape == (64, 64, 3)
  assert spec['pixels'].dtype == np.uint8
  assert spec['position'].dtype == np.float32
  first = env.reset().observation['pixels']
  moved = env.step(np.ones(1, np.float32)).observation['pixels']
  assert first.dtype == np.uint8 and first.shape == (64, 64, 3)
  assert not np.array_equal(first, moved)  # Rendered at every step.
  assert suite.parse_task('cartpole_swingup_pixels') == ('cartpole', 'swingup')
  with pytest.raises(errors.UnknownTaskError):
    suite.make_environment('cartpole_swingupp_pixels', seed=0)
