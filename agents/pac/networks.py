"""Perceiver-IO actor-critic network of PAC (arXiv 2402.05546).

One network serves policy and critic:

  observation dict --tokenisers--> tokens [B, T, D]
  N learned latents --cross-attend once--> --L self-attention blocks--> latents
  latents --(one query per action dim)--> policy logits [B, A, K]
  latents --(one query per candidate action)--> critic logits [B, M, atoms]

The encoder is the expensive part and runs once per state; the policy and the
critic are small cross-attention decoders on its output, so scoring M candidate
actions costs M decoder queries, not M encoder passes.

Observations are dicts of arrays with a leading batch dim. Every key is a
modality except the reserved ones:
  * 'task_id'      int32 [B]: one task token from a learned embedding table.
  * 'proprio_mask' float32 [B, P]: 1 = real entry of 'proprio'; padded entries
                   are removed from the encoder's cross-attention.
  * 'action_mask'  float32 [B, A]: 1 = real action dim; padded dims get uniform
                   logits, are left out of log-probs and entropies, are sampled
                   as 0.0, and are zeroed before the critic sees an action.
Keys with 3 dims per example (H, W, C) are images; every other key is
proprioception, one token per scalar.

Helpers on policy logits (module-level, pure): `log_prob`, `sample`, `mode`,
`entropy`, `kl_divergence`, `mix_uniform`; on critic logits: `q_values`.
Masks there are [B, A] floats and may be None (= all dims real).
"""

import dataclasses
import math
from typing import Callable, List, Mapping, Optional, Tuple

from acme import specs
from acme.jax import utils as acme_utils
import haiku as hk
import jax
import jax.numpy as jnp
import jmp
import numpy as np

from agents.pac import config as config_lib

TASK_ID_KEY = 'task_id'
PROPRIO_KEY = 'proprio'
PROPRIO_MASK_KEY = 'proprio_mask'
ACTION_MASK_KEY = 'action_mask'
RESERVED_KEYS = (TASK_ID_KEY, PROPRIO_MASK_KEY, ACTION_MASK_KEY)

Observation = Mapping[str, jnp.ndarray]
Params = hk.Params


# ----------------------------------------------------------------------------
# Building blocks.
# ----------------------------------------------------------------------------


def _layer_norm(name: str) -> hk.LayerNorm:
  return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name=name)


class _MLP(hk.Module):
  """Transformer MLP: D -> multiplier*D -> D with GELU."""

  def __init__(self, width: int, multiplier: int, name: str):
    super().__init__(name=name)
    self._width = width
    self._multiplier = multiplier

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    h = jax.nn.gelu(hk.Linear(self._width * self._multiplier, name='hidden')(x))
    return hk.Linear(self._width, name='out')(h)


