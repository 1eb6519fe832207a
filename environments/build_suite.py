r"""Builds the D4RL-style dataset suite: five datasets per task.

  python -m environments.build_suite --tasks=control_small --episodes=100 \
      --out=data/suite

For every task with expert and medium behaviour (a scripted controller or
learned teachers, `environments.teacher`), writes `<out>/<task>/<kind>` for
the kinds `random`, `medium`, `medium_replay` (random and medium episodes in
turn: a stand-in for the teacher's replay up to its medium snapshot, which
is not kept), `medium_expert` (medium and expert in turn) and `expert`, and
`<out>/suite.json`: per task, each dataset's episodes and return (mean, std)
and the normalisation constants, the mean returns of its `random` and
`expert` datasets (a normalised return is 100 (R - random) / (expert -
random)).

Resumable: a dataset that exists whole with the requested episodes is kept,
`suite.json` is rewritten after each dataset, and a task without teachers is
listed as missing and skipped. Each kind has its own seed (`--seed` +
1000 x its index), so the datasets of a task share no episode.
"""

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np

from environments import dataset as dataset_lib
from environments import errors
from environments import policies
from environments import suite
from environments import writer

KINDS = (policies.RANDOM, policies.MEDIUM, policies.MEDIUM_REPLAY,
         policies.MEDIUM_EXPERT, policies.EXPERT)
SUITE_FILE = 'suite.json'


def dataset_path(out: str, task: str, kind: str) -> str:
  return os.path.join(out, task, kind)


def _existing(path: str, episodes: int) -> Optional[dict]:
  """The metadata of a whole dataset at `path` with `episodes` episodes."""
  try:
    dataset = dataset_lib.load_dataset(path)
  except errors.DatasetError:
    return None
  return dataset.metadata if dataset.num_episodes == episodes else None


def _summary(metadata: dict, path: str) -> dict:
  returns = [episode['return'] for episode in metadata['episodes']]
  return {'path': os.path.abspath(path), 'episodes': len(returns),
          'return_mean': round(float(np.mean(returns)), 2),
          'return_std': round(float(np.std(returns)), 2),
          'seed': metadata.get('seed')}


def read_suite(out: str) -> dict:
  """`<out>/suite.json` ({} if there is none yet)."""
  file = os.path.join(out, SUITE_FILE)
  if not os.path.exists(file):
    return {}
  with open(file) as f:
    return json.load(f)


def _write_suite(out: str, records: dict) -> None:
  file = os.path.join(out, SUITE_FILE)
  with open(file + '.tmp', 'w') as f:
    json.dump(records, f, indent=1, sort_keys=True)
  os.replace(file + '.tmp', file)


def build(tasks: List[str], episodes: int, out: str, seed: int,
          workers: int, log=print) -> Dict[str, dict]:
  """Writes the missing datasets of `tasks`; returns the suite's records."""
  os.makedirs(out, exist_ok=True)
  records = read_suite(out)
  for task in tasks:
    if policies.EXPERT not in policies.list_policies(task):
      records[task] = {'missing': 'no expert/medium behaviour: train its '
                                  'teachers (python -m '
                                  f'environments.train_teacher --tasks={task})'}
      _write_suite(out, records)
      log(f'[suite] {task}: no teachers yet; skipped')
      continue
    record = records.get(task, {})
    record.pop('missing', None)
    datasets = record.setdefault('datasets', {})
    for index, kind in enumerate(KINDS):
      path = dataset_path(out, task, kind)
      metadata = _existing(path, episodes)
      if metadata is None:
        metadata = writer.write_dataset(
            path, task=task, policy=kind, num_episodes=episodes,
            seed=seed + 1000 * index, overwrite=os.path.exists(path),
            workers=workers)
        action = 'wrote'
      else:
        action = 'kept'
      datasets[kind] = _summary(metadata, path)
      log(f'[suite] {task}/{kind}: {action} {episodes} episodes, return '
          f'{datasets[kind]["return_mean"]:.1f} ± '
          f'{datasets[kind]["return_std"]:.1f}')
      if kind in (policies.RANDOM, policies.EXPERT):
        record[f'{kind}_return'] = datasets[kind]['return_mean']
      records[task] = record
      _write_suite(out, records)
  return records


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m environments.build_suite',
      description='Build the D4RL-style dataset suite (random, medium, '
                  'medium_replay, medium_expert, expert per task).')
  parser.add_argument('--tasks', default='control_small',
                      help='tasks (comma-separated) or a task set')
  parser.add_argument('--episodes', type=int, default=100,
                      help='episodes per dataset (default: 100)')
  parser.add_argument('--out', default='data/suite', help='suite directory')
  parser.add_argument('--seed', type=int, default=0, help='base seed')
  parser.add_argument('--workers', type=int, default=writer.default_workers(),
                      help='processes per dataset (default: %(default)s)')
  return parser


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  try:
    if args.episodes < 1 or args.workers < 1:
      raise errors.DatasetError(
          f'--episodes and --workers must be >= 1, got {args.episodes} and '
          f'{args.workers}')
    tasks = list(suite.resolve_tasks(args.tasks))
    build(tasks, args.episodes, args.out, args.seed, args.workers)
  except errors.DatasetError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print('[suite] interrupted; finished datasets are kept, rerun to go on',
          file=sys.stderr)
    return 130
  return 0


if __name__ == '__main__':
  sys.exit(main())
