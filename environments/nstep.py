"""N-step transitions from one episode, exactly as Acme's NStepTransitionAdder.

For an episode with observations s_0..s_T, actions a_0..a_{T-1}, rewards r_t and
discounts d_t (both ensuing from a_t), a transition from s_t spanning m <= n
steps is
  reward   = r_t + g d_t r_{t+1} + ... + g^{m-1} d_t..d_{t+m-2} r_{t+m-1}
  discount = g^{m-1} d_t ... d_{t+m-1}   (the learner applies g once more)
  next_observation = s_{t+m}
with g the agent's discount; action and extras are those of step t.

Which (t, t+m) pairs exist also follows the adder (acme/adders/reverb/
transition.py), in its order: while the first n steps arrive it emits
s_0 -> s_1, s_0 -> s_2, ..., s_0 -> s_n (so s_0 starts min(n, T) transitions),
then one full n-step transition per step, and at the episode end the truncated
ones s_{T-n+1} -> s_T, ..., s_{T-1} -> s_T. That is T + min(n, T) - 1
transitions per episode. The arithmetic is float32 in the adder's order, so the
numbers match the adder bit for bit.
"""

from typing import Dict, Tuple

from acme import types
import numpy as np


def index_pairs(num_steps: int, n_step: int) -> Tuple[np.ndarray, np.ndarray]:
  """Returns (starts [M], ends [M]) of the adder's transitions, in its order.

  Args:
    num_steps: T, the number of actions in the episode (T >= 1).
    n_step: n >= 1.
  """
  if num_steps < 1 or n_step < 1:
    raise ValueError(f'Need num_steps >= 1 and n_step >= 1, got {num_steps}, '
                     f'{n_step}.')
  ends = np.arange(1, num_steps + 1)  # One write per added step.
  starts = np.maximum(ends - n_step, 0)
  # The adder writes these shorter ones when the last step arrives.
  tail_starts = np.arange(starts[-1] + 1, num_steps)
  tail_ends = np.full_like(tail_starts, num_steps)
  return (np.concatenate([starts, tail_starts]),
          np.concatenate([ends, tail_ends]))


def episode_transitions(observations: Dict[str, np.ndarray],
                        actions: np.ndarray, rewards: np.ndarray,
                        discounts: np.ndarray, extras: Dict[str, np.ndarray],
                        n_step: int, discount: float) -> types.Transition:
  """Builds one episode's n-step transitions.

  Args:
    observations: name -> [T+1, ...], s_0..s_T.
    actions: [T, ...], a_t taken in s_t.
    rewards: [T], r_t ensuing from a_t.
    discounts: [T], d_t ensuing from a_t (0 on a true terminal).
    extras: name -> [T, ...], per-action data (e.g. log_prob); may be empty.
    n_step: n >= 1.
    discount: the agent's discount g.

  Returns:
    A `Transition` of arrays with leading dim M = T + min(n, T) - 1.
  """
  pad = lambda x: np.concatenate([x, np.zeros_like(x[:1])])  # [T+1, ...]
  return dataset_transitions(
      observations, pad(actions), pad(rewards), pad(discounts),
      {name: pad(value) for name, value in extras.items()},
      np.asarray([len(rewards)]), n_step, discount)


def dataset_transitions(observations: Dict[str, np.ndarray],
                        actions: np.ndarray, rewards: np.ndarray,
                        discounts: np.ndarray, extras: Dict[str, np.ndarray],
                        episode_lengths: np.ndarray, n_step: int,
                        discount: float) -> types.Transition:
  """The n-step transitions of many episodes at once, in episode order.

  Inputs are RLDS steps of all episodes concatenated: episode e (T_e actions)
  occupies S_e = T_e + 1 rows, s_0..s_T in `observations`; the action, reward,
  discount and extras of its last row are ignored (RLDS leaves them undefined).

  Args:
    observations: name -> [S, ...], S = sum_e (T_e + 1).
    actions: [S, ...]; rewards, discounts: [S]; extras: name -> [S, ...].
    episode_lengths: [E] the T_e, each >= 1.
    n_step: n >= 1.
    discount: the agent's discount g.

  Returns:
    A `Transition` with leading dim sum_e (T_e + min(n, T_e) - 1), equal bit
    for bit to `episode_transitions` applied to each episode in turn.
  """
  lengths = np.asarray(episode_lengths, np.int64)
  offsets = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])  # [E]
  pairs = [index_pairs(int(t), n_step) for t in lengths]
  sizes = [len(p[0]) for p in pairs]
  starts = np.concatenate([p[0] for p in pairs]) + np.repeat(offsets, sizes)
  ends = np.concatenate([p[1] for p in pairs]) + np.repeat(offsets, sizes)
  last = np.repeat(offsets + lengths - 1, sizes)  # Last action row, [M].
  spans = ends - starts  # [M], in 1..n.
  gamma = np.float32(discount)
  rewards = rewards.astype(np.float32)
  discounts = discounts.astype(np.float32)
  n_step_return = rewards[starts].copy()  # [M]
  total_discount = discounts[starts].copy()  # [M]
  for k in range(1, n_step):
    active = k < spans  # [M]
    if not active.any():
      break
    index = np.minimum(starts + k, last)  # Clamped where inactive.
    # Same float32 operations, in the same order, as the adder.
    scaled = total_discount * gamma
    n_step_return = np.where(active, n_step_return + rewards[index] * scaled,
                             n_step_return)
    total_discount = np.where(active, scaled * discounts[index],
                              total_discount)
  return types.Transition(
      observation={name: obs[starts] for name, obs in observations.items()},
      action=actions[starts],
      reward=n_step_return.astype(np.float32),
      discount=total_discount.astype(np.float32),
      next_observation={name: obs[ends] for name, obs in observations.items()},
      extras={name: value[starts] for name, value in extras.items()})