class _AttentionBlock(hk.Module):
  """Pre-LayerNorm attention block with residuals.

  x <- x + MHA(LN(x), LN(context)); x <- x + MLP(LN(x)). Self-attention when
  `context` is None. Each query row is processed independently of the other
  rows given the context, which is what lets the decoders score many queries at
  once with the same result as one by one.
  """

  def __init__(self, cfg: config_lib.NetworkConfig, name: str):
    super().__init__(name=name)
    self._cfg = cfg

  def __call__(self, x: jnp.ndarray, context: Optional[jnp.ndarray] = None,
               mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
    cfg = self._cfg
    h = _layer_norm('ln_query')(x)
    ctx = h if context is None else _layer_norm('ln_context')(context)
    attention = hk.MultiHeadAttention(
        num_heads=cfg.num_heads, key_size=cfg.embed_dim // cfg.num_heads,
        w_init=hk.initializers.VarianceScaling(1.0), model_size=cfg.embed_dim,
        name='attention')
    x = x + attention(h, ctx, ctx, mask=mask)
    return x + _MLP(cfg.embed_dim, cfg.mlp_multiplier, 'mlp')(
        _layer_norm('ln_mlp')(x))


def _embedding(name: str, shape: Tuple[int, ...]) -> jnp.ndarray:
  return hk.get_parameter(name, shape,
                          init=hk.initializers.TruncatedNormal(stddev=0.02))


class _Tokenizer(hk.Module):
  """Turns an observation dict into tokens [B, T, D] and a key mask [B, T].

  Each token is a content embedding plus learned embeddings of its modality
  (one vector per observation key) and its position (index within the key, or
  2-D patch position for images). Keys are visited in sorted order so the token
  layout never depends on dict order.
  """

  def __init__(self, cfg: config_lib.NetworkConfig, name: str = 'tokenizer'):
    super().__init__(name=name)
    self._cfg = cfg

  def __call__(self, observation: Observation
              ) -> Tuple[jnp.ndarray, jnp.ndarray]:
    tokens: List[jnp.ndarray] = []
    masks: List[jnp.ndarray] = []
    for key in sorted(observation):
      if key in (PROPRIO_MASK_KEY, ACTION_MASK_KEY):
        continue
      value = observation[key]
      if key == TASK_ID_KEY:
        tok = self._task(value)
      elif value.ndim == 4:
        tok = self._image(key, value)
      else:
        tok = self._proprio(key, value)
      mask = jnp.ones(tok.shape[:2], jnp.float32)  # [B, T_key]
      if key == PROPRIO_KEY and PROPRIO_MASK_KEY in observation:
        mask = observation[PROPRIO_MASK_KEY].astype(jnp.float32)
      tokens.append(tok)
      masks.append(mask)
    if not tokens:
      raise ValueError(
          'Observation has no input for the encoder: keys '
          f'{sorted(observation)} are all masks ({PROPRIO_MASK_KEY!r}, '
          f'{ACTION_MASK_KEY!r}).')
    return jnp.concatenate(tokens, axis=1), jnp.concatenate(masks, axis=1)

  def _proprio(self, key: str, value: jnp.ndarray) -> jnp.ndarray:
    """One token per scalar: multi-scale tanh code -> shared linear map."""
    cfg = self._cfg
    x = value.reshape(value.shape[0], -1).astype(jnp.float32)  # [B, P]
    scales = jnp.asarray(cfg.value_scales, jnp.float32)  # [S]
    code = jnp.tanh(x[..., None] / scales)  # [B, P, S]
    # Same module name on every call: one value map shared by all keys.
    content = hk.Linear(cfg.embed_dim, name='value_embed')(code)  # [B, P, D]
    key_embed = _embedding(f'key_{key}', (cfg.embed_dim,))
    index_embed = _embedding(f'index_{key}', (x.shape[1], cfg.embed_dim))
    return content + key_embed + index_embed

  def _image(self, key: str, value: jnp.ndarray) -> jnp.ndarray:
    """Conv stem, then one token per patch with row + column embeddings."""
    cfg = self._cfg
    x = value.astype(jnp.float32)  # [B, H, W, C]
    if value.dtype == jnp.uint8:
      x = x / 255.0
    if x.shape[1] < cfg.patch_size or x.shape[2] < cfg.patch_size:
      raise ValueError(
          f'Image {key!r} of shape {value.shape[1:]} is smaller than '
          f'network.patch_size={cfg.patch_size}.')
    for i, channels in enumerate(cfg.conv_channels):
      x = jax.nn.gelu(hk.Conv2D(channels, 3, name=f'conv_{key}_{i}')(x))
    x = hk.Conv2D(cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size,
                  padding='VALID', name=f'patchify_{key}')(x)  # [B, h, w, D]
    _, rows, cols, _ = x.shape
    x = (x + _embedding(f'row_{key}', (rows, 1, cfg.embed_dim)) +
         _embedding(f'col_{key}', (1, cols, cfg.embed_dim)) +
         _embedding(f'key_{key}', (cfg.embed_dim,)))
    return x.reshape(x.shape[0], rows * cols, cfg.embed_dim)  # [B, h*w, D]

  def _task(self, task_id: jnp.ndarray) -> jnp.ndarray:
    """One token from the task table.

    An id outside [0, max_tasks) gives a NaN token (hence NaN losses) rather
    than silently sharing the embedding of another task.
    """
    cfg = self._cfg
    table = _embedding('task_table', (cfg.max_tasks, cfg.embed_dim))
    ids = task_id.reshape(task_id.shape[0]).astype(jnp.int32)  # [B]
    tok = jnp.take(table, ids, axis=0, mode='fill', fill_value=jnp.nan)
    return (tok + _embedding(f'key_{TASK_ID_KEY}', (cfg.embed_dim,)))[:, None]


class _PerceiverActorCritic(hk.Module):
  """The three pure stages: encode, policy_logits, critic_logits."""

  def __init__(self, cfg: config_lib.NetworkConfig, action_dim: int,
               num_bins: int, num_atoms: int):
    super().__init__(name='pac')
    self._cfg = cfg
    self._action_dim = action_dim
    self._num_bins = num_bins
    self._num_atoms = num_atoms

  def encode(self, observation: Observation) -> jnp.ndarray:
    """Observation -> latents [B, N, D]."""
    cfg = self._cfg
    tokens, token_mask = _Tokenizer(cfg)(observation)  # [B, T, D], [B, T]
    batch = tokens.shape[0]
    latents = _embedding('latents', (cfg.num_latents, cfg.embed_dim))
    x = jnp.broadcast_to(latents, (batch,) + latents.shape)  # [B, N, D]
    mask = token_mask[:, None, None, :] > 0.5  # [B, 1 head, 1 query, T]
    x = _AttentionBlock(cfg, 'cross_attend')(x, tokens, mask)
    for i in range(cfg.num_self_attention_blocks):
      x = _AttentionBlock(cfg, f'self_attend_{i}')(x)
    return _layer_norm('ln_latents')(x)

  def policy_logits(self, latents: jnp.ndarray,
                    observation: Observation) -> jnp.ndarray:
    """Latents [B, N, D] -> logits [B, A, K]; padded action dims get zeros."""
    cfg = self._cfg
    batch = latents.shape[0]
    queries = _embedding('action_queries', (self._action_dim, cfg.embed_dim))
    x = jnp.broadcast_to(queries, (batch,) + queries.shape)  # [B, A, D]
    x = _AttentionBlock(cfg, 'policy_cross_attend')(x, latents)
    # Zero-initialised head: the initial policy is uniform over the bins.
    logits = hk.Linear(self._num_bins, w_init=jnp.zeros, name='policy_head')(
        _layer_norm('ln_policy')(x))  # [B, A, K]
    mask = action_mask(observation, self._action_dim)  # [B, A]
    return logits * mask[..., None]

  def critic_logits(self, latents: jnp.ndarray, actions: jnp.ndarray,
                    mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
    """Latents [B, N, D], actions [B, M, A] -> atom logits [B, M, atoms].

    The whole action vector is embedded by one linear map (plus a learned
    query offset) into a single query token: M actions are M queries of one
    cross-attention, which keeps scoring many actions cheap. Padded dims
    (mask 0) are zeroed first, so their content cannot change the value.
    """
    cfg = self._cfg
    if mask is not None:
      actions = actions * mask[:, None, :]
    query = hk.Linear(cfg.embed_dim, name='action_embed')(actions) + _embedding(
        'critic_query', (cfg.embed_dim,))  # [B, M, D]
    x = _AttentionBlock(cfg, 'critic_cross_attend')(query, latents)
    h = _layer_norm('ln_critic')(x)
    for i, width in enumerate(cfg.critic_hidden):
      h = jax.nn.gelu(hk.Linear(width, name=f'critic_hidden_{i}')(h))
    # Zero-initialised head: the initial value distribution is uniform.
    return hk.Linear(self._num_atoms, w_init=jnp.zeros,
                     name='critic_head')(h)  # [B, M, atoms]


# ----------------------------------------------------------------------------
# The network object.
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PACNetworks:
  """Pure functions and constants of the PAC network.

  Attributes:
    init: key -> params (built from dummy inputs of the environment spec).
    encode: (params, observation) -> latents [B, N, D].
    policy_logits: (params, latents, observation) -> logits [B, A, K]; the
      observation supplies the action mask.
    critic_logits: (params, latents [B, N, D], actions [B, M, A],
      mask [B, A] | None) -> atom logits [B, M, atoms]. One encoder pass
      serves any number M of candidate actions.
    bin_centers: [K] action value of each policy bin, uniform on [-1, 1].
    atoms: [num_atoms] support of the critic, uniform on [v_min, v_max].
    action_dim: A, the (padded) action size.
    num_bins: K.
    num_atoms: Number of critic atoms.
    environment_spec: The spec the network was built for (the learner
      compiles its step for it before any data arrives).
  """
  init: Callable[[jax.Array], Params]
  encode: Callable[[Params, Observation], jnp.ndarray]
  policy_logits: Callable[[Params, jnp.ndarray, Observation], jnp.ndarray]
  critic_logits: Callable[..., jnp.ndarray]
  bin_centers: jnp.ndarray
  atoms: jnp.ndarray
  action_dim: int
  num_bins: int
  num_atoms: int
  environment_spec: specs.EnvironmentSpec

  def action_mask(self, observation: Observation) -> jnp.ndarray:
    """[B, A] float mask of real action dims (all ones without the key)."""
    return action_mask(observation, self.action_dim)


def _action_dim(spec: specs.EnvironmentSpec) -> int:
  shape = spec.actions.shape
  if len(shape) != 1 or shape[0] < 1:
    raise ValueError(
        f'PAC needs a 1-D continuous action spec, got shape {shape}.')
  if isinstance(spec.actions, specs.BoundedArray) and not (
      np.allclose(spec.actions.minimum, -1.0) and
      np.allclose(spec.actions.maximum, 1.0)):
    raise ValueError(
        'PAC expects actions normalised to [-1, 1] (policy bins cover [-1, 1]);'
        f' the action spec has minimum={spec.actions.minimum}, '
        f'maximum={spec.actions.maximum}. Wrap the environment to rescale.')
  return shape[0]


def _check_observation_spec(observations) -> None:
  if not isinstance(observations, Mapping):
    raise ValueError(
        'PAC expects a dict of named observation arrays, got '
        f'{type(observations).__name__}.')
  for key, leaf in observations.items():
    if key in RESERVED_KEYS:
      continue
    if len(leaf.shape) > 3:
      raise ValueError(
          f'Observation {key!r} has shape {leaf.shape}: PAC supports vectors '
          '(proprioception) and (H, W, C) images only.')


def _in_precision(fn: Callable[..., jnp.ndarray],
                  dtype: str) -> Callable[..., jnp.ndarray]:
  """`fn(params, *inputs)` computed in `dtype`, returning float32.

  Mixed precision in the usual form (jmp): parameters stay float32 (the
  optimiser updates those), a low-precision copy of them and of every
  floating input is what the network computes with, and the outputs (latents,
  logits) come back as float32, so losses, softmaxes and log-probabilities
  are computed in full precision.
  """
  policy = jmp.get_policy(f'params=float32,compute={dtype},output=float32')

  def wrapped(params, *inputs):
    return policy.cast_to_output(
        fn(policy.cast_to_compute(params), *policy.cast_to_compute(inputs)))

  return wrapped


def make_networks(spec: specs.EnvironmentSpec,
                  config: config_lib.PACConfig) -> PACNetworks:
  """Builds the PAC network for `spec` with the sizes of `config`."""
  _check_observation_spec(spec.observations)
  net_cfg = config.network_config()
  action_dim = _action_dim(spec)

  def forward():
    model = _PerceiverActorCritic(net_cfg, action_dim, config.num_bins,
                                  config.num_atoms)

    def init(observation, actions):
      latents = model.encode(observation)
      return (model.policy_logits(latents, observation),
              model.critic_logits(latents, actions))

    return init, (model.encode, model.policy_logits, model.critic_logits)

  transformed = hk.without_apply_rng(hk.multi_transform(forward))
  encode_fn, policy_fn, critic_fn = transformed.apply
  if config.compute_dtype != 'float32':
    encode_fn, policy_fn, critic_fn = (
        _in_precision(fn, config.compute_dtype)
        for fn in (encode_fn, policy_fn, critic_fn))
  dummy_observation = acme_utils.add_batch_dim(
      acme_utils.zeros_like(spec.observations))
  dummy_actions = jnp.zeros((1, 1, action_dim), jnp.float32)

  def init_fn(key: jax.Array) -> Params:
    return transformed.init(key, dummy_observation, dummy_actions)

  return PACNetworks(
      init=init_fn,
      encode=encode_fn,
      policy_logits=policy_fn,
      critic_logits=critic_fn,
      bin_centers=bin_centers(config.num_bins),
      atoms=jnp.linspace(config.v_min, config.v_max, config.num_atoms,
                         dtype=jnp.float32),
      action_dim=action_dim,
      num_bins=config.num_bins,
      num_atoms=config.num_atoms,
      environment_spec=spec)


# ----------------------------------------------------------------------------
# Distribution helpers (pure, module-level).
# ----------------------------------------------------------------------------


def bin_centers(num_bins: int) -> jnp.ndarray:
  """[K] bin values, uniform on [-1, 1] including both endpoints."""
  return jnp.linspace(-1.0, 1.0, num_bins, dtype=jnp.float32)


def action_mask(observation: Observation, action_dim: int) -> jnp.ndarray:
  """[B, A] float mask of real action dims; all ones without 'action_mask'."""
  if isinstance(observation, Mapping) and ACTION_MASK_KEY in observation:
    return observation[ACTION_MASK_KEY].astype(jnp.float32)
  batch = jax.tree.leaves(observation)[0].shape[0]
  return jnp.ones((batch, action_dim), jnp.float32)


def _ones_mask(logits: jnp.ndarray, mask: Optional[jnp.ndarray]) -> jnp.ndarray:
  if mask is None:
    return jnp.ones(logits.shape[:2], logits.dtype)
  return mask.astype(logits.dtype)


def action_to_bin(actions: jnp.ndarray, num_bins: int) -> jnp.ndarray:
  """Index of the nearest bin center for actions in [-1, 1] (clipped)."""
  scaled = (jnp.clip(actions, -1.0, 1.0) + 1.0) * 0.5 * (num_bins - 1)
  return jnp.round(scaled).astype(jnp.int32)


def _expand_for_samples(x: jnp.ndarray, extra_dims: int) -> jnp.ndarray:
  """[B, ...] -> [B, 1 (x extra_dims), ...] to broadcast against samples."""
  return x.reshape(x.shape[:1] + (1,) * extra_dims + x.shape[1:])


def log_prob(logits: jnp.ndarray, actions: jnp.ndarray,
             mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """log pi(actions) summed over real dims.

  Args:
    logits: [B, A, K].
    actions: [B, A] or [B, M, A] continuous values in [-1, 1]; each is mapped
      to its nearest bin.
    mask: [B, A] or None.

  Returns:
    [B] or [B, M].
  """
  extra = actions.ndim - 2
  mask = _expand_for_samples(_ones_mask(logits, mask), extra)  # [B, (1,) A]
  log_p = _expand_for_samples(jax.nn.log_softmax(logits), extra)
  one_hot = jax.nn.one_hot(action_to_bin(actions, logits.shape[-1]),
                           logits.shape[-1], dtype=logits.dtype)
  per_dim = jnp.sum(one_hot * log_p, axis=-1)  # [B, (M,) A]
  return jnp.sum(per_dim * mask, axis=-1)


def sample(key: jax.Array, logits: jnp.ndarray, mask: Optional[jnp.ndarray],
           num_samples: int) -> jnp.ndarray:
  """num_samples actions per state: [B, M, A] bin centers, padded dims 0."""
  batch, action_dim, num_bins = logits.shape
  idx = jax.random.categorical(key, logits[:, None], axis=-1,
                               shape=(batch, num_samples, action_dim))
  actions = bin_centers(num_bins)[idx]  # [B, M, A]
  return actions * _ones_mask(logits, mask)[:, None, :]


def mode(logits: jnp.ndarray, mask: Optional[jnp.ndarray]) -> jnp.ndarray:
  """Most likely bin center per dim: [B, A], padded dims 0."""
  actions = bin_centers(logits.shape[-1])[jnp.argmax(logits, axis=-1)]
  return actions * _ones_mask(logits, mask)


def entropy(logits: jnp.ndarray, mask: Optional[jnp.ndarray]) -> jnp.ndarray:
  """Entropy of the product of per-dim categoricals over real dims: [B]."""
  log_p = jax.nn.log_softmax(logits)
  per_dim = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)  # [B, A]
  return jnp.sum(per_dim * _ones_mask(logits, mask), axis=-1)


def kl_divergence(p_logits: jnp.ndarray, q_logits: jnp.ndarray,
                  mask: Optional[jnp.ndarray]) -> jnp.ndarray:
  """KL(p || q) of the per-dim product distributions over real dims: [B]."""
  log_p = jax.nn.log_softmax(p_logits)
  log_q = jax.nn.log_softmax(q_logits)
  per_dim = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)  # [B, A]
  return jnp.sum(per_dim * _ones_mask(p_logits, mask), axis=-1)


def mix_uniform(logits: jnp.ndarray, fraction: float) -> jnp.ndarray:
  """Logits of (1 - fraction) * softmax(logits) + fraction * uniform, per dim.

  Sampling from this mixture keeps every bin reachable however peaked the
  policy has become (a guard against entropy collapse when acting online).
  """
  if fraction == 0.0:
    return logits
  probs = jax.nn.softmax(logits)
  return jnp.log((1.0 - fraction) * probs + fraction / logits.shape[-1])


def q_values(critic_logits: jnp.ndarray, atoms: jnp.ndarray) -> jnp.ndarray:
  """Mean of the categorical value distribution: [..., atoms] -> [...]."""
  return jnp.sum(jax.nn.softmax(critic_logits) * atoms, axis=-1)


# ----------------------------------------------------------------------------
# Parameter counts.
# ----------------------------------------------------------------------------


def count_params(params) -> int:
  """Number of scalars in a params tree (arrays or jax.ShapeDtypeStructs)."""
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params)))


def reference_spec() -> specs.EnvironmentSpec:
  """The spec preset sizes are quoted for: cheetah-like proprioception.

  dm_control's cheetah has 'position' (8,) and 'velocity' (9,) and 6 actions.
  Any proprio-only spec gives nearly the same count: the trunk dominates.
  """
  return specs.EnvironmentSpec(
      observations={
          'position': specs.Array((8,), np.float32, 'position'),
          'velocity': specs.Array((9,), np.float32, 'velocity'),
      },
      actions=specs.BoundedArray((6,), np.float32, -1.0, 1.0, 'action'),
      rewards=specs.Array((), np.float32, 'reward'),
      discounts=specs.BoundedArray((), np.float32, 0.0, 1.0, 'discount'))


def preset_param_count(
    preset_name: str,
    spec: Optional[specs.EnvironmentSpec] = None) -> int:
  """Parameters of a preset for `spec` (default `reference_spec()`).

  Computed with jax.eval_shape: shapes only, so the 1B preset allocates nothing.
  """
  networks = make_networks(spec or reference_spec(),
                           config_lib.PACConfig(preset=preset_name))
  shapes = jax.eval_shape(networks.init, jax.random.PRNGKey(0))
  return count_params(shapes)

