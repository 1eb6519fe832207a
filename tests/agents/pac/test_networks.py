"""Perceiver-IO actor-critic: shapes, masks, modalities, presets, scoring."""

import dataclasses

from acme import specs
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.pac import config as config_lib
from agents.pac import networks as networks_lib


def test_shapes_and_constants(proprio_spec, small_config, build,
                              random_observation):
  networks, params = build(proprio_spec, small_config)
  net_cfg = small_config.network_config()
  obs = random_observation(proprio_spec, 4, 0)
  latents = networks.encode(params, obs)
  assert latents.shape == (4, net_cfg.num_latents, net_cfg.embed_dim)
  logits = networks.policy_logits(params, latents, obs)
  assert logits.shape == (4, 2, small_config.num_bins)
  actions = jnp.zeros((4, 7, 2))
  assert networks.critic_logits(params, latents, actions).shape == (
      4, 7, small_config.num_atoms)
  assert networks.action_dim == 2
  assert networks.num_bins == small_config.num_bins
  assert networks.num_atoms == small_config.num_atoms
  np.testing.assert_allclose(networks.bin_centers[np.array([0, 5, -1])],
                             [-1, 0, 1])
  np.testing.assert_allclose(networks.atoms[np.array([0, -1])], [-5, 5])
  assert networks.atoms.shape == (small_config.num_atoms,)
  np.testing.assert_array_equal(networks.action_mask(obs), np.ones((4, 2)))


def test_init_gives_uniform_heads_and_the_abstract_count(
    proprio_spec, small_config, random_observation, jit_networks):
  """Zero-initialised heads: uniform policy, Q = mean of the atoms.

  The only test that runs the real `init` (compiling it takes seconds, so the
  trunk here has no self-attention blocks).
  """
  config = dataclasses.replace(
      small_config, network=dataclasses.replace(
          small_config.network_config(), num_self_attention_blocks=0))
  networks = jit_networks(networks_lib.make_networks(proprio_spec, config))
  params = networks.init(jax.random.PRNGKey(0))
  abstract = jax.eval_shape(networks.init, jax.random.PRNGKey(0))
  assert networks_lib.count_params(params) == networks_lib.count_params(
      abstract)
  obs = random_observation(proprio_spec, 3, 0)
  latents = networks.encode(params, obs)
  logits = networks.policy_logits(params, latents, obs)
  np.testing.assert_allclose(
      networks_lib.entropy(logits, None), 2 * np.log(small_config.num_bins),
      rtol=1e-6)
  q = networks_lib.q_values(
      networks.critic_logits(params, latents, jnp.ones((3, 2, 2))),
      networks.atoms)
  np.testing.assert_allclose(q, 0.0, atol=1e-5)


def test_scoring_many_actions_in_one_pass_equals_one_by_one(
    proprio_spec, small_config, build, random_observation):
  networks, params = build(proprio_spec, small_config)
  obs = random_observation(proprio_spec, 3, 1)
  actions = jax.random.uniform(jax.random.PRNGKey(2), (3, 20, 2),
                               minval=-1.0, maxval=1.0)
  critic = jax.jit(networks.critic_logits)
  latents = networks.encode(params, obs)
  together = critic(params, latents, actions)  # [B, 20, atoms]
  one_by_one = jnp.concatenate(
      [critic(params, latents, actions[:, j:j + 1]) for j in range(20)], axis=1)
  np.testing.assert_allclose(together, one_by_one, rtol=1e-5, atol=1e-5)
  # The check is not vacuous: different actions get different values.
  q = networks_lib.q_values(together, networks.atoms)
  assert float(jnp.std(q)) > 1e-3


