"""PAC policies ('mode', 'sample', 'q_filter') and the Acme actor.

Each policy is checked against an independent recomputation from the network's
pure functions with the same parameters and key, on random (non-trivial)
parameters; the actor test acts in the real cartpole_swingup environment.
"""

import dataclasses

from acme import specs
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import environments
from agents.pac import acting
from agents.pac import builder as builder_lib
from agents.pac import config as config_lib
from agents.pac import learning
from agents.pac import networks as networks_lib

_TINY_NETWORK = config_lib.NetworkConfig(
    embed_dim=32, num_latents=4, num_self_attention_blocks=1, num_heads=2,
    mlp_multiplier=2, critic_hidden=(32,))
_CONFIG = config_lib.PACConfig(
    network=_TINY_NETWORK, num_bins=11, num_atoms=21, v_min=0.0, v_max=10.0,
    num_q_filter_samples=8)
_SPEC = specs.EnvironmentSpec(
    observations={'position': specs.Array((3,), np.float32),
                  'velocity': specs.Array((2,), np.float32)},
    actions=specs.BoundedArray((2,), np.float32, -1.0, 1.0),
    rewards=specs.Array((), np.float32),
    discounts=specs.BoundedArray((), np.float32, 0.0, 1.0))
# Padded multi-task layout: 3 action slots, the last one unused below.
_MASKED_SPEC = specs.EnvironmentSpec(
    observations={'proprio': specs.Array((4,), np.float32),
                  'action_mask': specs.Array((3,), np.float32)},
    actions=specs.BoundedArray((3,), np.float32, -1.0, 1.0),
    rewards=specs.Array((), np.float32),
    discounts=specs.BoundedArray((), np.float32, 0.0, 1.0))


def _observation(batch: int, seed: int):
  rng = np.random.default_rng(seed)
  return {'position': jnp.asarray(rng.normal(size=(batch, 3)), jnp.float32),
          'velocity': jnp.asarray(rng.normal(size=(batch, 2)), jnp.float32)}


@pytest.fixture(scope='module')
def setup(build):
  """(jitted networks, random params with non-zero policy/critic heads)."""
  return build(_SPEC, _CONFIG, 0)


@pytest.fixture(scope='module')
def policies(setup):
  """(config, mode) -> jitted policy, cached."""
  networks, _ = setup
  cache = {}

  def get(config, mode):
    if (config, mode) not in cache:
      cache[config, mode] = jax.jit(acting.make_policy(networks, config, mode))
    return cache[config, mode]

  return get


def _logits(networks, params, observation):
  latents = networks.encode(params, observation)
  return latents, networks.policy_logits(params, latents, observation)


def test_mode_is_deterministic_argmax_bin_center(setup, policies):
  networks, params = setup
  observation = _observation(64, seed=1)
  policy = policies(_CONFIG, 'mode')
  actions = policy(params, jax.random.PRNGKey(0), observation)
  again = policy(params, jax.random.PRNGKey(1), observation)
  np.testing.assert_array_equal(actions, again)  # The key is unused.
  _, logits = _logits(networks, params, observation)
  expected = networks.bin_centers[np.argmax(np.asarray(logits), axis=-1)]
  np.testing.assert_array_equal(actions, expected)
  assert actions.shape == (64, 2) and actions.dtype == jnp.float32
  # Random params give state-dependent modes: not one constant action.
  assert len(np.unique(np.asarray(actions), axis=0)) > 1


def test_sample_matches_network_sample_with_same_key(setup, policies):
  networks, params = setup
  observation = _observation(64, seed=2)
  key = jax.random.PRNGKey(3)
  actions = policies(_CONFIG, 'sample')(params, key, observation)
  _, logits = _logits(networks, params, observation)
  expected = networks_lib.sample(key, logits, None, 1)[:, 0]
  np.testing.assert_array_equal(actions, expected)
  other = policies(_CONFIG, 'sample')(params, jax.random.PRNGKey(4),
                                      observation)
  assert not np.array_equal(actions, other)


