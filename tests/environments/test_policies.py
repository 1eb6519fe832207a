"""Tests for behaviour policies: returns by quality level, exact log-probs."""

import math

from dm_env import specs
import numpy as np
import pytest

from environments import cartpole_controller
from environments import errors
from environments import policies
from environments import suite


def _mean_return(task, name, seeds):
  returns = []
  for seed in seeds:
    env = suite.make_environment(task, seed)
    policy = policies.make_policy(name, task, env.action_spec())
    rng = np.random.default_rng(seed)
    timestep, total = env.reset(), 0.0
    while not timestep.last():
      action, _ = policy(timestep, rng)
      timestep = env.step(action)
      total += float(timestep.reward)
    returns.append(total)
  return float(np.mean(returns))


def test_quality_levels_are_ordered_on_cartpole_swingup():
  expert = _mean_return('cartpole_swingup', 'expert', seeds=(0, 1))
  medium = _mean_return('cartpole_swingup', 'medium', seeds=(0, 1))
  random = _mean_return('cartpole_swingup', 'random', seeds=(0, 1))
  assert expert >= 700, expert  # Measured ~855.
  assert 150 < medium < expert - 150, (medium, expert)  # Measured ~440.
  assert random < 100, random  # Measured ~25.
  assert medium > random + 100, (medium, random)


def test_expert_balances_cartpole_balance():
  assert _mean_return('cartpole_balance', 'expert', seeds=(0,)) >= 900


def test_pole_summary_by_hand():
  observations = [{'position': [0.0, 1.0, 0.0], 'velocity': [0.0, 2.0]},
                  {'position': [0.0, 0.5, 0.87], 'velocity': [0.0, -4.0]}]
  assert cartpole_controller.pole_summary(observations) == {
      'upright_fraction': 0.5, 'mean_abs_angular_velocity': 3.0}


def test_pole_summary_tells_the_balancing_expert_from_random_actions():
  summaries = {}
  for name in ('expert', 'random'):
    env = suite.make_environment('cartpole_swingup', 0)
    policy = policies.make_policy(name, 'cartpole_swingup', env.action_spec())
    rng, seen, timestep = np.random.default_rng(0), [], env.reset()
    while not timestep.last():
      seen.append(timestep.observation)
      timestep = env.step(policy(timestep, rng)[0])
    summaries[name] = cartpole_controller.pole_summary(seen)
  # The expert swings up within ~200 steps and holds the pole still.
  assert summaries['expert']['upright_fraction'] > 0.7, summaries
  assert summaries['expert']['mean_abs_angular_velocity'] < 2.0, summaries
  assert summaries['random']['upright_fraction'] < 0.05, summaries


def test_random_policy_is_uniform_with_box_density():
  spec = specs.BoundedArray((3,), np.float32, -1.0, 1.0)
  policy = policies.make_policy('random', 'walker_walk', spec)
  rng = np.random.default_rng(0)
  actions = []
  for _ in range(2000):
    action, log_prob = policy({}, rng)
    assert action.dtype == np.float32 and action.shape == (3,)
    assert log_prob == pytest.approx(3 * math.log(0.5))
    actions.append(action)
  actions = np.stack(actions)
  assert actions.min() >= -1 and actions.max() <= 1
  np.testing.assert_allclose(actions.mean(0), 0.0, atol=0.05)
  np.testing.assert_allclose(actions.var(0), 1 / 3, atol=0.03)  # U[-1, 1].


@pytest.mark.parametrize('mean,sigma,random_prob', [(0.9, 0.5, 0.3),
                                                   (1.0, 0.1, 0.0),
                                                   (-0.2, 1.0, 0.5)])
def test_noisy_policy_log_prob_is_a_normalised_density(mean, sigma,
                                                       random_prob):
  policy = policies.NoisyControllerPolicy(
      'test', lambda obs: np.array([mean], np.float32), sigma, random_prob,
      'constant')
  rng = np.random.default_rng(0)
  samples = [policy({}, rng) for _ in range(20000)]
  actions = np.array([a[0] for a, _ in samples], np.float64)
  density = np.exp([lp for _, lp in samples])
  assert actions.min() >= -1 and actions.max() <= 1
  order = np.argsort(actions)
  # log_prob is a function of the action: integrate it over the samples' span.
  integral = np.trapz(density[order], actions[order])
  assert integral == pytest.approx(1.0, abs=0.02)
  # And it matches the empirical frequency of a few bins.
  for low, high in ((-1.0, -0.5), (0.0, 0.5), (0.8, 1.0)):
    inside = (actions >= low) & (actions < high)
    if inside.sum() < 500:
      continue
    predicted = np.trapz(density[order][inside[order]],
                         actions[order][inside[order]])
    assert predicted == pytest.approx(inside.mean(), abs=0.02)


def test_policy_accepts_timestep_or_observation_and_is_seeded():
  env = suite.make_environment('cartpole_swingup', seed=0)
  policy = policies.make_policy('medium', 'cartpole_swingup', env.action_spec())
  timestep = env.reset()
  a1, lp1 = policy(timestep, np.random.default_rng(4))
  a2, lp2 = policy(timestep.observation, np.random.default_rng(4))
  assert a1.dtype == np.float32 and a1.shape == (1,)
  np.testing.assert_array_equal(a1, a2)
  assert lp1 == lp2


def test_policy_availability_and_errors():
  assert policies.list_policies('cartpole_swingup') == [
      'expert', 'medium', 'random', 'mixed', 'medium_replay', 'medium_expert']
  assert policies.list_policies('acrobot_swingup') == ['random']
  spec = suite.make_environment('acrobot_swingup', 0).action_spec()
  with pytest.raises(errors.UnknownPolicyError) as info:
    policies.make_policy('expert', 'acrobot_swingup', spec)
  assert "'acrobot_swingup'" in str(info.value) and 'random' in str(info.value)
  assert 'cartpole_swingup' in str(info.value)  # Where controllers exist.
  with pytest.raises(errors.UnknownPolicyError, match='bogus'):
    policies.make_policy('bogus', 'cartpole_swingup', spec)
  with pytest.raises(errors.UnknownPolicyError, match='mixed'):
    policies.behaviour_policies('mixed', 'acrobot_swingup', spec)
  with pytest.raises(errors.UnknownTaskError):
    policies.list_policies('walker_wlak')


def test_mixed_cycles_expert_medium_random():
  spec = suite.make_environment('cartpole_swingup', 0).action_spec()
  names = [p.name for p in
           policies.behaviour_policies('mixed', 'cartpole_swingup', spec)]
  assert names == ['expert', 'medium', 'random']
  with pytest.raises(errors.UnknownPolicyError, match='composition'):
    policies.make_policy('mixed', 'cartpole_swingup', spec)
