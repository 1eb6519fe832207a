"""Learned behaviour policies ("teachers") for tasks without a scripted one.

A teacher is a snapshot of an online SAC agent's policy (trained by
`python -m environments.train_teacher`, Acme's SAC): a ReLU MLP over the
observation's entries concatenated in sorted-key order (as Acme's
`ConcatObservationWrapper`), then a tanh-Normal head. Its parameters are a
small `.npz` in `environments/teachers/` (`<task>_<level>.npz`, level
'medium' or 'expert'), committed, so any machine regenerates the same
datasets: the forward pass here is NumPy only (no JAX in the dataset
workers), in float64.

A teacher acts like the behaviour policies of `environments.policies`:
`policy(timestep, rng) -> (action [A], log_prob)`, sampling its tanh-Normal
(the exact log-density of the sampled action, tanh's Jacobian included);
`mode(observation)` is its deterministic action.
"""

import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import dm_env
import numpy as np

DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         'teachers')
LEVELS = ('medium', 'expert')
_MIN_SCALE = 1e-3  # Acme's NormalTanhDistribution adds it to the scale.


def path(task: str, level: str, directory: Optional[str] = None) -> str:
  """The file of `task`'s `level` teacher (in `DIRECTORY` by default)."""
  return os.path.join(directory or DIRECTORY, f'{task}_{level}.npz')


def available(task: str, directory: Optional[str] = None) -> List[str]:
  """The teacher levels there are files for, of `task`."""
  return [level for level in LEVELS
          if os.path.exists(path(task, level, directory))]


def flatten_observation(observation: Mapping[str, np.ndarray]) -> np.ndarray:
  """The entries of `observation` in sorted-key order, concatenated [D]
  (the order of Acme's ConcatObservationWrapper, which SAC trained on)."""
  return np.concatenate([np.atleast_1d(np.asarray(observation[key])).ravel()
                         for key in sorted(observation)])


def save(file: str, params: Mapping[str, Mapping[str, np.ndarray]],
         metadata: Mapping[str, Any]) -> None:
  """Writes SAC policy parameters (Haiku's {module: {w, b}}) and metadata
  to `file`, whole or not at all."""
  arrays = {f'{module}|{name}': np.asarray(value, np.float32)
            for module, values in params.items()
            for name, value in values.items()}
  arrays['metadata'] = np.array(json.dumps(dict(metadata), sort_keys=True))
  temporary = file + '.tmp.npz'
  np.savez_compressed(temporary, **arrays)
  os.replace(temporary, file)


class TeacherPolicy:
  """A saved SAC policy as a behaviour policy.

  Args:
    file: the parameters (`save`'s format).
    name: the quality level it stands for ('medium', 'expert').
  """

  def __init__(self, file: str, name: str):
    with np.load(file) as arrays:
      self.metadata: Dict[str, Any] = json.loads(str(arrays['metadata']))
      params = {key: arrays[key].astype(np.float64) for key in arrays.files
                if key != 'metadata'}
    modules = sorted({key.split('|')[0] for key in params})
    hidden = sorted((m for m in modules if not m.startswith('Normal')),
                    key=_layer_index)
    self._layers = [(params[f'{m}|w'], params[f'{m}|b']) for m in hidden]
    head = sorted((m for m in modules if m.startswith('Normal')),
                  key=_layer_index)
    (self._loc, self._scale) = [(params[f'{m}|w'], params[f'{m}|b'])
                                for m in head]
    self.name = name
    self.description = (
        f'SAC teacher {os.path.basename(file)}: step '
        f'{self.metadata.get("step")}, evaluation return '
        f'{self.metadata.get("return")}')

  def _head(self, observation: Mapping[str, np.ndarray]
            ) -> Tuple[np.ndarray, np.ndarray]:
    """(loc, scale) of the pre-tanh Normal, both [A]."""
    x = flatten_observation(observation).astype(np.float64)  # [D]
    for w, b in self._layers:
      x = np.maximum(x @ w + b, 0.0)  # [H]
    loc = x @ self._loc[0] + self._loc[1]  # [A]
    scale = np.logaddexp(0.0, x @ self._scale[0] + self._scale[1]) + _MIN_SCALE
    return loc, scale

  def mode(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
    """The deterministic action tanh(loc), float32 [A]."""
    loc, _ = self._head(observation)
    return np.tanh(loc).astype(np.float32)

  def __call__(self, timestep_or_observation: Union[dm_env.TimeStep,
                                                    Mapping[str, np.ndarray]],
               rng: np.random.Generator) -> Tuple[np.ndarray, float]:
    observation = (timestep_or_observation.observation
                   if isinstance(timestep_or_observation, dm_env.TimeStep)
                   else timestep_or_observation)
    loc, scale = self._head(observation)
    u = loc + scale * rng.standard_normal(loc.shape)  # [A], pre-tanh.
    # log N(u; loc, scale) - sum log(1 - tanh(u)^2), the latter written
    # stably as 2 (log 2 - u - softplus(-2u)).
    log_normal = np.sum(-0.5 * ((u - loc) / scale) ** 2 - np.log(scale)
                        - 0.5 * math.log(2 * math.pi))
    log_jacobian = np.sum(2.0 * (math.log(2.0) - u - np.logaddexp(0.0, -2 * u)))
    return np.tanh(u).astype(np.float32), float(log_normal - log_jacobian)


def evaluate(policy: 'TeacherPolicy', task: str, episodes: int,
             seed: int) -> float:
  """Mean return of `policy`'s deterministic action over `episodes`."""
  from environments import suite  # pylint: disable=g-import-not-at-top
  environment = suite.make_environment(task, seed=seed)
  returns = []
  for _ in range(episodes):
    timestep = environment.reset()
    total = 0.0
    while not timestep.last():
      timestep = environment.step(policy.mode(timestep.observation))
      total += float(timestep.reward)
    returns.append(total)
  return float(sum(returns) / len(returns))


def choose(evals: List[dict]) -> Dict[str, dict]:
  """The expert (the last snapshot) and the medium (the snapshot whose
  score is closest to a third of the expert's; the earlier one on a tie)."""
  expert = evals[-1]
  target = expert['return'] / 3
  medium = min(evals[:-1] or evals,
               key=lambda e: (abs(e['return'] - target), e['step']))
  return {'medium': medium, 'expert': expert}


def _layer_index(module: str) -> int:
  """Haiku numbers a module's linears `linear`, `linear_1`, ...; the MLP's
  are `mlp/~/linear_0`, `mlp/~/linear_1`, ..."""
  last = module.rsplit('linear', 1)[-1].lstrip('_')
  return int(last) if last else 0
