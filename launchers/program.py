"""`make_program`: the one function that turns a `RunConfig` into a Launchpad program.

Topology:

    replay (Reverb: offline (one per task) + online tables)
    counter ───────────────────────────────┐
    dataset_loader ──> replay.offline      │
    learner <── replay (mixed batches) ────┤  serves parameters
    actor × N ──> replay.online ───────────┤  (finetune / selfimprove)
    evaluator <── learner parameters       │
    controller: evaluations, rounds, results, stop
"""

import functools
import json
import os
from typing import Dict

import launchpad as lp
import numpy as np

from environments import specs_io
from launchers import config as config_lib
from launchers import nodes

# Fields of a run that its checkpoints depend on: resuming a run directory with
# different values would restore parameters (or replay items) of another shape
# or meaning. `task` is the run's task list; `spec` its environment spec
# (recorded since multi-task runs; checked where recorded).
_RESUME_KEYS = ('task', 'spec', 'agent.preset', 'agent.network', 'agent.num_bins',
                'agent.num_atoms', 'agent.n_step', 'agent.offline_block_size')


def make_program(config: config_lib.RunConfig) -> lp.Program:
  """Validates the run (before any node starts) and builds its program."""
  spec, offline_sizes = config_lib.preflight(config)
  _check_resumable(config, spec)

  seeds = node_seeds(config.seed, config.num_actors)
  builder = nodes.make_builder(config, offline_sizes)
  program = lp.Program(name=f'pac_{config.mode}')
  with program.group('replay'):
    replay = program.add_node(nodes.ReplayNode(
        functools.partial(builder.make_replay_tables, spec), config))
  with program.group('counter'):
    counter = program.add_node(lp.CourierNode(nodes.CounterNode, config))
  if config.uses_offline_data:
    with program.group('dataset_loader'):
      program.add_node(lp.CourierNode(nodes.DatasetLoader, config, replay,
                                      seeds['dataset_loader']))
  with program.group('learner'):
    learner = program.add_node(lp.CourierNode(
        nodes.LearnerNode, config, spec, replay, counter, offline_sizes,
        seeds['learner']))
  actors = []
  if config.uses_actors:
    with program.group('actor'):
      actors = [program.add_node(lp.CourierNode(
          nodes.ActorNode, config, replay, learner, counter, actor_id,
          seeds[f'actor_{actor_id}']))
                for actor_id in range(config.num_actors)]
  with program.group('evaluator'):
    evaluator = program.add_node(lp.CourierNode(nodes.Evaluator, config,
                                                learner, seeds['evaluator']))
  with program.group('controller'):
    program.add_node(lp.CourierNode(nodes.Controller, config, learner,
                                    evaluator, counter, actors, replay))
  return program


def node_seeds(seed: int, num_actors: int) -> Dict[str, int]:
  """One seed per node that draws random numbers, from one split of `seed`.

  NumPy's `SeedSequence.spawn` gives independent streams (ad-hoc offsets such
  as seed + 1 can collide across runs: run 0's actor 1 and run 1's actor 0).
  A node keeps its seed when actors are added, and a restarted actor gets
  its seed again.
  """
  names = ['dataset_loader', 'learner', 'evaluator'] + [
      f'actor_{i}' for i in range(num_actors)]
  children = np.random.SeedSequence(seed).spawn(len(names))
  return {name: int(child.generate_state(1)[0])
          for name, child in zip(names, children)}


def _flat(config: config_lib.RunConfig, spec) -> dict:
  values = {'task': ','.join(config.tasks),
            'spec': specs_io.spec_to_json(spec)}
  values.update({f'agent.{k}': v for k, v in vars(config.agent).items()
                 if not k.startswith('_')})
  return values


def _check_resumable(config: config_lib.RunConfig, spec) -> None:
  """Refuses to resume a run directory that holds an incompatible run.

  Writes `config.json` on first use; later runs with the same directory must
  agree on the fields the checkpoints depend on.
  """
  try:
    os.makedirs(config.run_dir, exist_ok=True)
    if not os.access(config.run_dir, os.W_OK):
      raise PermissionError(13, 'not writable')
  except OSError as e:
    raise config_lib.RunConfigError(
        f'run_dir {config.run_dir!r} cannot be created or written '
        f'({e.strerror}); choose a writable path.') from e
  path = config.path('config.json')
  current = json.loads(json.dumps({  # As read back: lists, not tuples.
      k: (v if _jsonable(v) else repr(v))
      for k, v in _flat(config, spec).items()}))
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    changed = [k for k in _RESUME_KEYS if previous.get(k) != current.get(k)
               and (k in previous or k != 'spec')]
    if changed:
      diffs = ', '.join(
          'the environment spec' if k == 'spec' else
          f'{k}: {previous.get(k)!r} -> {current.get(k)!r}' for k in changed)
      raise config_lib.RunConfigError(
          f'run_dir {config.run_dir!r} holds a run that cannot be resumed with '
          f'this config ({diffs}). Use a new --run_dir, or the same settings.')
    return
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(current, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def _jsonable(value) -> bool:
  try:
    json.dumps(value)
    return True
  except TypeError:
    return False
