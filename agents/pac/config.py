"""Configuration of the PAC agent: network size presets and algorithm settings.

Both dataclasses are frozen and validate themselves on construction, so a bad
value fails at the line that wrote it with a message naming the field, the value
and what is allowed, never later from deep inside a jitted JAX function.

Every default and the reason for it is written down in `agents/pac/README.md`.
"""

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple, Union

import jax.numpy as jnp


class ConfigError(ValueError):
  """A PAC configuration field (or a combination of fields) has a bad value."""


def _check(ok: bool, field: str, value: Any, allowed: str) -> None:
  if not ok:
    raise ConfigError(f'{field}={value!r} is invalid: {allowed}.')


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(value: Any, field: str, minimum: int) -> None:
  _check(_is_int(value) and value >= minimum, field, value,
         f'must be an int >= {minimum}')


def _check_float(value: Any, field: str, low: float, high: float,
                 low_open: bool = False, high_open: bool = False) -> None:
  """Checks `value` is a finite number in the (half-)open/closed interval."""
  ok = _is_number(value) and math.isfinite(value)
  if ok:
    ok = (value > low if low_open else value >= low) and (
        value < high if high_open else value <= high)
  interval = ('(' if low_open else '[') + f'{low}, {high}' + (
      ')' if high_open else ']')
  _check(ok, field, value, f'must be a number in {interval}')


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
  """Sizes of the Perceiver-IO actor-critic (see `networks.py`).

  Attributes:
    embed_dim: Width D of every token, latent and query.
    num_latents: Number N of learned latents; the encoder's cost is
      O(tokens * N) for the cross-attention and O(N^2 * D) per self-attention
      block, so N sets the actor's latency more than anything but D and L.
    num_self_attention_blocks: Number L of self-attention blocks on the latents.
    num_heads: Attention heads in every attention layer; must divide embed_dim.
    mlp_multiplier: Hidden width of every transformer MLP is
      mlp_multiplier * embed_dim.
    value_scales: Proprioceptive scalars are encoded as tanh(x / s) for each s,
      so both small and large magnitudes stay visible to the network.
    patch_size: Image observations are cut into patch_size x patch_size patches
      (after the conv stem), one token per patch.
    conv_channels: Output channels of the 3x3, stride-1 conv layers applied to
      images before patching.
    max_tasks: Rows of the task-embedding table; task ids must be below it.
    critic_hidden: Hidden sizes of the MLP that maps the critic's attended query
      to the atom logits.
  """
  embed_dim: int = 64
  num_latents: int = 16
  num_self_attention_blocks: int = 2
  num_heads: int = 4
  mlp_multiplier: int = 4
  value_scales: Tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0,
                                     100.0)
  patch_size: int = 8
  conv_channels: Tuple[int, ...] = (32,)
  max_tasks: int = 64
  critic_hidden: Tuple[int, ...] = (64,)

  def __post_init__(self):
    p = 'network.'
    _check_int(self.embed_dim, p + 'embed_dim', 1)
    _check_int(self.num_latents, p + 'num_latents', 1)
    _check_int(self.num_self_attention_blocks, p + 'num_self_attention_blocks',
               0)
    _check_int(self.num_heads, p + 'num_heads', 1)
    _check(self.embed_dim % self.num_heads == 0, p + 'num_heads',
           self.num_heads,
           f'must divide network.embed_dim={self.embed_dim}')
    _check_int(self.mlp_multiplier, p + 'mlp_multiplier', 1)
    _check(
        isinstance(self.value_scales, tuple) and len(self.value_scales) >= 1 and
        all(_is_number(s) and math.isfinite(s) and s > 0
            for s in self.value_scales), p + 'value_scales', self.value_scales,
        'must be a non-empty tuple of finite numbers > 0')
    _check_int(self.patch_size, p + 'patch_size', 1)
    _check(
        isinstance(self.conv_channels, tuple) and
        all(_is_int(c) and c >= 1 for c in self.conv_channels),
        p + 'conv_channels', self.conv_channels,
        'must be a tuple of ints >= 1 (may be empty)')
    _check_int(self.max_tasks, p + 'max_tasks', 1)
    _check(
        isinstance(self.critic_hidden, tuple) and
        all(_is_int(c) and c >= 1 for c in self.critic_hidden),
        p + 'critic_hidden', self.critic_hidden,
        'must be a tuple of ints >= 1 (may be empty)')


# Nominal sizes hold for the reference spec, `networks.reference_spec()`
# (cheetah-like proprioception: 17 scalars, 6 action dims). The trunk
# (num_self_attention_blocks + 3 attention blocks of ~12*D^2 parameters each)
# dominates; see README.md for the counts.
PRESETS: Dict[str, NetworkConfig] = {
    'test': NetworkConfig(),
    '32M': NetworkConfig(
        embed_dim=512, num_latents=32, num_self_attention_blocks=7,
        num_heads=8, critic_hidden=(512,)),
    '100M': NetworkConfig(
        embed_dim=768, num_latents=64, num_self_attention_blocks=11,
        num_heads=12, critic_hidden=(768,)),
    '300M': NetworkConfig(
        embed_dim=1024, num_latents=64, num_self_attention_blocks=21,
        num_heads=16, critic_hidden=(1024,)),
    '1B': NetworkConfig(
        embed_dim=1536, num_latents=64, num_self_attention_blocks=32,
        num_heads=24, critic_hidden=(1536,)),
}

