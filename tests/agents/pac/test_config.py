"""PACConfig / NetworkConfig: validation, presets and schedules."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.pac import config as config_lib
from agents.pac.config import ConfigError, NetworkConfig, PACConfig


def test_defaults_are_valid_and_use_the_preset():
  config = PACConfig()
  assert config.network_config() == config_lib.PRESETS['test']
  assert PACConfig(preset='32M').network_config().embed_dim == 512
  custom = NetworkConfig(embed_dim=32, num_heads=2)
  assert PACConfig(preset='1B', network=custom).network_config() is custom


def test_presets_exist():
  assert set(config_lib.PRESETS) == {'test', '32M', '100M', '300M', '1B'}
  for name in config_lib.PRESETS:
    PACConfig(preset=name)  # Every preset builds a valid config.


def test_config_error_is_a_value_error_and_config_is_frozen():
  assert issubclass(ConfigError, ValueError)
  with pytest.raises(dataclasses.FrozenInstanceError):
    PACConfig().alpha = 0.5  # pytype: disable=not-writable


def test_replace_revalidates():
  with pytest.raises(ConfigError, match='alpha'):
    dataclasses.replace(PACConfig(), alpha=2.0)


@pytest.mark.parametrize('field, value', [
    ('preset', 'huge'),
    ('network', {'embed_dim': 8}),
    ('alpha', -0.1), ('alpha', 1.5), ('alpha', float('nan')),
    ('alpha_schedule_steps', -1), ('alpha_schedule_steps', 1.5),
    ('beta', -1.0),
    ('eta', 0.0), ('eta', float('inf')),
    ('num_sampled_actions', 0),
    ('num_bins', 1), ('num_bins', True),
    ('num_atoms', 1),
    ('discount', 0.0), ('discount', 1.01),
    ('n_step', 0),
    ('use_online_q_for_policy', 1),
    ('kl_to_target_weight', -0.5),
    ('uniform_mix', 1.0), ('uniform_mix', -0.1),
    ('target_update_period', 0),
    ('target_polyak_tau', 0.0), ('target_polyak_tau', 1.5),
    ('learning_rate', 0.0),
    ('adam_b1', 1.0), ('adam_b2', -0.1),
    ('weight_decay', -1e-4),
    ('max_grad_norm', 0.0),
    ('batch_size', 0),
    ('online_fraction', 1.1),
    ('online_fraction_schedule_steps', -5),
    ('max_replay_size', 0),
    ('min_replay_size', 0),
    ('samples_per_insert', 0.0),
    ('samples_per_insert_tolerance_rate', -0.1),
    ('actor_policy', 'greedy'), ('eval_policy', 'argmax'),
    ('eval_temperature', 0.0), ('eval_temperature', float('inf')),
    ('num_q_filter_samples', 0),
    ('variable_update_period', 0),
    ('seed', -1),
])
def test_invalid_field_raises_with_field_and_value(field, value):
  with pytest.raises(ConfigError) as info:
    PACConfig(**{field: value})
  message = str(info.value)
  assert field in message
  assert repr(value) in message


def test_unknown_preset_lists_the_valid_ones():
  with pytest.raises(ConfigError) as info:
    PACConfig(preset='2B')
  for name in config_lib.PRESETS:
    assert name in str(info.value)


@pytest.mark.parametrize('changes, field', [
    (dict(v_min=1.0, v_max=1.0), 'v_min'),
    (dict(v_min=5.0, v_max=-5.0), 'v_min'),
    (dict(min_replay_size=10, max_replay_size=5), 'min_replay_size'),
    (dict(actor_policy='q_filter', num_q_filter_samples=1),
     'num_q_filter_samples'),
    (dict(eval_policy='q_filter', num_q_filter_samples=1),
     'num_q_filter_samples'),
])
def test_invalid_combinations(changes, field):
  with pytest.raises(ConfigError, match=field):
    PACConfig(**changes)


@pytest.mark.parametrize('changes, field', [
    (dict(embed_dim=0), 'network.embed_dim'),
    (dict(embed_dim=64, num_heads=5), 'network.num_heads'),
    (dict(num_latents=0), 'network.num_latents'),
    (dict(num_self_attention_blocks=-1), 'network.num_self_attention_blocks'),
    (dict(mlp_multiplier=0), 'network.mlp_multiplier'),
    (dict(value_scales=()), 'network.value_scales'),
    (dict(value_scales=(1.0, -2.0)), 'network.value_scales'),
    (dict(value_scales=[1.0]), 'network.value_scales'),
    (dict(patch_size=0), 'network.patch_size'),
    (dict(conv_channels=(16, 0)), 'network.conv_channels'),
    (dict(max_tasks=0), 'network.max_tasks'),
    (dict(critic_hidden=(64, -1)), 'network.critic_hidden'),
])
def test_invalid_network_config(changes, field):
  with pytest.raises(ConfigError, match=field.replace('.', r'\.')):
    NetworkConfig(**changes)


def test_valid_edge_values():
  PACConfig(alpha=0.0, beta=0.0, discount=1.0, uniform_mix=0.0,
            target_polyak_tau=1.0, online_fraction=1.0, num_bins=2)
  NetworkConfig(num_self_attention_blocks=0, conv_channels=(),
                critic_hidden=())


def test_alpha_schedule_python_and_traced():
  config = PACConfig(alpha=0.25, alpha_schedule_steps=100)
  # Exact endpoints: pure BC at step 0, exactly alpha from the end on.
  assert float(config.alpha_at(0)) == 1.0
  assert float(config.alpha_at(100)) == np.float32(0.25)
  assert float(config.alpha_at(10_000)) == np.float32(0.25)
  np.testing.assert_allclose(float(config.alpha_at(50)), 0.625, rtol=1e-6)
  traced = jax.jit(config.alpha_at)
  for step in (0, 100, 250):  # Endpoints stay exact when traced too.
    assert float(traced(jnp.asarray(step, jnp.int32))) == float(
        config.alpha_at(step))
  np.testing.assert_allclose(float(traced(jnp.asarray(30))), 0.775, rtol=1e-6)


def test_constant_alpha_without_schedule():
  config = PACConfig(alpha=0.4)
  assert float(config.alpha_at(0)) == np.float32(0.4)
  assert float(jax.jit(config.alpha_at)(jnp.asarray(7))) == np.float32(0.4)
  assert float(PACConfig(alpha=1.0).alpha_at(123)) == 1.0


def test_online_fraction_schedule():
  config = PACConfig(online_fraction=0.5, online_fraction_schedule_steps=10)
  assert float(config.online_fraction_at(0)) == 0.0
  np.testing.assert_allclose(float(config.online_fraction_at(4)), 0.2,
                             rtol=1e-6)
  assert float(config.online_fraction_at(10)) == 0.5
  assert float(jax.jit(config.online_fraction_at)(jnp.asarray(99))) == 0.5
  assert float(PACConfig(online_fraction=0.3).online_fraction_at(0)) == (
      np.float32(0.3))


def test_error_buffer_follows_acme_and_respects_reverb_floor():
  config = PACConfig(min_replay_size=1000, samples_per_insert=256.0,
                     samples_per_insert_tolerance_rate=0.1)
  assert config.samples_per_insert_error_buffer == pytest.approx(25600.0)
  small = PACConfig(min_replay_size=1, max_replay_size=10,
                    samples_per_insert=8.0)
  assert small.samples_per_insert_error_buffer == 8.0
