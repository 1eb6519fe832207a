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
from typing import Dict, Optional

from acme import specs
import launchpad as lp
import numpy as np

from launchers import config as config_lib
from launchers import nodes

def make_program(config: config_lib.RunConfig, spec: specs.EnvironmentSpec,
                 offline_sizes: Optional[Dict[str, int]]) -> lp.Program:
  """The run's program, from its checked config and what `preflight` found
  (the environment spec, the transitions of each offline table).

  Pure: it checks, writes and starts nothing, so every launch type (local_mp,
  test_mt, ...) gets the same program; `launching.prepare` does the checks.
  """
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
