"""PAC policies for actors and evaluators: sample, mode, or Q-filtered.

Each policy is a batched feed-forward function `(params, key, observation) ->
action` that Acme's `batched_feed_forward_to_actor_core` turns into an actor.
All three run the encoder once per observation; Q-filtering then scores its K
candidate actions against those latents in one critic call, so it
costs one encoder pass plus one batched decoder pass, not K forward passes.
"""

from typing import Callable

from acme.jax import networks as networks_lib
import jax.numpy as jnp

from agents.pac import config as config_lib
from agents.pac import networks as pac_networks

Policy = Callable[[networks_lib.Params, networks_lib.PRNGKey,
                   networks_lib.Observation], networks_lib.Action]

# config.POLICY_MODES: 'sample' draws from pi (with the config's uniform
# mixture) to explore; 'mode' takes the most likely bin per dimension for
# deterministic evaluation; 'q_filter' draws K actions from pi and keeps the one
# the critic rates highest.


def make_policy(networks: pac_networks.PACNetworks,
                config: config_lib.PACConfig, mode: str,
                temperature: float = 1.0) -> Policy:
  """The batched policy function for `mode` (one of POLICY_MODES).

  'sample' and 'q_filter' draw from softmax(logits / `temperature`) per
  dimension: below 1 the draws keep to the policy's likely bins. The BC term
  fits pi to an arithmetic mixture that gives the data's own action
  distribution a share alpha of the mass, so on mixed-quality data a policy
  sampled at temperature 1 takes, in states every behaviour visits, the
  data's random actions a fixed share of the time whatever the critic says;
  a lower evaluation temperature (`config.eval_temperature`) removes most
  of that floor and keeps the improved part (agents/pac/README.md).
  """
  if mode not in config_lib.POLICY_MODES:
    raise config_lib.ConfigError(f'Unknown policy mode {mode!r}; expected one '
                                 f'of {config_lib.POLICY_MODES}.')
  if not temperature > 0.0:
    raise config_lib.ConfigError(
        f'temperature={temperature!r} is invalid: must be a number > 0.')

  def policy(params: networks_lib.Params, key: networks_lib.PRNGKey,
             observation: networks_lib.Observation) -> jnp.ndarray:
    latents = networks.encode(params, observation)  # [B, N, D]
    logits = networks.policy_logits(params, latents, observation)  # [B, A, K]
    mask = networks.action_mask(observation)  # [B, A]
    if mode == 'mode':
      return pac_networks.mode(logits, mask)  # [B, A]
    logits = pac_networks.mix_uniform(logits / temperature,
                                      config.uniform_mix)
    if mode == 'sample':
      return pac_networks.sample(key, logits, mask, 1)[:, 0]  # [B, A]
    candidates = pac_networks.sample(
        key, logits, mask, config.num_q_filter_samples)  # [B, K, A]
    q = pac_networks.q_values(
        networks.critic_logits(params, latents, candidates, mask),
        networks.atoms)  # [B, K]
    best = jnp.argmax(q, axis=-1)  # [B]
    return jnp.take_along_axis(candidates, best[:, None, None],
                               axis=1)[:, 0]  # [B, A]

  return policy

