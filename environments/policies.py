"""Behaviour policies that generate the offline datasets, by quality level.

Every policy is called as `policy(timestep_or_observation, rng)` and returns
`(action, log_prob)`: action float32 [A] in [-1, 1] (the normalised action space
of `suite.make_environment`), and the exact log-density of that action under the
policy (float), or None for a policy without one (none here lacks it).

Quality levels (the `--policy` flag of `python -m environments.generate`):
  * 'random': uniform on [-1, 1]^A, every task. Its density is (1/2)^A, so
    log_prob = A * log(1/2) for every action.
  * 'expert': the task's scripted controller plus truncated-Gaussian noise
    (sigma 0.1), for the tasks that have one (cartpole_swingup,
    cartpole_balance); for other tasks, the task's learned teacher
    (`environments.teacher`: a SAC policy trained online, sampled), where
    its files are committed.
  * 'medium': with probability 0.5 a uniform random action, otherwise the
    controller plus truncated-Gaussian noise with sigma 0.5; or the
    teacher's snapshot at about a third of its final return.
  * 'mixed', 'medium_replay', 'medium_expert': not policies but dataset
    compositions, D4RL's names: episodes cycle through expert, medium,
    random; random, medium; medium, expert (see `behaviour_policies`).

Noise is a Gaussian *truncated* to [-1, 1] (sampled by inverse CDF), not a
clipped one: a clipped Gaussian puts point masses on the bounds and has no density
there, whereas the truncated one has an exact density everywhere in the box, so
recorded log-probs are exact for every action, at the bounds too.
"""

import math
from typing import (Any, Callable, Dict, List, Mapping, Optional, Protocol,
                    Tuple, Union)

import dm_env
from dm_env import specs
import numpy as np
from scipy import special

from environments import errors
from environments import suite
from environments import teacher

Observation = Mapping[str, np.ndarray]
PolicyOutput = Tuple[np.ndarray, Optional[float]]  # (action [A], log_prob)
Controller = Callable[[Observation], np.ndarray]

RANDOM = 'random'
EXPERT = 'expert'
MEDIUM = 'medium'
MIXED = 'mixed'
MEDIUM_REPLAY = 'medium_replay'
MEDIUM_EXPERT = 'medium_expert'
# Dataset compositions: episode i of one uses its policies[i % len].
# medium_replay stands in for D4RL's (the teacher's replay up to its medium
# snapshot, not kept): random and medium episodes in turn.
COMPOSITIONS = {MIXED: (EXPERT, MEDIUM, RANDOM),
                MEDIUM_REPLAY: (RANDOM, MEDIUM),
                MEDIUM_EXPERT: (MEDIUM, EXPERT)}

# Noise per controller-based quality level: (Gaussian sigma, P(uniform action)).
# Measured on cartpole_swingup (mean return, 1000 steps): expert ~855, medium
# ~440, random ~25; tests/environments/test_policies.py checks the ordering.
_NOISE = {
    EXPERT: (0.1, 0.0),
    MEDIUM: (0.5, 0.5),
}


class Policy(Protocol):
  """The interface every behaviour policy implements."""

  name: str  # The quality level: 'random', 'expert' or 'medium'.
  description: str  # Human-readable, stored in dataset metadata.

  def __call__(self, timestep_or_observation: Union[dm_env.TimeStep,
                                                    Observation],
               rng: np.random.Generator) -> PolicyOutput:
    """Returns (action float32 [A] in [-1, 1], log_prob or None)."""


def _controllers() -> Dict[str, Tuple[Callable[[], Controller], str]]:
  """Task -> (controller factory, description); imported on demand."""
  from environments import cartpole_controller  # pylint: disable=g-import-not-at-top
  cartpole = (cartpole_controller.CartpoleController,
              'energy-shaping swing-up + LQR balance (from the MuJoCo model)')
  return {'cartpole_swingup': cartpole, 'cartpole_balance': cartpole}


def _observation(timestep_or_observation: Union[dm_env.TimeStep, Observation]
                 ) -> Observation:
  if isinstance(timestep_or_observation, dm_env.TimeStep):
    return timestep_or_observation.observation
  return timestep_or_observation


class UniformRandomPolicy:
  """Uniform on [-1, 1]^A; log_prob = A * log(1/2), the density of that box."""

  name = RANDOM
  description = 'uniform random on [-1, 1]^A'

  def __init__(self, action_spec: specs.BoundedArray):
    self._shape = action_spec.shape
    self._log_prob = float(np.prod(self._shape)) * math.log(0.5)

  def __call__(self, timestep_or_observation: Any,
               rng: np.random.Generator) -> PolicyOutput:
    del timestep_or_observation  # Ignores the state by definition.
    action = rng.uniform(-1.0, 1.0, self._shape).astype(np.float32)  # [A]
    return action, self._log_prob