@pytest.mark.parametrize('uniform_mix', [0.0, 0.5])
def test_sample_frequencies_follow_the_policy(setup, policies, uniform_mix):
  """Empirical bin frequencies of one state match pi (mixed with uniform)."""
  networks, params = setup
  config = dataclasses.replace(_CONFIG, uniform_mix=uniform_mix)
  num = 4000
  one = _observation(1, seed=5)
  observation = jax.tree.map(lambda x: jnp.repeat(x, num, axis=0), one)
  actions = np.asarray(policies(config, 'sample')(params, jax.random.PRNGKey(6),
                                                  observation))
  _, logits = _logits(networks, params, one)
  probs = np.asarray(jax.nn.softmax(logits[0]))  # [A, K]
  probs = (1 - uniform_mix) * probs + uniform_mix / config.num_bins
  bins = np.asarray(networks_lib.action_to_bin(actions, config.num_bins))
  for dim in range(2):
    freq = np.bincount(bins[:, dim], minlength=config.num_bins) / num
    # 4 standard errors of a frequency at p <= 0.5 with n = 4000: 0.032.
    np.testing.assert_allclose(freq, probs[dim], atol=0.032)
  # The policy is far from uniform, so the comparison has power.
  assert np.max(probs) > 2.0 / config.num_bins


@pytest.mark.parametrize('temperature', [0.5, 0.25])
def test_sampling_temperature_sharpens_the_policy(setup, temperature):
  """At temperature T the bin frequencies follow softmax(logits / T): the
  policy's likely bins gain, its unlikely ones all but vanish."""
  networks, params = setup
  policy = jax.jit(acting.make_policy(networks, _CONFIG, 'sample',
                                      temperature))
  num = 4000
  one = _observation(1, seed=5)
  observation = jax.tree.map(lambda x: jnp.repeat(x, num, axis=0), one)
  actions = np.asarray(policy(params, jax.random.PRNGKey(6), observation))
  _, logits = _logits(networks, params, one)
  probs = np.asarray(jax.nn.softmax(logits[0]))  # [A, K]
  sharp = np.asarray(jax.nn.softmax(logits[0] / temperature))  # [A, K]
  bins = np.asarray(networks_lib.action_to_bin(actions, _CONFIG.num_bins))
  for dim in range(2):
    freq = np.bincount(bins[:, dim], minlength=_CONFIG.num_bins) / num
    np.testing.assert_allclose(freq, sharp[dim], atol=0.032)
    # The sharpened distribution differs from pi where the test can see it.
    assert np.max(np.abs(sharp[dim] - probs[dim])) > 0.05
    assert freq[np.argmax(probs[dim])] > probs[dim].max() + 0.05


def test_builder_tempers_only_the_evaluation_policy(setup):
  """Actors explore at temperature 1; evaluators sample at eval_temperature."""
  networks, params = setup
  config = dataclasses.replace(_CONFIG, actor_policy='sample',
                               eval_policy='sample', eval_temperature=0.25)
  builder = builder_lib.PACBuilder(config)
  observation = _observation(256, seed=12)
  key = jax.random.PRNGKey(13)
  _, logits = _logits(networks, params, observation)
  acted = builder.make_policy(networks)(params, key, observation)
  evaluated = builder.make_policy(networks, evaluation=True)(params, key,
                                                             observation)
  np.testing.assert_array_equal(
      acted, networks_lib.sample(key, logits, None, 1)[:, 0])
  np.testing.assert_array_equal(
      evaluated, networks_lib.sample(key, logits / 0.25, None, 1)[:, 0])
  assert not np.array_equal(acted, evaluated)


@pytest.mark.parametrize('temperature', [0.0, -1.0])
def test_non_positive_temperature_raises_config_error(setup, temperature):
  networks, _ = setup
  with pytest.raises(config_lib.ConfigError, match='temperature'):
    acting.make_policy(networks, _CONFIG, 'sample', temperature)


