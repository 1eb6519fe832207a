"""Command line: export a dataset as flat arrays other libraries read.

  python -m environments.export --format npz --dataset data/cartpole_mixed \
      [--out data/cartpole_mixed.npz] [--overwrite]

Writes the D4RL layout, one row per transition (step t of an episode, t < T):
  observations       float32 [N, D]  the observation's entries concatenated
                                     in the dataset spec's key order
  actions            float32 [N, A]
  rewards            float32 [N]     ensuing from the action
  next_observations  float32 [N, D]  s_{t+1}
  terminals          bool    [N]     the episode ended by termination here
  timeouts           bool    [N]     the episode ended by its time limit here
  observation_keys   str     [K]     which entry is which: the keys, in order,
  observation_sizes  int64   [K]     and their flattened sizes
  episode_returns    float32 [E]     per episode, in order (from metadata)
so d3rlpy, CORL or any NumPy code can train on exactly the data PAC trains on.
The file appears at --out only when complete; an existing one is replaced
only with --overwrite. Exit status: 0 on success, 2 for a bad input (missing
or corrupt dataset, existing output), 130 when interrupted.
"""

import argparse
import os
import sys
from typing import Dict, Optional, Sequence

import numpy as np

from environments import dataset as dataset_lib
from environments import errors

FORMATS = ('npz',)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m environments.export',
      description='Export an offline dataset as flat arrays (D4RL layout).')
  parser.add_argument('--format', choices=FORMATS, default='npz',
                      help='output format (default: npz)')
  parser.add_argument('--dataset', required=True, help='dataset directory')
  parser.add_argument('--out', help='output file (default: <dataset>.npz)')
  parser.add_argument('--overwrite', action='store_true',
                      help='replace an existing file at --out')
  return parser


def flat_arrays(dataset: dataset_lib.Dataset) -> Dict[str, np.ndarray]:
  """The dataset's transitions in the D4RL layout (module docstring)."""
  columns = dataset.columns()
  keys = list(dataset.spec.observations)  # The spec's order.
  rows = len(columns.reward)  # Sum over episodes of T + 1 RLDS steps.
  flat = np.concatenate([np.reshape(columns.observation[key], (rows, -1))
                         for key in keys], axis=1).astype(np.float32)
  lengths = columns.episode_lengths  # [E]: T per episode
  ends = np.cumsum(lengths + 1)  # One past each episode's final step.
  starts = ends - (lengths + 1)
  # Step t < T of each episode: a transition to step t + 1.
  steps = np.concatenate([np.arange(s, e - 1) for s, e in zip(starts, ends)])
  last = np.zeros(len(steps), bool)
  last[np.cumsum(lengths) - 1] = True
  terminal = last & (columns.discount[steps] == 0)
  return {
      'observations': flat[steps],
      'actions': np.asarray(columns.action[steps], np.float32),
      'rewards': np.asarray(columns.reward[steps], np.float32),
      'next_observations': flat[steps + 1],
      'terminals': terminal,
      'timeouts': last & ~terminal,
      'observation_keys': np.array(keys),
      'observation_sizes': np.array(
          [int(np.prod(dataset.spec.observations[k].shape)) for k in keys],
          np.int64),
      'episode_returns': np.array(
          [e['return'] for e in dataset.metadata['episodes']], np.float32),
  }


def export(path: str, out: str, overwrite: bool = False) -> int:
  """Writes `path`'s dataset to `out` (npz); returns the transitions.

  Raises:
    DatasetError: a missing or corrupt dataset, or `out` exists and not
      `overwrite`.
  """
  if os.path.exists(out) and not overwrite:
    raise errors.DatasetExistsError(
        f'{out} exists; pass --overwrite to replace it.')
  arrays = flat_arrays(dataset_lib.load_dataset(path))
  directory = os.path.dirname(os.path.abspath(out))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f'.{os.path.basename(out)}.{os.getpid()}.tmp')
  try:
    with open(tmp, 'wb') as f:
      np.savez(f, **arrays)
    os.replace(tmp, out)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return len(arrays['rewards'])


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parser().parse_args(argv)
  out = args.out or args.dataset.rstrip('/') + '.npz'
  try:
    count = export(args.dataset, out, args.overwrite)
  except errors.DatasetError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f'interrupted: nothing was written to {out}', file=sys.stderr)
    return 130
  print(f'wrote {count} transitions to {os.path.abspath(out)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