# Nominal parameter count of each preset, for tests and docs.
NOMINAL_PARAMS: Dict[str, float] = {
    '32M': 32e6, '100M': 100e6, '300M': 300e6, '1B': 1e9}

# Acting policies: sample pi, take its per-dim mode, or sample
# num_q_filter_samples actions and keep the one with the highest Q.
POLICY_MODES = ('sample', 'mode', 'q_filter')

# Network compute precision; parameters and losses stay float32 either way.
COMPUTE_DTYPES = ('float32', 'bfloat16')

Step = Union[int, jnp.ndarray]


def _linear_ramp(step: Step, steps: int, start: float,
                 end: float) -> jnp.ndarray:
  """start -> end linearly over `steps`; exactly `end` from `steps` on.

  Written as (1-f)*start + f*end so that both endpoints are hit exactly in
  float32 (alpha == 1.0 must give pure BC bit for bit).
  """
  if steps == 0:
    return jnp.asarray(end, jnp.float32)
  frac = jnp.clip(jnp.asarray(step, jnp.float32) / steps, 0.0, 1.0)
  return (1.0 - frac) * start + frac * end


@dataclasses.dataclass(frozen=True)
class PACConfig:
  """Settings of the PAC agent; see README.md for each default and its reason.

  The loss is (1-alpha) * L_rl + alpha * L_bc + beta * L_q
  (+ kl_to_target_weight * KL(pi_target || pi)); see losses.py.
  """
  # Network.
  preset: str = 'test'
  network: Optional[NetworkConfig] = None
  # Loss.
  alpha: float = 0.75
  alpha_schedule_steps: int = 0
  beta: float = 1.0
  eta: float = 1.0
  normalize_advantages: bool = False
  num_sampled_actions: int = 20
  num_bins: int = 51
  num_atoms: int = 101
  v_min: float = 0.0
  v_max: float = 100.0
  discount: float = 0.99
  n_step: int = 3
  use_online_q_for_policy: bool = False
  kl_to_target_weight: float = 0.0
  uniform_mix: float = 0.0
  # Target network.
  target_update_period: int = 100
  target_polyak_tau: Optional[float] = None
  # Optimiser (AdamW with global-norm clipping).
  learning_rate: float = 1e-4
  adam_b1: float = 0.9
  adam_b2: float = 0.999
  weight_decay: float = 0.01
  max_grad_norm: float = 1.0
  # Batches and replay.
  batch_size: int = 256
  online_fraction: float = 0.0
  online_fraction_schedule_steps: int = 0
  max_replay_size: int = 1_000_000
  min_replay_size: int = 1_000
  samples_per_insert: float = 256.0
  samples_per_insert_tolerance_rate: float = 0.1
  offline_block_size: int = 8
  # Learner throughput.
  learner_steps_per_call: int = 1
  prefetch_batches: int = 0
  compute_dtype: str = 'float32'
  # Acting.
  actor_policy: str = 'sample'
  eval_policy: str = 'mode'
  eval_temperature: float = 1.0
  num_q_filter_samples: int = 16
  variable_update_period: int = 100
  seed: int = 0

  def __post_init__(self):
    _check(isinstance(self.preset, str) and self.preset in PRESETS, 'preset',
           self.preset, f'must be one of {sorted(PRESETS)}')
    _check(self.network is None or isinstance(self.network, NetworkConfig),
           'network', self.network,
           'must be None (use the preset) or a NetworkConfig')
    # Loss.
    _check_float(self.alpha, 'alpha', 0.0, 1.0)
    _check_int(self.alpha_schedule_steps, 'alpha_schedule_steps', 0)
    _check_float(self.beta, 'beta', 0.0, math.inf, high_open=True)
    _check_float(self.eta, 'eta', 0.0, math.inf, low_open=True,
                 high_open=True)
    _check_int(self.num_sampled_actions, 'num_sampled_actions', 1)
    _check_int(self.num_bins, 'num_bins', 2)
    _check_int(self.num_atoms, 'num_atoms', 2)
    _check_float(self.v_min, 'v_min', -math.inf, math.inf, low_open=True,
                 high_open=True)
    _check_float(self.v_max, 'v_max', -math.inf, math.inf, low_open=True,
                 high_open=True)
    _check(self.v_min < self.v_max, 'v_min', self.v_min,
           f'must be below v_max={self.v_max}')
    _check_float(self.discount, 'discount', 0.0, 1.0, low_open=True)
    _check_int(self.n_step, 'n_step', 1)
    _check(isinstance(self.normalize_advantages, bool),
           'normalize_advantages', self.normalize_advantages,
           'must be a bool')
    _check(isinstance(self.use_online_q_for_policy, bool),
           'use_online_q_for_policy', self.use_online_q_for_policy,
           'must be a bool')
    _check_float(self.kl_to_target_weight, 'kl_to_target_weight', 0.0,
                 math.inf, high_open=True)
    _check_float(self.uniform_mix, 'uniform_mix', 0.0, 1.0, high_open=True)
    # Target network.
    _check_int(self.target_update_period, 'target_update_period', 1)
    if self.target_polyak_tau is not None:
      _check_float(self.target_polyak_tau, 'target_polyak_tau', 0.0, 1.0,
                   low_open=True)
    # Optimiser.
    _check_float(self.learning_rate, 'learning_rate', 0.0, math.inf,
                 low_open=True, high_open=True)
    _check_float(self.adam_b1, 'adam_b1', 0.0, 1.0, high_open=True)
    _check_float(self.adam_b2, 'adam_b2', 0.0, 1.0, high_open=True)
    _check_float(self.weight_decay, 'weight_decay', 0.0, math.inf,
                 high_open=True)
    _check_float(self.max_grad_norm, 'max_grad_norm', 0.0, math.inf,
                 low_open=True, high_open=True)
    # Batches and replay.
    _check_int(self.batch_size, 'batch_size', 1)
    _check_float(self.online_fraction, 'online_fraction', 0.0, 1.0)
    _check_int(self.online_fraction_schedule_steps,
               'online_fraction_schedule_steps', 0)
    _check_int(self.max_replay_size, 'max_replay_size', 1)
    _check_int(self.min_replay_size, 'min_replay_size', 1)
    _check(self.min_replay_size <= self.max_replay_size, 'min_replay_size',
           self.min_replay_size,
           f'must not exceed max_replay_size={self.max_replay_size}')
    _check_float(self.samples_per_insert, 'samples_per_insert', 0.0, math.inf,
                 low_open=True, high_open=True)
    _check_float(self.samples_per_insert_tolerance_rate,
                 'samples_per_insert_tolerance_rate', 0.0, math.inf,
                 low_open=True, high_open=True)
    _check_int(self.offline_block_size, 'offline_block_size', 1)
    # Learner throughput.
    _check_int(self.learner_steps_per_call, 'learner_steps_per_call', 1)
    _check_int(self.prefetch_batches, 'prefetch_batches', 0)
    _check(self.compute_dtype in COMPUTE_DTYPES, 'compute_dtype',
           self.compute_dtype, f'must be one of {list(COMPUTE_DTYPES)}')
    # Acting.
    for field in ('actor_policy', 'eval_policy'):
      _check(getattr(self, field) in POLICY_MODES, field, getattr(self, field),
             f'must be one of {list(POLICY_MODES)}')
    _check_float(self.eval_temperature, 'eval_temperature', 0.0, math.inf,
                 low_open=True, high_open=True)
    _check_int(self.num_q_filter_samples, 'num_q_filter_samples', 1)
    if 'q_filter' in (self.actor_policy, self.eval_policy):
      _check(self.num_q_filter_samples >= 2, 'num_q_filter_samples',
             self.num_q_filter_samples,
             "must be >= 2 when actor_policy or eval_policy is 'q_filter'")
    _check_int(self.variable_update_period, 'variable_update_period', 1)
    _check_int(self.seed, 'seed', 0)

  def network_config(self) -> NetworkConfig:
    """The network sizes: `network` if given, else the preset's."""
    return self.network if self.network is not None else PRESETS[self.preset]

  @property
  def samples_per_insert_error_buffer(self) -> float:
    """Reverb SampleToInsertRatio error buffer, derived as Acme's agents do.

    min_replay_size * samples_per_insert * tolerance_rate, raised to Reverb's
    floor max(1, samples_per_insert) so small test configs do not fail there.
    """
    return max(
        self.min_replay_size * self.samples_per_insert *
        self.samples_per_insert_tolerance_rate,
        max(1.0, self.samples_per_insert))

  def alpha_at(self, step: Step) -> jnp.ndarray:
    """BC weight at learner `step`: 1.0 -> alpha over alpha_schedule_steps.

    Works on Python ints and traced scalars; returns a float32 scalar.
    """
    return _linear_ramp(step, self.alpha_schedule_steps, 1.0, self.alpha)

  def online_fraction_at(self, step: Step) -> jnp.ndarray:
    """Online share of a batch at `step`: 0 -> online_fraction, linearly.

    Works on Python ints and traced scalars; returns a float32 scalar.
    """
    return _linear_ramp(step, self.online_fraction_schedule_steps, 0.0,
                        self.online_fraction)


__all__ = ['ConfigError', 'NetworkConfig', 'PACConfig', 'PRESETS',
           'NOMINAL_PARAMS', 'POLICY_MODES', 'COMPUTE_DTYPES']
