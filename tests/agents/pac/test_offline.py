"""agents.pac.offline: uniform batches, training to an exact step count, and
the critic-vs-returns check, against hand-computed values."""

import types as pytypes

from acme import types
import jax.numpy as jnp
import numpy as np
import pytest

from agents.pac import config as config_lib
from agents.pac import networks as networks_lib
from agents.pac import offline


def _transitions(size: int) -> types.Transition:
  observation = {'position': np.arange(size * 3, dtype=np.float32).reshape(
      size, 3), 'velocity': np.zeros((size, 2), np.float32)}
  return types.Transition(
      observation=observation, action=np.zeros((size, 2), np.float32),
      reward=np.arange(size, dtype=np.float32),
      discount=np.ones(size, np.float32), next_observation=observation)


def test_uniform_batches_slice_every_field_alike_and_repeat_by_seed():
  transitions = _transitions(10)
  first = next(offline.uniform_batches(transitions, 4, seed=3))
  again = next(offline.uniform_batches(transitions, 4, seed=3))
  assert first.reward.shape == (4,)
  assert first.observation['position'].shape == (4, 3)
  # Row i of every field is transition reward[i] of the data.
  np.testing.assert_array_equal(first.observation['position'][:, 0],
                                3 * first.reward)
  np.testing.assert_array_equal(first.reward, again.reward)


def test_discounted_returns_by_hand():
  np.testing.assert_allclose(
      offline.discounted_returns(np.array([1., 0., 2.]), 0.5),
      [1. + 0.25 * 2., 0.5 * 2., 2.])


def test_train_stops_at_exactly_the_requested_step(proprio_spec):
  config = config_lib.PACConfig(
      network=config_lib.NetworkConfig(
          embed_dim=8, num_latents=2, num_self_attention_blocks=0,
          num_heads=1, critic_hidden=(8,)),
      num_bins=5, num_atoms=11, num_sampled_actions=2, batch_size=4,
      learner_steps_per_call=8)
  networks = networks_lib.make_networks(proprio_spec, config)
  learner = offline.make_learner(networks, config, _transitions(16))
  offline.train(learner, 12)  # One call of 8, then one of 4.
  assert learner.num_steps == 12
  offline.train(learner, 12)
  assert learner.num_steps == 12


def _value_critic():
  """Stands in for PACNetworks: Q(s, a) = s['x'] exactly (atoms 0 and 1)."""
  return pytypes.SimpleNamespace(
      atoms=jnp.array([0., 1.]),
      encode=lambda params, obs: obs['x'][:, None, None],  # [B, 1, 1]
      action_mask=lambda obs: None,
      critic_logits=lambda params, latents, actions, mask: jnp.log(
          jnp.stack([1. - latents[:, 0, 0], latents[:, 0, 0]],
                    axis=-1))[:, None, :])  # [B, 1, 2]


def _episode(values):
  """Four steps with reward 1 (G = 4, 3, 2, 1 undiscounted); the state
  values of the first three are `values`."""
  return {'steps': {
      'observation': {'x': np.asarray(values + [0.9, 0.5], np.float32)},
      'action': np.zeros((5, 1), np.float32),  # The last row holds none.
      'reward': np.asarray([1., 1., 1., 1., 0.], np.float32)}}


@pytest.mark.parametrize('values, rho', [([0.1, 0.2, 0.3], -1.0),
                                         ([0.3, 0.2, 0.1], 1.0)])
def test_critic_vs_returns_ranks_and_bias_by_hand(values, rho):
  result = offline.critic_vs_returns(_value_critic(), None, [_episode(values)],
                                     discount=1.0, margin=1)
  assert result['pairs'] == 3  # The last step is left out.
  assert result['rank_correlation'] == pytest.approx(rho)
  # Q = values against G = 4, 3, 2.
  assert result['bias'] == pytest.approx(np.mean(values) - 3.0, abs=1e-6)


def _action_critic():
  """Stands in for PACNetworks: Q(s, a) = (a + 1) / 2 for actions in
  [-1, 1], whatever the state (atoms 0 and 1)."""
  def critic_logits(params, latents, actions, mask):
    p = (actions[..., 0] + 1.) / 2.  # [B, N]
    return jnp.log(jnp.stack([1. - p, p], axis=-1) + 1e-12)  # [B, N, 2]
  return pytypes.SimpleNamespace(
      atoms=jnp.array([0., 1.]), critic_logits=critic_logits,
      encode=lambda params, obs: obs['x'][:, None, None],
      action_mask=lambda obs: None)


@pytest.mark.parametrize('data_action, above', [(1.0, 1.0), (-1.0, 0.0)])
def test_critic_action_gap_by_hand(data_action, above):
  episode = _episode([0.1, 0.2, 0.3])
  episode['steps']['action'] = np.full((5, 1), data_action, np.float32)
  result = offline.critic_action_gap(
      _action_critic(), None, [episode], minimum=np.array([-0.99]),
      maximum=np.array([0.99]), num_random=64, seed=1)
  assert result['states'] == 4  # Every step with an action.
  # The best action beats every random one; the worst none.
  assert result['data_above_random'] == above
  # Uniform a in [-0.99, 0.99] has std 1.98 / sqrt(12) = 0.572; Q = (a + 1)
  # / 2 half that: 0.286 (64 draws a state: within 0.03).
  assert result['action_spread'] == pytest.approx(0.286, abs=0.03)
  # The state does not enter Q: mean Q is ~0.5 in every state.
  assert result['state_spread'] < 0.1