def _truncated_normal_log_prob(x: np.ndarray, mean: np.ndarray,
                               sigma: float) -> float:
  """Log-density of N(mean, sigma^2) truncated to [-1, 1]^A at x (all [A])."""
  z = (x - mean) / sigma
  mass = (special.ndtr((1.0 - mean) / sigma)
          - special.ndtr((-1.0 - mean) / sigma))  # [A], mass inside the box
  return float(np.sum(-0.5 * z**2 - math.log(sigma * math.sqrt(2 * math.pi))
                      - np.log(mass)))


class NoisyControllerPolicy:
  """A controller with truncated-Gaussian noise, sometimes replaced by uniform.

  With probability `random_prob` the action is uniform on [-1, 1]^A, otherwise
  it is drawn from N(controller(obs), sigma^2) truncated to [-1, 1]^A. The
  log_prob is that of the mixture, exact:
    log(random_prob * (1/2)^A + (1 - random_prob) * truncated_normal(action)).
  """

  def __init__(self, name: str, controller: Controller, sigma: float,
               random_prob: float, description: str):
    self.name = name
    self.description = (f'{description}; truncated-Gaussian noise sigma='
                        f'{sigma}, uniform random action with p={random_prob}')
    self._controller = controller
    self._sigma = sigma
    self._random_prob = random_prob

  def __call__(self, timestep_or_observation: Union[dm_env.TimeStep,
                                                    Observation],
               rng: np.random.Generator) -> PolicyOutput:
    mean = np.clip(self._controller(_observation(timestep_or_observation)),
                   -1.0, 1.0).astype(np.float64)  # [A]
    if rng.uniform() < self._random_prob:
      action = rng.uniform(-1.0, 1.0, mean.shape)
    else:
      low = special.ndtr((-1.0 - mean) / self._sigma)  # CDF at the bounds.
      high = special.ndtr((1.0 - mean) / self._sigma)
      u = low + rng.uniform(size=mean.shape) * (high - low)
      action = mean + self._sigma * special.ndtri(u)
    action = np.clip(action, -1.0, 1.0).astype(np.float32)  # Rounding only.
    # The density is evaluated at the float32 action actually recorded.
    log_prob = _truncated_normal_log_prob(action.astype(np.float64), mean,
                                          self._sigma)
    if self._random_prob > 0:
      log_prob = float(np.logaddexp(
          math.log(self._random_prob) + action.size * math.log(0.5),
          math.log1p(-self._random_prob) + log_prob))
    return action, log_prob


def list_policies(task: str) -> List[str]:
  """Policy names (quality levels) available for `task`, compositions
  ('mixed', ...) included."""
  suite.parse_task(task)  # Raises UnknownTaskError.
  if task in _controllers() or len(teacher.available(task)) == len(
      teacher.LEVELS):
    return [EXPERT, MEDIUM, RANDOM, MIXED, MEDIUM_REPLAY, MEDIUM_EXPERT]
  return [RANDOM]


def check_policy(name: str, task: str) -> None:
  """Raises unless `name` (a policy or a composition) is available for
  `task`.

  Raises:
    UnknownTaskError: if `task` does not exist.
    UnknownPolicyError: if `name` is not available for `task`.
  """
  available = list_policies(task)
  if name not in available:
    raise errors.UnknownPolicyError(
        f'No policy {name!r} for task {task!r}; available: '
        f'{", ".join(available)}. All but random need a scripted '
        f'controller ({", ".join(sorted(_controllers()))}) or learned '
        f'teachers in {teacher.DIRECTORY} (python -m '
        'environments.train_teacher makes them).')


def make_policy(name: str, task: str,
                action_spec: specs.BoundedArray) -> Policy:
  """Builds one behaviour policy ('random', 'expert' or 'medium') for `task`.

  Raises:
    UnknownTaskError: if `task` does not exist.
    UnknownPolicyError: if `name` is not available for `task`, or is a
      composition ('mixed', ...)
      (a dataset composition: see `behaviour_policies`).
  """
  check_policy(name, task)
  if name in COMPOSITIONS:
    raise errors.UnknownPolicyError(
        f'{name!r} is a dataset composition, not a single policy; use '
        'behaviour_policies().')
  if name == RANDOM:
    return UniformRandomPolicy(action_spec)
  if task not in _controllers():
    return teacher.TeacherPolicy(teacher.path(task, name), name)
  factory, description = _controllers()[task]
  sigma, random_prob = _NOISE[name]
  return NoisyControllerPolicy(name, factory(), sigma, random_prob, description)


def behaviour_policies(name: str, task: str,
                       action_spec: specs.BoundedArray) -> List[Policy]:
  """Policies for a dataset; episode i is generated by `result[i % len]`.

  A composition gives its policies (`COMPOSITIONS`: 'mixed' gives
  [expert, medium, random]); any other name a single policy.
  """
  check_policy(name, task)
  if name in COMPOSITIONS:
    return [make_policy(n, task, action_spec) for n in COMPOSITIONS[name]]
  return [make_policy(name, task, action_spec)]
