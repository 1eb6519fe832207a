"""PAC loss (arXiv 2402.05546): pure functions returning (loss, metrics).

    L(theta) = (1 - alpha) * L_rl + alpha * L_bc + beta * L_q
               (+ kl_to_target_weight * KL(pi_theta' || pi_theta))

* L_bc = -log pi_theta(a_data | s).
* L_rl = -sum_j w_j log pi_theta(a'_j | s), a'_j ~ pi_theta'(.|s) (optionally
  mixed with a uniform), w = softmax_j(Q(s, a'_j) / eta) held constant. Fitting
  pi_theta to the self-normalised sample of pi_theta' * exp(Q / eta) is the
  KL-regularised policy-improvement step (as in MPO, with a fixed temperature).
* L_q = cross-entropy of p_theta(z | s, a_data) against the C51 projection of
  r + gamma_t * z under the mixture over M next actions a'_j ~ pi_theta'(.|s')
  of p_theta'(z | s', a'_j).

Every term's metrics are reported whatever its weight, so a BC run (alpha = 1)
still shows what the RL term would be.
"""

from typing import Dict, Optional, Tuple

from acme import types
import jax
import jax.numpy as jnp
import rlax

from agents.pac import config as config_lib
from agents.pac import networks as networks_lib

Metrics = Dict[str, jnp.ndarray]


def categorical_projection(atoms: jnp.ndarray, probs: jnp.ndarray,
                           rewards: jnp.ndarray,
                           discounts: jnp.ndarray) -> jnp.ndarray:
  """C51 projection of the shifted distribution r + discount * z onto `atoms`.

  Each shifted atom's mass is split linearly between its two neighbouring atoms;
  values beyond [atoms[0], atoms[-1]] go to the edge atom. rlax's L2 (Cramer)
  projection does exactly this on a fixed support (it clips, then gives each
  target atom 1 - |distance| / spacing of every source atom within one spacing).

  Args:
    atoms: [num_atoms] increasing support.
    probs: [B, num_atoms] probabilities on `atoms`.
    rewards: [B].
    discounts: [B] full bootstrap factor (0 ends the return).

  Returns:
    [B, num_atoms] probabilities on `atoms`.
  """
  shifted = rewards[:, None] + discounts[:, None] * atoms[None, :]  # [B, atoms]
  return jax.vmap(rlax.categorical_l2_project, in_axes=(0, 0, None))(
      shifted, probs, atoms)


def critic_target(next_critic_logits: jnp.ndarray, rewards: jnp.ndarray,
                  discounts: jnp.ndarray, atoms: jnp.ndarray) -> jnp.ndarray:
  """Target distribution: projected mixture over the M next actions.

  Args:
    next_critic_logits: [B, M, atoms] target-network logits of p(z | s', a'_j).
    rewards: [B].
    discounts: [B] full bootstrap factor gamma * transition.discount.
    atoms: [num_atoms].

  Returns:
    [B, atoms], no gradient.
  """
  mixture = jnp.mean(jax.nn.softmax(next_critic_logits), axis=1)  # [B, atoms]
  return jax.lax.stop_gradient(
      categorical_projection(atoms, mixture, rewards, discounts))


def critic_loss(critic_logits: jnp.ndarray, target_probs: jnp.ndarray,
                atoms: jnp.ndarray) -> Tuple[jnp.ndarray, Metrics]:
  """Cross-entropy of p_theta(z|s,a) [B, atoms] against a target [B, atoms]."""
  log_p = jax.nn.log_softmax(critic_logits)
  loss = -jnp.mean(jnp.sum(target_probs * log_p, axis=-1))
  return loss, {
      'loss/critic': loss,
      'q/mean': jnp.mean(networks_lib.q_values(critic_logits, atoms)),
      'q/target_mean': jnp.mean(jnp.sum(target_probs * atoms, axis=-1)),
  }


def bc_loss(policy_logits: jnp.ndarray, actions: jnp.ndarray,
            mask: Optional[jnp.ndarray]) -> Tuple[jnp.ndarray, Metrics]:
  """-log pi_theta(a_data|s): logits [B, A, K], actions [B, A], mask [B, A]."""
  loss = -jnp.mean(networks_lib.log_prob(policy_logits, actions, mask))
  return loss, {'loss/bc': loss}


def policy_improvement_weights(q_values: jnp.ndarray, eta: float,
                               normalize: bool = False) -> jnp.ndarray:
  """w = softmax_j(Q_j / eta) over the M samples, no gradient: [B, M].

  With `normalize`, each state's Q_j are first standardised over its M
  samples ((Q_j - mean) / (std + 1e-6)): eta is then in units of the
  state's own spread of Q over actions, which on a task whose single
  actions move the return little (cartpole at 100 Hz: an action's spread is
  ~1/40 of the spread over states) otherwise leaves the weights near uniform.
  """
  q = jax.lax.stop_gradient(q_values)  # [B, M]
  if normalize:
    q = (q - jnp.mean(q, axis=-1, keepdims=True)) / (
        jnp.std(q, axis=-1, keepdims=True) + 1e-6)
  return jax.nn.softmax(q / eta, axis=-1)


