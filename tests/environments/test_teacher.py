"""Learned teachers: the NumPy policy against Acme's SAC network, the files,
their use as behaviour policies, and a tiny real training campaign."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import environments
from environments import policies
from environments import suite
from environments import teacher

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _sac_policy(task: str, seed: int = 1):
  """Acme SAC's policy network for `task`, initialised, and its params."""
  import agents  # pylint: disable=g-import-not-at-top,unused-import
  from acme import specs  # pylint: disable=g-import-not-at-top
  from acme import wrappers  # pylint: disable=g-import-not-at-top
  from acme.agents.jax import sac  # pylint: disable=g-import-not-at-top
  environment = wrappers.ConcatObservationWrapper(
      suite.make_environment(task, seed=0))
  network = sac.make_networks(specs.make_environment_spec(environment))
  params = network.policy_network.init(jax.random.PRNGKey(seed))
  return environment, network, jax.tree_util.tree_map(np.asarray, params)


def test_flatten_observation_is_acmes_concatenation():
  raw = suite.make_environment('walker_walk', seed=3)
  from acme import wrappers  # pylint: disable=g-import-not-at-top
  wrapped = wrappers.ConcatObservationWrapper(
      suite.make_environment('walker_walk', seed=3))
  a, b = raw.reset(), wrapped.reset()
  for _ in range(3):
    np.testing.assert_array_equal(teacher.flatten_observation(a.observation),
                                  b.observation)
    action = np.full(raw.action_spec().shape, 0.3, np.float32)
    a, b = raw.step(action), wrapped.step(action)
  # Sorted keys: height (a scalar, 1 entry) comes first, velocity last.
  observation = {'velocity': np.array([5., 6.]), 'height': np.float32(1.),
                 'orientations': np.array([2., 3., 4.])}
  np.testing.assert_array_equal(teacher.flatten_observation(observation),
                                [1., 2., 3., 4., 5., 6.])


def test_the_numpy_policy_is_sacs(tmp_path):
  environment, network, params = _sac_policy('cartpole_swingup')
  file = str(tmp_path / 'p.npz')
  teacher.save(file, params, {'step': 7})
  policy = teacher.TeacherPolicy(file, 'expert')
  assert policy.metadata == {'step': 7}
  raw = suite.make_environment('cartpole_swingup', seed=0)
  timestep, flat = raw.reset(), environment.reset()
  rng = np.random.default_rng(0)
  for _ in range(5):
    distribution = network.policy_network.apply(params, flat.observation)
    np.testing.assert_allclose(policy.mode(timestep.observation),
                               np.asarray(distribution.mode()), atol=1e-6)
    action, log_prob = policy(timestep, rng)
    assert action.shape == (1,) and action.dtype == np.float32
    np.testing.assert_allclose(log_prob, float(distribution.log_prob(action)),
                               rtol=1e-4)
    timestep, flat = raw.step(action), environment.step(action)


def test_choose_takes_the_last_as_expert_and_a_third_as_medium():
  evals = [{'step': 1, 'return': 10.}, {'step': 2, 'return': 280.},
           {'step': 3, 'return': 310.}, {'step': 4, 'return': 500.},
           {'step': 5, 'return': 900.}]
  chosen = teacher.choose(evals)
  assert chosen['expert']['step'] == 5
  assert chosen['medium']['step'] == 3  # |310 - 300| < |280 - 300|.
  tie = [{'step': 1, 'return': 90.}, {'step': 2, 'return': 110.},
         {'step': 3, 'return': 300.}]
  assert teacher.choose(tie)['medium']['step'] == 1


def test_committed_teachers_turn_into_behaviour_policies(tmp_path,
                                                         monkeypatch):
  task = 'finger_spin'
  monkeypatch.setattr(teacher, 'DIRECTORY', str(tmp_path))
  assert policies.list_policies(task) == ['random']
  for level, seed in (('medium', 1), ('expert', 2)):
    _, _, params = _sac_policy(task, seed)
    teacher.save(teacher.path(task, level), params,
                 {'task': task, 'level': level, 'step': seed, 'return': 0.})
  assert policies.list_policies(task) == [
      'expert', 'medium', 'random', 'mixed', 'medium_replay', 'medium_expert']
  out = str(tmp_path / 'data')
  metadata = environments.write_dataset(out, task=task, policy='mixed',
                                        num_episodes=3, seed=0)
  again = environments.write_dataset(str(tmp_path / 'again'), task=task,
                                     policy='mixed', num_episodes=3, seed=0)
  assert metadata['num_episodes'] == 3
  first, second = (environments.load_dataset(path) for path in
                   (out, str(tmp_path / 'again')))
  for a, b in zip(first.episodes(), second.episodes()):
    np.testing.assert_array_equal(a['steps']['action'], b['steps']['action'])
  assert again['num_episodes'] == 3
  text = json.dumps(metadata)
  assert 'SAC teacher finger_spin_expert.npz' in text, text


def _train(tmp_path, *extra):
  return subprocess.run(
      [sys.executable, '-m', 'environments.train_teacher',
       '--tasks=cartpole_swingup', '--steps=1500', '--eval_every=500',
       '--min_replay_size=300', '--eval_episodes=1',
       f'--work_dir={tmp_path / "work"}', f'--out={tmp_path / "out"}', *extra],
      cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.integration
def test_a_tiny_campaign_trains_keeps_and_skips(tmp_path):
  done = _train(tmp_path)
  assert done.returncode == 0, done.stderr
  out = tmp_path / 'out'
  record = json.loads((out / 'teachers.json').read_text())['cartpole_swingup']
  evals = [json.loads(line) for line in
           (tmp_path / 'work' / 'cartpole_swingup' /
            'evals.jsonl').read_text().splitlines()]
  # A snapshot after each 1000-step episode that crossed --eval_every, and
  # one at the end.
  assert [e['step'] for e in evals] == [1000, 2000]
  assert record['expert'] == {'step': evals[-1]['step'],
                              'return': evals[-1]['return']}
  assert record['medium'] == {
      key: teacher.choose(evals)['medium'][key]
      for key in ('step', 'return')}
  assert record['command'].startswith('python -m environments.train_teacher')
  expert = teacher.TeacherPolicy(str(out / 'cartpole_swingup_expert.npz'),
                                 'expert')
  assert expert.metadata['step'] == evals[-1]['step']
  # The saved expert scores what the campaign measured.
  assert teacher.evaluate(expert, 'cartpole_swingup', 1, 1) == (
      pytest.approx(evals[-1]['return'], abs=0.1))
  rerun = _train(tmp_path)
  assert rerun.returncode == 0 and 'done already' in rerun.stdout


def test_bad_campaign_flags_exit_2(tmp_path):
  for extra, message in ((['--tasks=cartpole_nope'], 'cartpole_nope'),
                         (['--eval_every=0'], '--eval_every=0')):
    done = _train(tmp_path, *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.strip().splitlines()[-1]