def test_padded_action_dims_are_ignored(multitask_spec, small_config, build,
                                        random_observation):
  networks, params = build(multitask_spec, small_config)
  obs = random_observation(multitask_spec, 4, 0)
  obs['action_mask'] = jnp.array([[1, 1, 0]] * 4, jnp.float32)  # A_real = 2
  mask = networks.action_mask(obs)
  latents = networks.encode(params, obs)
  logits = networks.policy_logits(params, latents, obs)
  np.testing.assert_array_equal(logits[:, 2], 0.0)  # Padded dim: uniform.

  actions = jax.random.uniform(jax.random.PRNGKey(0), (4, 3), minval=-1,
                               maxval=1)
  other_actions = actions.at[:, 2].set(-actions[:, 2] + 0.37)
  other_logits = logits.at[:, 2].set(
      jax.random.normal(jax.random.PRNGKey(1), logits[:, 2].shape) * 5)
  lp = networks_lib.log_prob(logits, actions, mask)
  np.testing.assert_array_equal(
      lp, networks_lib.log_prob(other_logits, other_actions, mask))
  np.testing.assert_array_equal(
      networks_lib.entropy(logits, mask),
      networks_lib.entropy(other_logits, mask))
  # ... while the padded dim does count without the mask.
  assert not np.allclose(
      lp, networks_lib.log_prob(other_logits, other_actions, None))

  samples = networks_lib.sample(jax.random.PRNGKey(3), other_logits, mask, 6)
  assert samples.shape == (4, 6, 3)
  np.testing.assert_array_equal(samples[..., 2], 0.0)
  np.testing.assert_array_equal(networks_lib.mode(other_logits, mask)[:, 2],
                                0.0)

  # The critic ignores the content of padded dims when given the mask.
  q_a = networks.critic_logits(params, latents, actions[:, None], mask)
  q_b = networks.critic_logits(params, latents, other_actions[:, None], mask)
  np.testing.assert_array_equal(q_a, q_b)


def test_masked_proprio_tokens_do_not_change_the_output(
    multitask_spec, small_config, build, random_observation):
  networks, params = build(multitask_spec, small_config)
  obs = random_observation(multitask_spec, 2, 0)
  obs['proprio_mask'] = jnp.array([[1, 1, 1, 1, 0, 0]] * 2, jnp.float32)
  latents = networks.encode(params, obs)
  changed = dict(obs, proprio=obs['proprio'].at[:, 4:].set(123.0))
  np.testing.assert_array_equal(latents, networks.encode(params, changed))
  # A real (unmasked) entry does change the latents.
  changed_real = dict(obs, proprio=obs['proprio'].at[:, 0].add(1.0))
  assert not np.allclose(latents, networks.encode(params, changed_real))


def test_task_id_path(multitask_spec, small_config, build, random_observation):
  networks, params = build(multitask_spec, small_config)
  obs = random_observation(multitask_spec, 2, 0)
  obs_a = dict(obs, task_id=jnp.array([0, 0], jnp.int32))
  obs_b = dict(obs, task_id=jnp.array([0, 3], jnp.int32))
  latents_a = networks.encode(params, obs_a)
  latents_b = networks.encode(params, obs_b)
  np.testing.assert_allclose(latents_a[0], latents_b[0], rtol=1e-6)
  assert not np.allclose(latents_a[1], latents_b[1])
  # Out-of-range ids are loud (NaN), never silently another task's embedding.
  bad = dict(obs, task_id=jnp.array([0, 10_000], jnp.int32))
  latents_bad = networks.encode(params, bad)
  assert np.isfinite(latents_bad[0]).all()
  assert np.isnan(latents_bad[1]).all()


@pytest.mark.parametrize('dtype', [np.float32, np.uint8])
def test_image_path(image_spec, small_config, build, dtype):
  spec = image_spec
  if dtype == np.uint8:
    spec = spec._replace(observations=dict(
        spec.observations, pixels=specs.Array((16, 16, 3), np.uint8)))
  networks, params = build(spec, small_config)
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 255, (2, 16, 16, 3)).astype(dtype)
  obs = {'pixels': jnp.asarray(pixels),
         'velocity': jnp.asarray(rng.normal(size=(2, 2)), jnp.float32)}
  latents = networks.encode(params, obs)
  net_cfg = small_config.network_config()
  assert latents.shape == (2, net_cfg.num_latents, net_cfg.embed_dim)
  assert np.isfinite(latents).all()
  logits = networks.policy_logits(params, latents, obs)
  assert logits.shape == (2, 2, small_config.num_bins)
  # 16x16 with patch 4 -> 4x4 patches with row/column embeddings.
  tokenizer = next(v for v in params.values() if 'row_pixels' in v)
  assert tokenizer['row_pixels'].shape == (4, 1, 64)
  assert tokenizer['col_pixels'].shape == (1, 4, 64)
  # The image reaches the latents.
  flipped = dict(obs, pixels=jnp.asarray(pixels[:, ::-1]))
  assert not np.allclose(latents, networks.encode(params, flipped))


