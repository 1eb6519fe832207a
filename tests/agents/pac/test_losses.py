"""PAC loss: C51 projection, policy-improvement weights, alpha edge cases,
encoder-pass structure, and a critic that learns known values."""

import dataclasses
from typing import Callable, Dict, List, Tuple

from acme import specs
from acme import types
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents.pac import config as config_lib
from agents.pac import losses
from agents.pac import networks as networks_lib

# A 1-D state, 2 action dims, atoms on [-2, 3] with spacing 0.25: small enough
# to compile and train in seconds, wide enough for the tiny MDPs below.
_TINY_NETWORK = config_lib.NetworkConfig(
    embed_dim=32, num_latents=4, num_self_attention_blocks=1, num_heads=2,
    mlp_multiplier=2, critic_hidden=(32,))
_CONFIG = config_lib.PACConfig(
    network=_TINY_NETWORK, num_bins=11, num_atoms=21, v_min=-2.0, v_max=3.0,
    discount=0.5, beta=0.5, eta=0.5, num_sampled_actions=5)
# No critic term and a KL term: the total must not depend on data actions at
# alpha = 0.
_CONFIG_NO_CRITIC = dataclasses.replace(_CONFIG, beta=0.0,
                                        kl_to_target_weight=0.1)
# One batch size everywhere, so every test reuses one compiled loss gradient.
_BATCH = 64
_SPEC = specs.EnvironmentSpec(
    observations={'state': specs.Array((1,), np.float32)},
    actions=specs.BoundedArray((2,), np.float32, -1.0, 1.0),
    rewards=specs.Array((), np.float32),
    discounts=specs.BoundedArray((), np.float32, 0.0, 1.0))


def _transitions(batch: int, seed: int, discount: float = 1.0):
  rng = np.random.default_rng(seed)
  state = jnp.asarray(rng.normal(size=(batch, 1)), jnp.float32)
  next_state = jnp.asarray(rng.normal(size=(batch, 1)), jnp.float32)
  return types.Transition(
      observation={'state': state},
      action=jnp.asarray(rng.uniform(-1, 1, (batch, 2)), jnp.float32),
      reward=jnp.asarray(rng.choice([-1.0, 0.5, 2.0], batch), jnp.float32),
      discount=jnp.full((batch,), discount, jnp.float32),
      next_observation={'state': next_state})


@pytest.fixture(scope='module')
def loss_and_grad() -> Callable:
  """config -> jitted (params, target, transitions, key, alpha) -> value, grad.

  Cached per config so tests share the (slow) compilation.
  """
  cache = {}

  def get(config: config_lib.PACConfig):
    if config not in cache:
      networks = networks_lib.make_networks(_SPEC, config)

      def loss(params, target_params, transitions, key, alpha):
        return losses.pac_loss(params, target_params, transitions, key,
                               networks, config, alpha)

      cache[config] = (networks,
                       jax.jit(jax.value_and_grad(loss, has_aux=True)))
    return cache[config]

  return get


# ----------------------------------------------------------------------------
# Categorical projection.
# ----------------------------------------------------------------------------

_ATOMS = jnp.array([0.0, 1.0, 2.0])


@pytest.mark.parametrize('probs, reward, discount, expected', [
    # A shift by half a spacing splits the mass between neighbours.
    ([1.0, 0.0, 0.0], 0.5, 1.0, [0.5, 0.5, 0.0]),
    ([0.0, 1.0, 0.0], 0.25, 1.0, [0.0, 0.75, 0.25]),
    # Beyond v_max / below v_min: all mass on the edge atom.
    ([0.0, 0.0, 1.0], 5.0, 1.0, [0.0, 0.0, 1.0]),
    ([0.2, 0.3, 0.5], -7.0, 1.0, [1.0, 0.0, 0.0]),
    # discount 0 collapses to the reward, whatever the next distribution.
    ([0.2, 0.3, 0.5], 1.25, 0.0, [0.0, 0.75, 0.25]),
    # Contraction: 0 + 0.5 * z maps {0, 1, 2} to {0, 0.5, 1}.
    ([0.0, 0.4, 0.6], 0.0, 0.5, [0.2, 0.8, 0.0]),
])
def test_categorical_projection_hand_computed(probs, reward, discount,
                                              expected):
  projected = losses.categorical_projection(
      _ATOMS, jnp.array([probs]), jnp.array([reward]), jnp.array([discount]))
  np.testing.assert_allclose(projected, [expected], atol=1e-6)


