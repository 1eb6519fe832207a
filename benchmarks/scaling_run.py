"""One run of the scaling sweep: a model size and a method on a fixed dataset.

The run trains the package's `PACLearner` (uniform batches from the dataset's
n-step transitions in memory) up to the largest compute budget of the sweep
and evaluates the policy when the training compute reaches each budget. The
learning rate is constant and the data order fixed by the seed, so the run
at budget C is exactly the first C / (FLOPs per step) steps of the run at the
largest budget: one run per (size, method, seed) gives every budget's result.

Resumable: after each budget's evaluation the learner's state, the batch
generator's state and the curve so far go to one checkpoint file (written
whole or not at all); a restarted run continues from there, bit for bit.
"""

import dataclasses
import json
import os
import pickle
import time
from typing import Any, Dict, Iterator, List, Tuple

from acme import types
from acme.utils import loggers
import jax
import numpy as np

import environments
from agents.pac import config as pac_config
from agents.pac import learning
from agents.pac import networks as networks_lib
from launchers import config as run_config_lib
from launchers import main_job
from launchers import nodes


def _rung(width: int, latents: int, blocks: int,
          heads: int) -> pac_config.NetworkConfig:
  """A ladder size; the critic's hidden layer is twice the width."""
  return pac_config.NetworkConfig(
      embed_dim=width, num_latents=latents, num_self_attention_blocks=blocks,
      num_heads=heads, critic_hidden=(2 * width,))


# The CPU ladder: width, latents, depth and heads grow together, as in the
# presets (which a GPU run names instead: 32M, 100M, ...). Parameter counts
# on cartpole_swingup (5 observation scalars, 1 action): 18k, 37k, 61k
# ('m' is the main job's network), 159k, 276k, 716k.
LADDER: Dict[str, pac_config.NetworkConfig] = {
    'xs': _rung(16, 4, 1, 1),
    's': _rung(24, 8, 1, 2),
    'm': _rung(32, 8, 1, 2),
    'ml': _rung(48, 12, 2, 4),
    'l': _rung(64, 16, 2, 4),
    'xl': _rung(96, 16, 3, 4),
}
METHODS = ('pac', 'bc')


def network_config(size: str) -> pac_config.NetworkConfig:
  """A ladder size or an agent preset ('test', '32M', ... '1B')."""
  if size in LADDER:
    return LADDER[size]
  if size in pac_config.PRESETS:
    return pac_config.PRESETS[size]
  raise ValueError(f'unknown size {size!r}: choose from the ladder '
                   f'{sorted(LADDER)} or the presets '
                   f'{sorted(pac_config.PRESETS)}')


def agent_config(method: str, size: str, seed: int,
                 compute_dtype: str = 'float32') -> pac_config.PACConfig:
  """The main job's agent with the size's network; BC is alpha = 1 (the
  policy imitates the data, the critic trains but does not steer it).

  With the main job's previous learning rate, target updates and alpha
  (`main_job.PREVIOUS_SETTINGS`): the committed results were measured with
  them, and a rerun must reproduce them.
  """
  if method not in METHODS:
    raise ValueError(f'unknown method {method!r}: choose from {METHODS}')
  overrides = dict(main_job.PREVIOUS_SETTINGS, network=network_config(size),
                   seed=seed,
                   compute_dtype=compute_dtype,
                   prefetch_batches=0)  # Batches drawn only when consumed.
  if method == 'bc':
    overrides['alpha'] = 1.0
  return main_job.agent_config(**overrides)


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """What one run trains and where it keeps its state and its record."""
  task: str
  dataset: str
  method: str
  size: str
  seed: int
  budgets: Tuple[float, ...]  # Training FLOPs, ascending.
  eval_episodes: int
  checkpoint_dir: str
  record_dir: str
  compute_dtype: str = 'float32'

  @property
  def name(self) -> str:
    return f'{self.task}_{self.method}_{self.size}_seed{self.seed}'

  @property
  def record_path(self) -> str:
    return os.path.join(self.record_dir, f'{self.name}.json')

  @property
  def checkpoint_path(self) -> str:
    return os.path.join(self.checkpoint_dir, f'{self.name}.pkl')


