"""Offline PAC in one process: uniform batches of an in-memory dataset, the
learner, and evaluation on the real environment.

No Reverb and no Launchpad: what a sweep of many short runs on one machine
needs (`benchmarks/defaults_sweep.py`), and what the learning tests train
with. The launchers' offline mode serves the same n-step transitions from a
Reverb table instead; the learner is the same.
"""

from typing import Callable, Iterator, Optional

from acme import types
from acme.utils import loggers
import jax
import numpy as np

from agents.pac import acting
from agents.pac import config as config_lib
from agents.pac import learning
from agents.pac import networks as networks_lib


def uniform_batches(transitions: types.Transition, batch_size: int,
                    seed: int) -> Iterator[types.Transition]:
  """Endless uniform samples (with replacement) of in-memory transitions:
  [batch_size, ...] slices of every [N, ...] field."""
  rng = np.random.default_rng(seed)
  size = transitions.reward.shape[0]
  while True:
    index = rng.integers(0, size, batch_size)  # [batch_size]
    yield jax.tree.map(lambda x, i=index: x[i], transitions)


def make_learner(networks: networks_lib.PACNetworks,
                 config: config_lib.PACConfig,
                 transitions: types.Transition,
                 logger: Optional[loggers.Logger] = None
                 ) -> learning.PACLearner:
  """A learner on uniform batches of `transitions`, seeded by config.seed."""
  return learning.PACLearner(
      networks, config, jax.random.PRNGKey(config.seed),
      uniform_batches(transitions, config.batch_size, config.seed),
      logger=logger or loggers.NoOpLogger())


def train(learner: learning.PACLearner, steps: int) -> None:
  """Steps `learner` until it has made `steps` SGD steps in all."""
  while learner.num_steps < steps:
    learner.step(max_steps=steps - learner.num_steps)


def evaluate(networks: networks_lib.PACNetworks,
             config: config_lib.PACConfig, params: networks_lib.Params,
             make_environment: Callable[[int], object], mode: str,
             episodes: int, seed: int,
             on_step: Optional[Callable[[object], None]] = None
             ) -> np.ndarray:
  """Undiscounted returns [episodes] of whole episodes acting by `mode`
  (one of config.POLICY_MODES, at config.eval_temperature) on
  `make_environment(seed)`; `on_step` sees every observation the policy acts
  on (what it does, not just how well)."""
  policy = jax.jit(acting.make_policy(networks, config, mode,
                                      config.eval_temperature))
  environment = make_environment(seed)
  key = jax.random.PRNGKey(seed)
  returns = []
  for _ in range(episodes):
    timestep = environment.reset()
    total = 0.0
    while not timestep.last():
      key, step_key = jax.random.split(key)
      if on_step is not None:
        on_step(timestep.observation)
      observation = jax.tree.map(lambda x: x[None], timestep.observation)
      action = np.asarray(policy(params, step_key, observation))[0]  # [A]
      timestep = environment.step(action)
      total += timestep.reward
    returns.append(total)
  return np.asarray(returns)


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
  """G_t = sum_k discount^k r_{t+k} to the episode's end: [T] -> [T]."""
  returns = np.zeros(len(rewards), np.float64)
  total = 0.0
  for t in range(len(rewards) - 1, -1, -1):
    total = rewards[t] + discount * total
    returns[t] = total
  return returns


def critic_vs_returns(networks: networks_lib.PACNetworks,
                      params: networks_lib.Params, episodes,
                      discount: float, margin: int) -> dict:
  """How the critic's Q(s_t, a_t) on the data compares with the data's own
  discounted returns G_t, over the first T - `margin` steps of each episode
  (later G_t are cut short by the episode's end).

  Returns {'rank_correlation': Spearman's rho between Q and G (1 = the
  critic orders the data's (state, action) pairs as their returns do),
  'bias': mean(Q - G), 'pairs': how many}.
  """
  q_all, g_all = [], []
  q_fn = jax.jit(lambda p, obs, act: networks_lib.q_values(
      networks.critic_logits(p, networks.encode(p, obs), act[:, None, :],
                             networks.action_mask(obs)),
      networks.atoms)[:, 0])  # [T]
  for episode in episodes:
    steps = episode['steps']
    length = len(steps['reward']) - 1  # The last row holds no action.
    keep = max(length - margin, 0)
    if not keep:
      continue
    observation = jax.tree.map(lambda x: x[:keep], steps['observation'])
    q_all.append(np.asarray(q_fn(params, observation,
                                 steps['action'][:keep])))
    g_all.append(discounted_returns(steps['reward'][:length], discount)[:keep])
  q, g = np.concatenate(q_all), np.concatenate(g_all)  # [pairs]
  rank = lambda x: np.argsort(np.argsort(x)).astype(np.float64)
  return {'rank_correlation': float(np.corrcoef(rank(q), rank(g))[0, 1]),
          'bias': float(np.mean(q - g)), 'pairs': int(len(q))}


def critic_action_gap(networks: networks_lib.PACNetworks,
                      params: networks_lib.Params, episodes,
                      minimum: np.ndarray, maximum: np.ndarray,
                      num_random: int = 8, seed: int = 0) -> dict:
  """Whether the critic tells actions apart in a state, not only states.

  A critic can rank the data's (state, action) pairs by their returns
  (`critic_vs_returns`) while ignoring the action; then neither Q-filtered
  acting nor the policy improvement it drives can pick better actions. For
  every step of `episodes` with an action, Q(s, a) is read for the data's
  action and `num_random` actions drawn uniformly in [minimum, maximum].

  Returns {'data_above_random': the fraction of (state, random action)
  pairs the data's action beats (0.5: the critic cannot tell the data's
  actions from random ones), 'action_spread': the mean over states of the
  std of Q over their random actions, 'state_spread': the std over states of
  the mean Q of their random actions, 'states': how many}.
  """
  rng = np.random.default_rng(seed)
  q_fn = jax.jit(lambda p, obs, act: networks_lib.q_values(
      networks.critic_logits(p, networks.encode(p, obs), act,
                             networks.action_mask(obs)),
      networks.atoms))  # [T, 1 + num_random]
  data_q, random_q = [], []
  for episode in episodes:
    steps = episode['steps']
    length = len(steps['reward']) - 1  # The last row holds no action.
    if not length:
      continue
    observation = jax.tree.map(lambda x: x[:length], steps['observation'])
    action = np.asarray(steps['action'][:length], np.float32)  # [T, A]
    drawn = rng.uniform(minimum, maximum, size=(
        length, num_random) + action.shape[1:]).astype(np.float32)
    q = np.asarray(q_fn(params, observation, np.concatenate(
        [action[:, None], drawn], axis=1)))  # [T, 1 + num_random]
    data_q.append(q[:, 0])
    random_q.append(q[:, 1:])
  data, drawn_q = np.concatenate(data_q), np.concatenate(random_q)
  return {'data_above_random': float(np.mean(data[:, None] > drawn_q)),
          'action_spread': float(np.mean(np.std(drawn_q, axis=1))),
          'state_spread': float(np.std(np.mean(drawn_q, axis=1))),
          'states': int(len(data))}
