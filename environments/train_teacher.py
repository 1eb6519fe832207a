r"""Trains the learned behaviour policies ("teachers") of suite tasks.

  python -m environments.train_teacher --tasks=cartpole_swingup,finger_spin

For each task, Acme's SAC (JAX, one process: actor, learner and a Reverb
replay of its own) learns online on the suite task, as RL Unplugged made
its dm_control data with an online agent. Every `--eval_every` environment
steps the current policy is saved (`<work_dir>/<task>/step_<n>.npz`) and
scored by its deterministic action (`--eval_episodes`, with the NumPy
forward pass the dataset generator uses, `environments.teacher`). At the end
the last snapshot is the task's `expert` and the snapshot whose score is
closest to a third of it is its `medium`; both are copied to
`environments/teachers/` (`--out`), and `teachers.json` there records, per
task, each level's step and score, the steps, seed, wall time and command.

Resumable by task: a task whose two teacher files exist is skipped, and each
evaluation is appended to `<work_dir>/<task>/evals.jsonl` as it happens; a
task stopped part way starts again from its first step (SAC's replay is not
checkpointed). Interrupted with Ctrl-C, it exits 130 and keeps what is done.
"""

import json
import multiprocessing
import os
import shlex
import sys
import time
from typing import List

from absl import app
from absl import flags
from absl import logging
import numpy as np

from environments import suite
from environments import teacher

# Environment steps per task: enough for SAC to reach a good part of its
# final score on a CPU (~65 steps/s here with one update per step).
DEFAULT_STEPS = {'cartpole_swingup': 60_000, 'finger_spin': 100_000,
                 'walker_walk': 150_000, 'cheetah_run': 200_000}

_TASKS = flags.DEFINE_string(
    'tasks', 'control_small', 'Tasks (comma-separated) or a task set.')
_STEPS = flags.DEFINE_integer(
    'steps', None, 'Environment steps per task (default: DEFAULT_STEPS, '
    '100000 for other tasks).')
_EVAL_EVERY = flags.DEFINE_integer('eval_every', 5000,
                                   'Environment steps between snapshots.')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 5,
                                      'Episodes per snapshot score.')
_MIN_REPLAY = flags.DEFINE_integer(
    'min_replay_size', 5000, 'Transitions collected before SAC learns.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the agent and the task.')
_WORK_DIR = flags.DEFINE_string('work_dir', 'runs/teachers',
                                'Snapshots and evaluation logs.')
_OUT = flags.DEFINE_string('out', teacher.DIRECTORY,
                           'Where the chosen teachers and teachers.json go.')


class TeacherError(ValueError):
  """Bad input to the teacher training (exit status 2)."""


def _policy_params(agent) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  (params,) = agent.get_variables(['policy'])
  return jax.tree_util.tree_map(np.asarray, params)


def train(task: str, steps: int, work_dir: str, out: str, seed: int,
          eval_every: int, eval_episodes: int, min_replay: int) -> dict:
  """Trains one task's teacher; returns its teachers.json record."""
  import agents  # pylint: disable=g-import-not-at-top,unused-import
  from acme import environment_loop  # pylint: disable=g-import-not-at-top
  from acme import specs  # pylint: disable=g-import-not-at-top
  from acme import wrappers  # pylint: disable=g-import-not-at-top
  from acme.agents.jax import sac  # pylint: disable=g-import-not-at-top
  from acme.utils import loggers  # pylint: disable=g-import-not-at-top

  directory = os.path.join(work_dir, task)
  os.makedirs(directory, exist_ok=True)
  log = os.path.join(directory, 'evals.jsonl')
  if os.path.exists(log):
    os.remove(log)  # A run stopped part way starts again.
  environment = wrappers.ConcatObservationWrapper(
      suite.make_environment(task, seed=seed))
  spec = specs.make_environment_spec(environment)
  config = sac.SACConfig(
      min_replay_size=min_replay, samples_per_insert=256,
      target_entropy=sac.target_entropy_from_env_spec(spec))
  agent = sac.SAC(spec, sac.make_networks(spec), config, seed=seed,
                  normalize_input=False)
  loop = environment_loop.EnvironmentLoop(environment, agent,
                                          logger=loggers.NoOpLogger())
  start = time.time()
  done, next_eval, evals = 0, eval_every, []
  while done < steps:
    done += int(loop.run_episode()['episode_length'])
    if done >= next_eval or done >= steps:
      snapshot = os.path.join(directory, f'step_{done}.npz')
      metadata = {'task': task, 'step': done, 'seed': seed}
      teacher.save(snapshot, _policy_params(agent), metadata)
      score = teacher.evaluate(teacher.TeacherPolicy(snapshot, 'snapshot'), task,
                       eval_episodes, seed + 1)
      record = {'step': done, 'return': round(score, 1), 'file': snapshot,
                'wall_s': round(time.time() - start)}
      evals.append(record)
      with open(log, 'a') as f:
        f.write(json.dumps(record) + '\n')
      print(f'[{task}] step {done}: return {score:.1f} '
            f'({record["wall_s"]} s)', flush=True)
      next_eval += eval_every
  chosen = teacher.choose(evals)
  result = {'steps': done, 'seed': seed, 'wall_s': round(time.time() - start),
            'eval_episodes': eval_episodes,
            'command': 'python -m environments.train_teacher ' + ' '.join(
                shlex.quote(a) for a in sys.argv[1:])}
  for level in ('medium', 'expert'):  # Expert last: its file marks done.
    record = chosen[level]
    metadata = {'task': task, 'level': level, 'step': record['step'],
                'return': record['return'], 'seed': seed}
    with np.load(record['file']) as arrays:
      params = {}
      for key in arrays.files:
        if key != 'metadata':
          module, name = key.split('|')
          params.setdefault(module, {})[name] = arrays[key]
    teacher.save(teacher.path(task, level, out), params, metadata)
    result[level] = {'step': record['step'], 'return': record['return']}
  return result