def test_log_prob_maps_to_nearest_bin():
  logits = jnp.log(jnp.array([[[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]]))
  actions = jnp.array([[0.8, -0.3]])  # -> bins 2 (value 1) and 1 (value 0).
  expected = np.log(0.7) + np.log(0.25)
  np.testing.assert_allclose(networks_lib.log_prob(logits, actions, None),
                             [expected], rtol=1e-6)
  # [B, M, A] actions share the [B, A, K] logits.
  many = jnp.array([[[0.8, -0.3], [-1.0, 1.0]]])
  np.testing.assert_allclose(
      networks_lib.log_prob(logits, many, jnp.ones((1, 2))),
      [[expected, np.log(0.1) + np.log(0.25)]], rtol=1e-6)
  # Out-of-range actions clip to the edge bins.
  np.testing.assert_allclose(
      networks_lib.log_prob(logits, jnp.array([[3.0, -9.0]]), None),
      [np.log(0.7) + np.log(0.5)], rtol=1e-6)


def test_sample_frequencies_and_values():
  probs = np.array([0.6, 0.3, 0.1, 0.0, 0.0])
  logits = jnp.log(jnp.asarray(probs))[None, None]  # [1, 1, 5]
  samples = networks_lib.sample(jax.random.PRNGKey(0), logits, None, 20_000)
  values, counts = np.unique(np.asarray(samples), return_counts=True)
  np.testing.assert_allclose(values, [-1.0, -0.5, 0.0])
  np.testing.assert_allclose(counts / counts.sum(), probs[:3], atol=0.015)
  np.testing.assert_allclose(networks_lib.mode(logits, None), [[-1.0]])


def test_mix_uniform_and_kl():
  logits = jnp.log(jnp.array([[[1.0, 0.0, 0.0, 0.0]]]) + 1e-30)
  mixed = jax.nn.softmax(networks_lib.mix_uniform(logits, 0.2))
  np.testing.assert_allclose(mixed, [[[0.85, 0.05, 0.05, 0.05]]], rtol=1e-5)
  assert networks_lib.mix_uniform(logits, 0.0) is logits
  p = jnp.log(jnp.array([[[0.5, 0.5], [0.9, 0.1]]]))
  q = jnp.log(jnp.array([[[0.25, 0.75], [0.9, 0.1]]]))
  expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
  np.testing.assert_allclose(networks_lib.kl_divergence(p, q, None),
                             [expected], rtol=1e-5)
  np.testing.assert_allclose(
      networks_lib.kl_divergence(p, q, jnp.array([[0.0, 1.0]])), [0.0],
      atol=1e-7)


def test_q_values_are_the_mean_of_the_distribution():
  atoms = jnp.array([0.0, 1.0, 2.0])
  logits = jnp.log(jnp.array([[[0.2, 0.3, 0.5]]]))
  np.testing.assert_allclose(networks_lib.q_values(logits, atoms), [[1.3]],
                             rtol=1e-6)


def test_spec_errors(proprio_spec, small_config):
  bad_bounds = proprio_spec._replace(
      actions=specs.BoundedArray((2,), np.float32, -2.0, 2.0))
  with pytest.raises(ValueError, match=r'\[-1, 1\]'):
    networks_lib.make_networks(bad_bounds, small_config)
  bare = proprio_spec._replace(observations=specs.Array((5,), np.float32))
  with pytest.raises(ValueError, match='dict'):
    networks_lib.make_networks(bare, small_config)
  matrix_actions = proprio_spec._replace(
      actions=specs.BoundedArray((2, 2), np.float32, -1.0, 1.0))
  with pytest.raises(ValueError, match='1-D'):
    networks_lib.make_networks(matrix_actions, small_config)


@pytest.mark.parametrize('preset', sorted(config_lib.PRESETS))
def test_preset_parameter_counts(preset):
  count = networks_lib.preset_param_count(preset)
  line = f'preset {preset}: {count:,} parameters (reference spec)'
  print(line)
  if preset == 'test':
    assert count < 1_000_000, line
  else:
    nominal = config_lib.NOMINAL_PARAMS[preset]
    assert abs(count - nominal) <= 0.15 * nominal, line


def test_preset_count_barely_depends_on_the_spec(multitask_spec):
  """The trunk dominates: a 24-token multi-task spec is within 1% for 32M."""
  reference = networks_lib.preset_param_count('32M')
  multitask = networks_lib.preset_param_count('32M', multitask_spec)
  assert abs(multitask - reference) < 0.01 * reference