def test_projection_keeps_mass_and_mean_inside_the_support():
  rng = np.random.default_rng(0)
  atoms = jnp.linspace(-2.0, 3.0, 21)
  probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(16, 21)), jnp.float32))
  rewards = jnp.asarray(rng.uniform(-0.5, 0.5, 16), jnp.float32)
  discounts = jnp.asarray(rng.uniform(0.0, 0.5, 16), jnp.float32)
  projected = losses.categorical_projection(atoms, probs, rewards, discounts)
  np.testing.assert_allclose(projected.sum(-1), 1.0, rtol=1e-5)
  assert (projected >= 0).all()
  # With no clipping, the projection preserves the mean exactly.
  np.testing.assert_allclose(
      projected @ atoms, rewards + discounts * (probs @ atoms), atol=1e-4)


def test_critic_target_is_the_projected_mixture():
  rng = np.random.default_rng(1)
  atoms = jnp.linspace(-2.0, 3.0, 21)
  logits = jnp.asarray(rng.normal(size=(4, 3, 21)),
                       jnp.float32)  # [B, M, atoms]
  rewards = jnp.array([0.0, 0.3, -1.0, 0.7])
  discounts = jnp.array([0.9, 0.0, 0.5, 1.0])
  target = losses.critic_target(logits, rewards, discounts, atoms)
  each = [losses.categorical_projection(atoms, jax.nn.softmax(logits[:, j]),
                                        rewards, discounts) for j in range(3)]
  np.testing.assert_allclose(target, sum(each) / 3, atol=1e-6)


def test_critic_loss_is_cross_entropy():
  atoms = jnp.array([0.0, 1.0, 2.0])
  logits = jnp.log(jnp.array([[0.2, 0.3, 0.5]]))
  target = jnp.array([[0.0, 0.5, 0.5]])
  loss, metrics = losses.critic_loss(logits, target, atoms)
  np.testing.assert_allclose(loss, -(0.5 * np.log(0.3) + 0.5 * np.log(0.5)),
                             rtol=1e-6)
  np.testing.assert_allclose(metrics['q/mean'], 1.3, rtol=1e-6)
  np.testing.assert_allclose(metrics['q/target_mean'], 1.5, rtol=1e-6)


# ----------------------------------------------------------------------------
# Policy terms.
# ----------------------------------------------------------------------------


def test_rl_weights_are_a_softmax_of_q_over_eta():
  rng = np.random.default_rng(2)
  q = rng.normal(size=(3, 7)).astype(np.float32) * 4
  eta = 0.7
  weights = losses.policy_improvement_weights(jnp.asarray(q), eta)
  shifted = np.exp((q - q.max(-1, keepdims=True)) / eta)
  np.testing.assert_allclose(weights, shifted / shifted.sum(-1, keepdims=True),
                             rtol=1e-5, atol=1e-7)
  # Weights are constants: no gradient flows into Q.
  grad = jax.grad(lambda q: losses.policy_improvement_weights(q, eta)[0, 0])(
      jnp.asarray(q))
  np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize('jit', [False, True])
def test_normalized_rl_weights_ignore_each_states_scale_and_offset(jit):
  q = np.array([[0., 1., 2.], [100., 110., 120.]], np.float32)  # [B=2, M=3]
  weights_fn = lambda q: losses.policy_improvement_weights(q, 0.5, True)
  if jit:
    weights_fn = jax.jit(weights_fn)
  weights = np.asarray(weights_fn(jnp.asarray(q)))
  assert weights.shape == (2, 3)
  # Standardised, both rows are (-1.2247, 0, 1.2247): the same weights,
  # softmax of those / 0.5 by hand.
  z = np.array([-1.5, 0., 1.5]) / np.sqrt(1.5)
  expected = np.exp(z / 0.5) / np.exp(z / 0.5).sum()
  np.testing.assert_allclose(weights, [expected, expected], rtol=1e-4)
  # Without it, the second row's spread of 20 makes one sample take it all.
  plain = np.asarray(losses.policy_improvement_weights(jnp.asarray(q), 0.5))
  assert plain[1, 2] > 0.999 and plain[0, 2] < 0.9


