"""Shared fixtures of the PAC network/loss tests: small specs and params."""

import dataclasses
from typing import Callable, Dict

from acme import specs
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.pac import config as config_lib
from agents.pac import networks as networks_lib


def _action_spec(dim: int) -> specs.BoundedArray:
  return specs.BoundedArray((dim,), np.float32, -1.0, 1.0, 'action')


def _env_spec(observations, action_dim: int) -> specs.EnvironmentSpec:
  return specs.EnvironmentSpec(
      observations=observations, actions=_action_spec(action_dim),
      rewards=specs.Array((), np.float32),
      discounts=specs.BoundedArray((), np.float32, 0.0, 1.0))


@pytest.fixture
def proprio_spec() -> specs.EnvironmentSpec:
  """Single-task dm_control-style spec (cartpole-like)."""
  return _env_spec({'position': specs.Array((3,), np.float32),
                    'velocity': specs.Array((2,), np.float32)}, 2)


@pytest.fixture
def multitask_spec() -> specs.EnvironmentSpec:
  """Our multi-task env's padded spec: P_max = 6, A_max = 3."""
  return _env_spec({
      'proprio': specs.Array((6,), np.float32),
      'proprio_mask': specs.Array((6,), np.float32),
      'action_mask': specs.Array((3,), np.float32),
      'task_id': specs.Array((), np.int32),
  }, 3)


@pytest.fixture
def image_spec() -> specs.EnvironmentSpec:
  return _env_spec({'pixels': specs.Array((16, 16, 3), np.float32),
                    'velocity': specs.Array((2,), np.float32)}, 2)


@pytest.fixture
def small_config() -> config_lib.PACConfig:
  """The 'test' preset with patch_size 4, so 16x16 images give 16 tokens."""
  return config_lib.PACConfig(
      network=config_lib.NetworkConfig(patch_size=4), num_bins=11,
      num_atoms=21, v_min=-5.0, v_max=5.0, num_sampled_actions=5)


@pytest.fixture
def random_observation() -> Callable[..., Dict[str, jnp.ndarray]]:
  """(spec, batch, seed) -> observation dict; masks are 1 unless overridden."""

  def make(spec: specs.EnvironmentSpec, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    obs = {}
    for key, leaf in spec.observations.items():
      shape = (batch,) + tuple(leaf.shape)
      if key == networks_lib.TASK_ID_KEY:
        obs[key] = jnp.asarray(rng.integers(0, 4, shape), jnp.int32)
      elif key in (networks_lib.PROPRIO_MASK_KEY, networks_lib.ACTION_MASK_KEY):
        obs[key] = jnp.ones(shape, jnp.float32)
      else:
        obs[key] = jnp.asarray(rng.normal(size=shape), jnp.float32)
    return obs

  return make


def random_params(networks: networks_lib.PACNetworks, seed: int):
  """Random parameters of the right shapes, drawn with NumPy.

  Much faster than `networks.init` in tests (compiling Haiku's many truncated-
  normal initialisers takes seconds on CPU), and unlike a fresh init it gives
  the zero-initialised heads non-trivial values.
  """
  shapes = jax.eval_shape(networks.init, jax.random.PRNGKey(0))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    noise = rng.normal(size=leaf.shape)
    if path[-1].key == 'scale':  # LayerNorm gains around 1.
      return jnp.asarray(1.0 + 0.1 * noise, leaf.dtype)
    std = 1.0 / np.sqrt(np.prod(leaf.shape[:-1])) if leaf.ndim >= 2 else 0.1
    return jnp.asarray(std * noise, leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _jitted(networks: networks_lib.PACNetworks) -> networks_lib.PACNetworks:
  """The same networks with jitted functions (eager Haiku is slow on CPU)."""
  return dataclasses.replace(
      networks, init=jax.jit(networks.init), encode=jax.jit(networks.encode),
      policy_logits=jax.jit(networks.policy_logits),
      critic_logits=jax.jit(networks.critic_logits))


@pytest.fixture(scope='session')
def make_params() -> Callable:
  """(networks, seed) -> random params (see `random_params`)."""
  return random_params


@pytest.fixture(scope='session')
def jit_networks() -> Callable:
  return _jitted


@pytest.fixture(scope='session')
def build() -> Callable:
  """(spec, config, seed) -> (jitted networks, random params), cached.

  The cache lets tests share compiled functions instead of recompiling.
  """
  cache = {}

  def make(spec, config, seed: int = 0):
    key = (repr(spec), config, seed)
    if key not in cache:
      networks = _jitted(networks_lib.make_networks(spec, config))
      cache[key] = (networks, random_params(networks, seed))
    return cache[key]

  return make
