"""One batch of two tasks with 1 and 6 action dims: the masked losses.

Real MuJoCo observations of cartpole_swingup (5 scalars, 1 action) and
walker_walk (24 scalars, 6 actions), padded to one spec by
`environments.MultiTaskEnvironment.pad_transitions`, as a multi-task run's
data will be. A cartpole row must be scored on its one real action dim: what
the padding holds cannot change any loss, and its policy log-probability is
that of a 1-dim policy.
"""

from acme import types
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import environments
from agents.pac import config as config_lib
from agents.pac import losses
from agents.pac import networks as networks_lib

TASKS = ('cartpole_swingup', 'walker_walk')


def _task_transitions(task: str, steps: int, seed: int) -> types.Transition:
  """`steps` real one-step transitions of `task` under random actions."""
  env = environments.make_environment(task, seed=seed)
  rng = np.random.default_rng(seed)
  size = env.action_spec().shape[0]
  timestep = env.reset()
  rows = []
  for _ in range(steps):
    action = rng.uniform(-1, 1, size).astype(np.float32)
    following = env.step(action)
    rows.append(types.Transition(timestep.observation, action,
                                 np.float32(following.reward),
                                 np.float32(following.discount),
                                 following.observation, ()))
    timestep = following
  return jax.tree.map(lambda *xs: np.stack(xs), *rows)


def _batch():
  env = environments.MultiTaskEnvironment(list(TASKS), seed=0)
  parts = [env.pad_transitions(task, _task_transitions(task, 4, i))
           for i, task in enumerate(TASKS)]
  batch = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)  # [8, ...]
  return env, batch


def test_padded_batch_shapes_and_masks():
  env, batch = _batch()
  assert batch.action.shape == (8, 6)
  assert batch.observation['proprio'].shape == (8, 24)
  np.testing.assert_array_equal(batch.observation['task_id'],
                                [0] * 4 + [1] * 4)
  np.testing.assert_array_equal(batch.observation['action_mask'][:4],
                                [[1, 0, 0, 0, 0, 0]] * 4)
  np.testing.assert_array_equal(batch.observation['proprio_mask'][:4].sum(1),
                                [5] * 4)
  np.testing.assert_array_equal(batch.action[:4, 1:], 0.0)
  assert env.observation_spec()['proprio'].shape == (24,)
  # Data of the wrong task for its name, or of no task here: named.
  with pytest.raises(ValueError, match='walker_walk has 6 action dims'):
    env.pad_transitions('walker_walk', _task_transitions(TASKS[0], 2, 0))
  with pytest.raises(ValueError, match='not one of'):
    env.pad_transitions('finger_spin', _task_transitions(TASKS[0], 2, 0))


def test_mixed_action_sizes_give_correctly_masked_losses():
  env, batch = _batch()
  spec = environments.environment_spec(env)
  config = config_lib.PACConfig(
      network=config_lib.NetworkConfig(embed_dim=16, num_latents=4,
                                       num_self_attention_blocks=1,
                                       num_heads=2, critic_hidden=(16,)),
      num_bins=11, num_sampled_actions=4, v_min=0.0, v_max=10.0)
  networks = networks_lib.make_networks(spec, config)
  params = jax.jit(networks.init)(jax.random.PRNGKey(0))
  loss = jax.jit(lambda b: losses.pac_loss(
      params, params, b, jax.random.PRNGKey(1), networks=networks,
      config=config, alpha=jnp.float32(0.5)))
  total, metrics = loss(batch)
  assert np.isfinite(total)

  # Garbage in everything a cartpole row pads: its 5 unused action dims and
  # its 19 unused observation entries (both states). No loss moves.
  rng = np.random.default_rng(2)
  action = batch.action.copy()
  action[:4, 1:] = rng.uniform(-1, 1, (4, 5))
  def garbage(observation):
    padded = dict(observation)
    proprio = observation['proprio'].copy()
    proprio[:4, 5:] = rng.normal(size=(4, 19))
    padded['proprio'] = proprio
    return padded
  noisy = batch._replace(action=action,
                         observation=garbage(batch.observation),
                         next_observation=garbage(batch.next_observation))
  noisy_total, noisy_metrics = loss(noisy)
  np.testing.assert_allclose(noisy_total, total, rtol=1e-5)
  for name in ('loss/bc', 'loss/rl', 'loss/critic'):
    np.testing.assert_allclose(noisy_metrics[name], metrics[name], rtol=1e-5,
                               err_msg=name)

  # A cartpole row's log-probability is that of its one real dim.
  latents = networks.encode(params, batch.observation)
  logits = networks.policy_logits(params, latents,
                                  batch.observation)  # [8, 6, bins]
  mask = networks.action_mask(batch.observation)  # [8, 6]
  masked = networks_lib.log_prob(logits, batch.action, mask)  # [8]
  one_dim = networks_lib.log_prob(logits[:4, :1], batch.action[:4, :1], None)
  np.testing.assert_allclose(masked[:4], one_dim, rtol=1e-5)
  # ... while a walker row counts all six.
  assert not np.allclose(masked[4:], networks_lib.log_prob(
      logits[4:, :1], batch.action[4:, :1], None))