def test_rl_loss_matches_a_direct_computation():
  rng = np.random.default_rng(3)
  logits = jnp.asarray(rng.normal(size=(2, 3, 5)), jnp.float32)  # [B, A, K]
  centers = np.linspace(-1, 1, 5)
  idx = rng.integers(0, 5, size=(2, 4, 3))  # [B, M, A]
  actions = jnp.asarray(centers[idx], jnp.float32)
  q = jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)
  mask = jnp.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
  loss, metrics = losses.rl_loss(logits, actions, q, 2.0, mask)

  log_p = np.asarray(jax.nn.log_softmax(logits))
  expected = 0.0
  ess = []
  for b in range(2):
    w = np.exp(np.asarray(q[b]) / 2.0)
    w /= w.sum()
    ess.append(1.0 / np.sum(w**2) / 4)
    for j in range(4):
      lp = sum(log_p[b, d, idx[b, j, d]] * float(mask[b, d]) for d in range(3))
      expected -= w[j] * lp / 2
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(metrics['policy/weights_ess'], np.mean(ess),
                             rtol=1e-5)
  np.testing.assert_allclose(metrics['q/sampled_mean'], np.mean(q), rtol=1e-6)


def test_ess_is_one_for_equal_q_and_one_over_m_for_a_dominant_sample():
  logits = jnp.zeros((1, 1, 3))
  actions = jnp.zeros((1, 4, 1))
  _, flat = losses.rl_loss(logits, actions, jnp.zeros((1, 4)), 1.0, None)
  np.testing.assert_allclose(flat['policy/weights_ess'], 1.0, rtol=1e-6)
  _, peaked = losses.rl_loss(logits, actions,
                             jnp.array([[100.0, 0.0, 0.0, 0.0]]), 1.0, None)
  np.testing.assert_allclose(peaked['policy/weights_ess'], 0.25, rtol=1e-5)


def test_bc_loss_is_negative_mean_log_prob():
  logits = jnp.log(jnp.array([[[0.1, 0.9]], [[0.6, 0.4]]]))  # K=2: {-1, 1}.
  actions = jnp.array([[0.7], [-0.2]])  # -> bins 1 and 0.
  loss, metrics = losses.bc_loss(logits, actions, jnp.ones((2, 1)))
  np.testing.assert_allclose(loss, -(np.log(0.9) + np.log(0.6)) / 2, rtol=1e-6)
  assert metrics['loss/bc'] is loss


# ----------------------------------------------------------------------------
# The total loss.
# ----------------------------------------------------------------------------

_METRIC_KEYS = {
    'loss/total', 'loss/bc', 'loss/rl', 'loss/critic', 'loss/kl', 'q/mean',
    'q/sampled_mean', 'q/target_mean', 'policy/entropy', 'policy/weights_ess',
    'alpha'}


def test_alpha_one_is_bc_plus_critic_exactly(loss_and_grad, make_params):
  networks, value_and_grad = loss_and_grad(_CONFIG)
  params = make_params(networks, 0)
  target = make_params(networks, 1)
  (total, metrics), grads = value_and_grad(
      params, target, _transitions(_BATCH, 0), jax.random.PRNGKey(0), 1.0)
  assert set(metrics) == _METRIC_KEYS
  assert all(np.isfinite(v) for v in metrics.values())
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  # Bit-exact: (1 - 1) * rl + 1 * bc + beta * critic.
  assert float(total) == float(
      np.float32(metrics['loss/bc']) +
      np.float32(_CONFIG.beta) * np.float32(metrics['loss/critic']))
  assert float(metrics['loss/rl']) > 0.0  # Still reported.
  assert float(metrics['alpha']) == 1.0
  # And a mixed alpha combines the reported terms.
  (total_mixed, m), _ = value_and_grad(
      params, target, _transitions(_BATCH, 0), jax.random.PRNGKey(0), 0.25)
  np.testing.assert_allclose(
      total_mixed, 0.75 * m['loss/rl'] + 0.25 * m['loss/bc'] +
      _CONFIG.beta * m['loss/critic'], rtol=1e-6)