def _train_and_record(task: str, steps: int, work_dir: str, out: str,
                      seed: int, eval_every: int, eval_episodes: int,
                      min_replay: int, argv: List[str]) -> None:
  """Trains one task's teacher and records it (a process of its own)."""
  logging.set_verbosity(logging.WARNING)
  sys.argv = argv  # For the command in the record.
  try:
    result = train(task, steps, work_dir, out, seed, eval_every,
                   eval_episodes, min_replay)
  except KeyboardInterrupt:
    sys.exit(130)
  _record(out, task, result)
  print(f'[{task}] medium {result["medium"]["return"]} (step '
        f'{result["medium"]["step"]}), expert {result["expert"]["return"]} '
        f'in {result["wall_s"]} s', flush=True)


def _record(out: str, task: str, result: dict) -> None:
  """Adds `task`'s record to `<out>/teachers.json` (rewritten whole)."""
  file = os.path.join(out, 'teachers.json')
  records = {}
  if os.path.exists(file):
    with open(file) as f:
      records = json.load(f)
  records[task] = result
  with open(file + '.tmp', 'w') as f:
    json.dump(records, f, indent=1, sort_keys=True)
  os.replace(file + '.tmp', file)


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)  # Acme's learner logs every second.
  try:
    tasks = suite.resolve_tasks(_TASKS.value)
    for name, value in (('steps', _STEPS.value or 1),
                        ('eval_every', _EVAL_EVERY.value),
                        ('eval_episodes', _EVAL_EPISODES.value),
                        ('min_replay_size', _MIN_REPLAY.value)):
      if value < 1:
        raise TeacherError(f'--{name}={value} must be >= 1')
  except (TeacherError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  os.makedirs(_OUT.value, exist_ok=True)
  try:
    for task in tasks:
      if len(teacher.available(task, _OUT.value)) == len(teacher.LEVELS):
        print(f'[{task}] done already ({_OUT.value}); skipped', flush=True)
        continue
      steps = _STEPS.value or DEFAULT_STEPS.get(task, 100_000)
      # One process per task: a second SAC agent built in the same process
      # was handed the first one's parameters (Acme 0.4.0 with this JAX).
      process = multiprocessing.get_context('spawn').Process(
          target=_train_and_record,
          args=(task, steps, _WORK_DIR.value, _OUT.value, _SEED.value,
                _EVAL_EVERY.value, _EVAL_EPISODES.value, _MIN_REPLAY.value,
                sys.argv))
      process.start()
      try:
        process.join()
      except KeyboardInterrupt:
        process.join()
        raise
      if process.exitcode:
        print(f'[{task}] training failed (exit {process.exitcode}); rerun to '
              'try again', file=sys.stderr)
        sys.exit(1)
  except KeyboardInterrupt:
    print('[teachers] interrupted; finished tasks are kept, rerun to go on',
          file=sys.stderr)
    sys.exit(130)


if __name__ == '__main__':
  app.run(main)