def test_q_filter_returns_the_best_of_the_sampled_candidates(setup, policies):
  networks, params = setup
  observation = _observation(32, seed=7)
  key = jax.random.PRNGKey(8)
  actions = np.asarray(policies(_CONFIG, 'q_filter')(params, key,
                                                     observation))
  # Recompute independently: same key -> same K candidates; score each.
  latents, logits = _logits(networks, params, observation)
  candidates = networks_lib.sample(key, logits, None,
                                   _CONFIG.num_q_filter_samples)  # [B, K, A]
  q = np.asarray(networks_lib.q_values(
      networks.critic_logits(params, latents, candidates), networks.atoms))
  best = np.asarray(candidates)[np.arange(32), np.argmax(q, axis=-1)]
  np.testing.assert_array_equal(actions, best)
  # The chosen action is one candidate and has the highest Q among them; the
  # candidates' Q values do differ, so the choice is not arbitrary.
  assert np.all(np.ptp(q, axis=-1) > 0.0)
  chosen_q = np.asarray(networks_lib.q_values(
      networks.critic_logits(params, latents, jnp.asarray(actions)[:, None]),
      networks.atoms))[:, 0]
  np.testing.assert_allclose(chosen_q, q.max(axis=-1), rtol=1e-5)
  # Filtering changes the choice compared with taking the first candidate.
  assert not np.array_equal(actions, np.asarray(candidates)[:, 0])


@pytest.mark.parametrize('mode', config_lib.POLICY_MODES)
def test_masked_action_dims_are_zero(build, mode):
  networks, params = build(_MASKED_SPEC, _CONFIG, 0)
  rng = np.random.default_rng(9)
  observation = {
      'proprio': jnp.asarray(rng.normal(size=(16, 4)), jnp.float32),
      'action_mask': jnp.asarray(np.tile([1.0, 1.0, 0.0], (16, 1)),
                                 jnp.float32),
  }
  policy = jax.jit(acting.make_policy(networks, _CONFIG, mode))
  actions = np.asarray(policy(params, jax.random.PRNGKey(10), observation))
  assert actions.shape == (16, 3)
  np.testing.assert_array_equal(actions[:, 2], 0.0)
  assert np.any(actions[:, :2] != 0.0)


def test_unknown_mode_raises_config_error(setup):
  networks, _ = setup
  with pytest.raises(config_lib.ConfigError, match='greedy'):
    acting.make_policy(networks, _CONFIG, 'greedy')


@pytest.mark.parametrize('mode', config_lib.POLICY_MODES)
def test_generic_actor_acts_in_cartpole(make_params, mode):
  """PACBuilder.make_actor + a learner as variable source, in the real env."""
  env = environments.make_environment('cartpole_swingup', seed=0)
  spec = environments.environment_spec(env)
  networks = networks_lib.make_networks(spec, _CONFIG)
  learner = learning.PACLearner(networks, _CONFIG, jax.random.PRNGKey(0),
                                iterator=iter(()))
  # Random heads (a fresh init has zero heads: a constant 'mode' action), so
  # matching the learner's policy below is a real check.
  params = make_params(networks, 11)
  learner.restore(learner.save()._replace(params=params, target_params=params))
  builder = builder_lib.PACBuilder(_CONFIG)
  policy = acting.make_policy(networks, _CONFIG, mode)
  actor = builder.make_actor(jax.random.PRNGKey(1), policy, adder=None,
                             variable_source=learner)
  reference = jax.jit(acting.make_policy(networks, _CONFIG, 'mode'))

  timestep = env.reset()
  actor.observe_first(timestep)
  actions = []
  for _ in range(100):
    action = actor.select_action(timestep.observation)
    assert isinstance(action, np.ndarray)
    assert action.shape == spec.actions.shape == (1,)
    assert action.dtype == np.float32
    assert np.all(np.abs(action) <= 1.0)
    if mode == 'mode':  # The actor uses the learner's parameters.
      batched = jax.tree.map(lambda x: x[None], timestep.observation)
      np.testing.assert_array_equal(
          action, np.asarray(reference(params, None, batched))[0])
    timestep = env.step(action)
    actor.observe(action, timestep)
    actions.append(action)
  actor.update()
  assert np.isfinite(timestep.reward)
  # Random params act on the state (and stochastic modes sample): the
  # actions are not one constant.
  assert len(np.unique(np.concatenate(actions))) > 1