def test_alpha_zero_has_no_bc_contribution(loss_and_grad, make_params):
  """With beta = 0 only BC could see the data actions: at alpha = 0 neither the
  loss nor its gradient may change when they do (at alpha = 0.5 both must)."""
  networks, value_and_grad = loss_and_grad(_CONFIG_NO_CRITIC)
  params = make_params(networks, 0)
  target = make_params(networks, 1)
  data = _transitions(_BATCH, 0)
  other = data._replace(action=-data.action)
  key = jax.random.PRNGKey(0)

  def run(transitions, alpha):
    (total, _), grads = value_and_grad(params, target, transitions, key, alpha)
    return total, grads

  for alpha, same in ((0.0, True), (0.5, False)):
    (total_a, grads_a), (total_b, grads_b) = run(data, alpha), run(other, alpha)
    grads_equal = all(
        np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)))
    assert (float(total_a) == float(total_b)) == same, alpha
    assert grads_equal == same, alpha


def test_kl_term_is_added_with_its_weight(loss_and_grad, make_params):
  networks, value_and_grad = loss_and_grad(_CONFIG_NO_CRITIC)
  (total, m), _ = value_and_grad(
      make_params(networks, 0), make_params(networks, 1),
      _transitions(_BATCH, 2),
      jax.random.PRNGKey(1), 0.3)
  assert float(m['loss/kl']) > 0.0
  np.testing.assert_allclose(
      total, 0.7 * m['loss/rl'] + 0.3 * m['loss/bc'] + 0.1 * m['loss/kl'],
      rtol=1e-6)


def test_terminal_transitions_bootstrap_nothing(loss_and_grad, make_params):
  """transition.discount = 0 (terminal, Acme convention): target = reward.

  Rewards are on atoms, so the projected target's mean is exactly the reward.
  """
  networks, value_and_grad = loss_and_grad(_CONFIG)
  data = _transitions(_BATCH, 3, discount=0.0)
  (_, m), _ = value_and_grad(make_params(networks, 0), make_params(networks, 1),
                             data, jax.random.PRNGKey(0), 0.5)
  np.testing.assert_allclose(m['q/target_mean'], np.mean(data.reward),
                             rtol=1e-6)


Call = Tuple[str, str, Tuple[int, ...]]


def _record_calls(config) -> List[Call]:
  """Traces pac_loss (no compilation) and records every network call.

  Each record is (function, 'online' | 'target', shape of its main input).
  """
  networks = networks_lib.make_networks(_SPEC, config)
  calls: List[Call] = []
  which: Dict[int, str] = {}

  def wrap(name, fn, shape_of):
    def wrapped(params, *args):
      calls.append((name, which[id(params)], shape_of(*args)))
      return fn(params, *args)
    return wrapped

  recording = dataclasses.replace(
      networks,
      encode=wrap('encode', networks.encode,
                  lambda obs: obs['state'].shape),
      policy_logits=wrap('policy', networks.policy_logits,
                         lambda latents, obs: latents.shape[:1]),
      critic_logits=wrap('critic', networks.critic_logits,
                         lambda latents, actions, mask=None: actions.shape))

  def loss(params, target_params):
    which[id(params)] = 'online'
    which[id(target_params)] = 'target'
    return losses.pac_loss(params, target_params, _transitions(8, 0),
                           jax.random.PRNGKey(0), recording, config, 0.5)

  shapes = jax.eval_shape(networks.init, jax.random.PRNGKey(0))
  jax.eval_shape(loss, shapes, shapes)
  return calls