class _Batches(Iterator[types.Transition]):
  """Uniform samples (with replacement) of in-memory transitions; the
  generator's state is saved with the learner's, so a resumed run draws the
  batches an uninterrupted one would."""

  def __init__(self, transitions: types.Transition, batch_size: int,
               seed: int):
    self._transitions = transitions
    self._size = transitions.reward.shape[0]
    self._batch_size = batch_size
    self.rng = np.random.default_rng(seed)

  def __next__(self) -> types.Transition:
    index = self.rng.integers(0, self._size, self._batch_size)  # [B]
    return jax.tree.map(lambda x: x[index], self._transitions)


def budget_steps(budgets: Tuple[float, ...], flops_per_step: float,
                 steps_per_call: int) -> List[int]:
  """Learner steps that spend each budget: the nearest multiple of the
  learner's steps per call, at least one call."""
  return [max(steps_per_call,
              int(round(b / flops_per_step / steps_per_call)) * steps_per_call)
          for b in budgets]


def _write_atomic(path: str, data: bytes) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'wb') as f:
    f.write(data)
  os.replace(tmp, path)


def run(spec: RunSpec) -> Dict[str, Any]:
  """Trains and evaluates one run (resuming its checkpoint); returns its
  record, also written to `spec.record_path`."""
  start = time.time()
  config = agent_config(spec.method, spec.size, spec.seed, spec.compute_dtype)
  data = environments.load_dataset(spec.dataset)
  transitions = data.transitions(config.n_step, config.discount)
  networks = networks_lib.make_networks(data.spec, config)
  batches = _Batches(transitions, config.batch_size, spec.seed)
  flops = learning.sgd_step_flops(networks, config, next(
      _Batches(transitions, config.batch_size, 0)))
  learner = learning.PACLearner(networks, config,
                                jax.random.PRNGKey(spec.seed), batches,
                                logger=loggers.NoOpLogger())
  curve: List[Dict[str, Any]] = []
  spent_s = 0.0
  if os.path.exists(spec.checkpoint_path):
    with open(spec.checkpoint_path, 'rb') as f:
      saved = pickle.load(f)
    learner.restore(saved['state'])
    batches.rng.bit_generator.state = saved['rng']
    curve, spent_s = saved['curve'], saved['wall_s']
  run_config = run_config_lib.RunConfig(
      mode='offline', task=spec.task, run_dir=spec.checkpoint_dir,
      dataset=spec.dataset, agent=config)
  steps = budget_steps(spec.budgets, flops, config.learner_steps_per_call)
  for index in range(len(curve), len(spec.budgets)):
    while learner.num_steps < steps[index]:
      learner.step(max_steps=steps[index] - learner.num_steps)
    # A fresh evaluator per budget, seeded by (run seed, budget): a resumed
    # run evaluates on the episodes an uninterrupted one would.
    evaluator = nodes.Evaluator(
        run_config, learner, seed=int(np.random.SeedSequence(
            [spec.seed, index]).generate_state(1)[0]))
    result = evaluator.evaluate(spec.eval_episodes)
    curve.append({'budget_flops': spec.budgets[index],
                  'learner_steps': learner.num_steps,
                  'return_mean': result['return_mean'],
                  'return_std': result['return_std'],
                  'episodes': result['episodes']})
    _write_atomic(spec.checkpoint_path, pickle.dumps({
        'state': learner.save(), 'rng': batches.rng.bit_generator.state,
        'curve': curve, 'wall_s': spent_s + time.time() - start}))
  record = {
      'task': spec.task, 'dataset': spec.dataset, 'method': spec.method,
      'size': spec.size, 'seed': spec.seed,
      'params': networks_lib.count_params(learner.state.params),
      'flops_per_step': flops, 'batch_size': config.batch_size,
      'compute_dtype': spec.compute_dtype, 'device': jax.devices()[0].platform,
      'curve': curve, 'wall_s': spent_s + time.time() - start,
      'load_average_1min_end': os.getloadavg()[0]}
  _write_atomic(spec.record_path, (json.dumps(record, indent=1) + '\n').encode())
  os.remove(spec.checkpoint_path)
  return record
