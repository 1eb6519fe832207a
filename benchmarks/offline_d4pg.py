"""Acme's own D4PG learner trained offline: the suite's peer row.

RL Unplugged's baseline for its dm_control data is D4PG trained offline:
the same learner as online D4PG, fed from a fixed dataset instead of actors.
This runs Acme's `D4PGLearner` and Acme's D4PG networks unchanged on the
n-step transitions of one of our datasets (the transitions the program's
dataset loader puts in its `offline` table, drawn uniformly with
replacement as PAC's offline learner draws them), and evaluates Acme's
deterministic evaluation policy with Acme's `GenericActor` and
`EnvironmentLoop`. Its settings are Acme's `D4PGConfig` defaults (batch
256, learning rate 1e-4, 5-step returns, targets copied every 100 steps,
gradient clipping) and network sizes (policy 300-200, critic 400-300, 51
atoms), with the atoms on [0, 100], the range of a dm_control return
discounted by 0.99 (rewards in [0, 1]).
"""

import json
import os
import sys
from typing import Any, Dict, List

import agents  # noqa: F401  pylint: disable=unused-import  (before Acme/TF)
import acme
from acme import specs
from acme.agents.jax import actor_core
from acme.agents.jax import actors
from acme.agents.jax import d4pg
from acme.jax import variable_utils
from acme.utils import loggers
import jax
import numpy as np
import optax
import reverb

import environments
from agents.pac import offline

CONFIG = d4pg.D4PGConfig()  # Acme's defaults, unchanged.
# The critic's support: a dm_control return (rewards in [0, 1]) discounted
# by 0.99 lies in [0, 100]; Acme's default [-150, 150] wastes half the atoms.
VMIN, VMAX = 0.0, 100.0


def _replay_samples(transitions, batch_size: int, seed: int):
  """Uniform batches shaped as Reverb samples, as Acme's learners take them."""
  for batch in offline.uniform_batches(transitions, batch_size, seed):
    yield reverb.ReplaySample(info=None, data=batch)


def train_and_evaluate(dataset_path: str, seed: int, steps: int,
                       eval_episodes: int, run_dir: str) -> List[Dict[str, Any]]:
  """Trains Acme's D4PG offline on `dataset_path` for `steps` learner steps,
  evaluating `eval_episodes` episodes at every third of them.

  Each evaluation is appended to `<run_dir>/eval.jsonl` as the program's
  evaluator writes it (`learner_steps`, `return_mean`, `return_std`), so the
  suite reads a peer run as it reads a PAC run. Returns the evaluations.
  """
  dataset = environments.load_dataset(dataset_path)
  environment = environments.make_environment(dataset.task, seed=1000 + seed)
  dataset.check_spec(specs.make_environment_spec(environment))
  networks = d4pg.make_networks(dataset.spec, vmin=VMIN, vmax=VMAX)
  transitions = dataset.transitions(CONFIG.n_step, CONFIG.discount)
  learner_key, actor_key = jax.random.split(jax.random.PRNGKey(seed))
  learner = d4pg.D4PGLearner(
      policy_network=networks.policy_network,
      critic_network=networks.critic_network,
      random_key=learner_key, discount=CONFIG.discount,
      target_update_period=CONFIG.target_update_period,
      iterator=_replay_samples(transitions, CONFIG.batch_size, seed),
      policy_optimizer=optax.adam(CONFIG.learning_rate),
      critic_optimizer=optax.adam(CONFIG.learning_rate),
      clipping=CONFIG.clipping, logger=loggers.NoOpLogger())
  variable_client = variable_utils.VariableClient(learner, 'policy')
  actor = actors.GenericActor(
      actor_core.batched_feed_forward_to_actor_core(
          d4pg.get_default_eval_policy(networks)),
      actor_key, variable_client, backend='cpu')
  loop = acme.EnvironmentLoop(environment, actor,
                              logger=loggers.NoOpLogger())
  os.makedirs(run_dir, exist_ok=True)
  eval_path = os.path.join(run_dir, 'eval.jsonl')
  if os.path.exists(eval_path):  # An interrupted run starts again.
    os.remove(eval_path)
  evaluations = []
  points = sorted({max(steps * k // 3, 1) for k in (1, 2, 3)})
  done = 0
  for point in points:
    for _ in range(point - done):
      learner.step()
    done = point
    variable_client.update_and_wait()
    returns = np.array([loop.run_episode()['episode_return']
                        for _ in range(eval_episodes)], np.float64)
    evaluation = {'learner_steps': done,
                  'return_mean': float(returns.mean()),
                  'return_std': float(returns.std())}
    evaluations.append(evaluation)
    with open(eval_path, 'a') as f:
      f.write(json.dumps(evaluation) + '\n')
    print(f'[d4pg] learner_steps={done} return={returns.mean():.1f}'
          f'±{returns.std():.1f} ({eval_episodes} ep)', flush=True)
  return evaluations


def run_to_end(*args) -> None:
  """`train_and_evaluate(*args)` as a process of its own (a sweep's run):
  Ctrl-C ends it with one line and status 130, like the PAC programs."""
  try:
    train_and_evaluate(*args)
  except KeyboardInterrupt:
    print('[d4pg] interrupted; the run starts again when rerun',
          file=sys.stderr)
    sys.exit(130)