def test_encoder_runs_once_per_state_never_per_sampled_action():
  calls = _record_calls(_CONFIG)
  m = _CONFIG.num_sampled_actions
  encodes = [c for c in calls if c[0] == 'encode']
  # Online on s; target on s and s' stacked. Nothing of size M.
  assert encodes == [('encode', 'online', (8, 1)),
                     ('encode', 'target', (16, 1))]
  critics = sorted(c for c in calls if c[0] == 'critic')
  assert critics == sorted([
      ('critic', 'online', (8, 1, 2)),  # Data actions.
      ('critic', 'target', (8, m, 2)),  # Q of the RL term's samples.
      ('critic', 'target', (8, m, 2)),  # Next actions for the critic target.
  ])


def test_online_q_switch_scores_samples_with_the_online_critic():
  config = dataclasses.replace(_CONFIG, use_online_q_for_policy=True)
  m = config.num_sampled_actions
  critics = sorted(c for c in _record_calls(config) if c[0] == 'critic')
  assert critics == sorted([
      ('critic', 'online', (8, 1, 2)),
      ('critic', 'online', (8, m, 2)),
      ('critic', 'target', (8, m, 2)),
  ])


# ----------------------------------------------------------------------------
# Learning.
# ----------------------------------------------------------------------------


def _tiny_mdp_batch(rng: np.random.Generator, batch: int) -> types.Transition:
  """Two tiny MDPs in one batch, told apart by the state value.

  * state +1 / -1: absorbing self-loops with reward 1 / 0 whatever the action;
    with discount 0.5, Q* = 2 / 0.
  * state +2 / -2: one-step (terminal) bandit with reward sign(state) * a[0];
    Q*(s, a) = sign(s) * a[0].
  """
  state = rng.choice([1.0, -1.0, 2.0, -2.0], size=batch).astype(np.float32)
  action = rng.uniform(-1, 1, (batch, 2)).astype(np.float32)
  loop = np.abs(state) == 1.0
  reward = np.where(loop, state > 0, np.sign(state) * action[:, 0])
  obs = {'state': jnp.asarray(state[:, None])}
  return types.Transition(
      observation=obs, action=jnp.asarray(action),
      reward=jnp.asarray(reward, jnp.float32),
      discount=jnp.asarray(loop, jnp.float32), next_observation=obs)


def test_critic_learns_known_values_on_tiny_mdps(loss_and_grad, make_params):
  """300 Adam steps of pac_loss (alpha = 1), hard target copy every 20 steps.

  Tolerance: |Q - Q*| < 5% of the atom range (0.25) on every state and on a
  grid of actions; seen here: about 0.06.
  """
  networks, value_and_grad = loss_and_grad(_CONFIG)  # Compiled once, shared.
  optimizer = optax.adam(3e-3)

  @jax.jit
  def apply_update(params, opt_state, grads):
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state

  params = make_params(networks, 0)
  target = params
  opt_state = optimizer.init(params)
  rng = np.random.default_rng(0)
  key = jax.random.PRNGKey(1)
  for i in range(300):
    key, step_key = jax.random.split(key)
    (_, metrics), grads = value_and_grad(
        params, target, _tiny_mdp_batch(rng, _BATCH), step_key, 1.0)
    params, opt_state = apply_update(params, opt_state, grads)
    if (i + 1) % 20 == 0:
      target = params
  assert np.isfinite(float(metrics['loss/total']))

  grid = np.linspace(-1.0, 1.0, 5, dtype=np.float32)
  actions = np.stack([grid, -grid], axis=-1)  # [5, 2]
  states = np.array([1.0, -1.0, 2.0, -2.0], np.float32)
  obs = {'state': jnp.asarray(states[:, None])}
  latents = networks.encode(params, obs)
  q = networks_lib.q_values(
      networks.critic_logits(params, latents,
                             jnp.broadcast_to(actions, (4, 5, 2))),
      networks.atoms)  # [4 states, 5 actions]
  q_star = np.stack([np.full(5, 2.0), np.zeros(5), grid, -grid])
  error = np.abs(np.asarray(q) - q_star)
  tolerance = 0.05 * (_CONFIG.v_max - _CONFIG.v_min)
  print(f'tiny MDPs: max |Q - Q*| = {error.max():.3f} (tolerance {tolerance})')
  assert error.max() < tolerance, (
      f'max |Q - Q*| = {error.max():.3f} >= {tolerance}\nQ=\n{np.asarray(q)}')