def rl_loss(policy_logits: jnp.ndarray, sampled_actions: jnp.ndarray,
            q_values: jnp.ndarray, eta: float,
            mask: Optional[jnp.ndarray],
            normalize: bool = False) -> Tuple[jnp.ndarray, Metrics]:
  """-sum_j w_j log pi_theta(a'_j | s), averaged over the batch.

  Args:
    policy_logits: [B, A, K] online policy.
    sampled_actions: [B, M, A] samples of the target (sampling) policy.
    q_values: [B, M] Q(s, a'_j); treated as constants.
    eta: temperature; small eta -> weight on the best sample only.
    mask: [B, A] or None (all dims real).
    normalize: standardise each state's Q over its samples first (see
      `policy_improvement_weights`).

  Returns:
    The loss and its metrics; 'policy/weights_ess' is the effective sample
    size 1 / sum_j w_j^2 divided by M (1 = uniform weights, 1/M = one sample).
  """
  weights = policy_improvement_weights(q_values, eta, normalize)  # [B, M]
  log_p = networks_lib.log_prob(policy_logits, sampled_actions, mask)  # [B, M]
  loss = -jnp.mean(jnp.sum(weights * log_p, axis=-1))
  ess = 1.0 / jnp.sum(weights**2, axis=-1) / weights.shape[-1]  # [B]
  return loss, {
      'loss/rl': loss,
      'q/sampled_mean': jnp.mean(q_values),
      'policy/weights_ess': jnp.mean(ess),
  }


def _concat_batch(a, b):
  return jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=0), a, b)


def pac_loss(params: networks_lib.Params, target_params: networks_lib.Params,
             transitions: types.Transition, key: jax.Array,
             networks: networks_lib.PACNetworks,
             config: config_lib.PACConfig,
             alpha: jnp.ndarray) -> Tuple[jnp.ndarray, Metrics]:
  """The PAC objective on a batch of (n-step) transitions.

  Encoder passes: the online network on s, the target network on s and s' (one
  call on the two stacked). The M sampled actions only ever reach the small
  critic decoder.

  Args:
    params: online parameters theta (the ones differentiated).
    target_params: target parameters theta'.
    transitions: observation / next_observation dicts [B, ...], action [B, A]
      in [-1, 1], reward [B], discount [B] = gamma^(n-1) * prod(env discounts)
      as written by Acme's NStepTransitionAdder; the bootstrap factor is
      config.discount * transitions.discount.
    key: randomness for the sampled actions.
    networks: from `networks.make_networks`.
    config: the agent config.
    alpha: BC weight; may be traced (the learner passes config.alpha_at(step)).

  Returns:
    Scalar loss and metrics ('loss/*', 'q/*', 'policy/*', 'alpha').
  """
  obs, next_obs = transitions.observation, transitions.next_observation
  batch = transitions.reward.shape[0]
  num_samples = config.num_sampled_actions
  mask = networks.action_mask(obs)  # [B, A]
  next_mask = networks.action_mask(next_obs)  # [B, A]
  key_policy, key_next = jax.random.split(key)

  latents = networks.encode(params, obs)  # [B, N, D]
  logits = networks.policy_logits(params, latents, obs)  # [B, A, K]
  both_obs = _concat_batch(obs, next_obs)
  target_latents_both = networks.encode(target_params, both_obs)  # [2B, N, D]
  target_logits_both = networks.policy_logits(
      target_params, target_latents_both, both_obs)  # [2B, A, K]
  target_latents = target_latents_both[:batch]
  target_next_latents = target_latents_both[batch:]
  target_logits = target_logits_both[:batch]
  target_next_logits = target_logits_both[batch:]

  # Policy improvement on actions sampled from the (mixed) target policy.
  sampled = networks_lib.sample(
      key_policy, networks_lib.mix_uniform(target_logits, config.uniform_mix),
      mask, num_samples)  # [B, M, A]
  if config.use_online_q_for_policy:
    sampled_q_logits = networks.critic_logits(params, latents, sampled, mask)
  else:
    sampled_q_logits = networks.critic_logits(target_params, target_latents,
                                              sampled, mask)
  sampled_q = networks_lib.q_values(sampled_q_logits, networks.atoms)  # [B, M]
  rl, rl_metrics = rl_loss(logits, sampled, sampled_q, config.eta, mask,
                           config.normalize_advantages)

  bc, bc_metrics = bc_loss(logits, transitions.action, mask)

  # Distributional critic on the data action.
  next_actions = networks_lib.sample(key_next, target_next_logits, next_mask,
                                     num_samples)  # [B, M, A]
  next_q_logits = networks.critic_logits(
      target_params, target_next_latents, next_actions,
      next_mask)  # [B, M, atoms]
  target_probs = critic_target(next_q_logits, transitions.reward,
                               config.discount * transitions.discount,
                               networks.atoms)  # [B, atoms]
  data_q_logits = networks.critic_logits(
      params, latents, transitions.action[:, None, :], mask)[:, 0]  # [B, atoms]
  critic, critic_metrics = critic_loss(data_q_logits, target_probs,
                                       networks.atoms)

  kl = jnp.mean(networks_lib.kl_divergence(target_logits, logits, mask))
  total = (1.0 - alpha) * rl + alpha * bc + config.beta * critic
  if config.kl_to_target_weight > 0.0:
    total = total + config.kl_to_target_weight * kl

  metrics = {
      'loss/total': total,
      'loss/kl': kl,
      'policy/entropy': jnp.mean(networks_lib.entropy(logits, mask)),
      'alpha': jnp.asarray(alpha, jnp.float32),
  }
  metrics.update(rl_metrics)
  metrics.update(bc_metrics)
  metrics.update(critic_metrics)
  return total, metrics
