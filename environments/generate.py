"""Command line: generate an offline dataset for one suite task.

  python -m environments.generate --task cartpole_swingup --policy expert \
      --episodes 50 --seed 0 --out data/cartpole_swingup_expert [--workers N]

Episodes are written by --workers processes (default: one per CPU); the
dataset does not depend on their number. Shows a progress bar over episodes
with the running mean return, then prints
return statistics (per behaviour policy for `--policy mixed`). The dataset
appears at --out only when complete (see writer.py); an existing one is replaced
only with --overwrite. Exit status: 0 on success, 2 for a bad input (unknown task
or policy, existing output, ...), 130 when interrupted.
"""

import argparse
import os
import signal
import sys
from typing import Any, Dict, List, Optional, Sequence

# EnvLogger's C++ code logs INFO lines to stderr at every file close; this must be
# set before EnvLogger loads, which the package's lazy imports allow.
os.environ.setdefault('GLOG_minloglevel', '1')

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tqdm

from environments import errors
from environments import policies
from environments import suite
from environments import writer
# pylint: enable=g-import-not-at-top,wrong-import-position


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m environments.generate',
      description='Generate an offline RLDS dataset (EnvLogger/Riegeli) by '
                  'rolling out a behaviour policy on a dm_control suite task.')
  parser.add_argument('--task', help='suite task, e.g. cartpole_swingup '
                      '(see --list-tasks)')
  parser.add_argument('--policy', default='random',
                      choices=(policies.RANDOM, policies.EXPERT,
                               policies.MEDIUM, *policies.COMPOSITIONS),
                      help='behaviour policy / quality level, or a '
                           'composition (default: random); all but random '
                           'need a scripted controller (cartpole_swingup, '
                           'cartpole_balance) or learned teachers '
                           '(environments/teachers/)')
  parser.add_argument('--episodes', type=int, default=50,
                      help='number of episodes (default: 50)')
  parser.add_argument('--seed', type=int, default=0, help='random seed')
  parser.add_argument('--workers', type=int, default=writer.default_workers(),
                      help='processes writing episodes in parallel (default: '
                           'the number of CPUs, %(default)s here); the dataset '
                           'is the same for any number')
  parser.add_argument('--out', help='output dataset directory')
  parser.add_argument('--overwrite', action='store_true',
                      help='replace an existing dataset at --out')
  parser.add_argument('--list-tasks', action='store_true',
                      help='print the available tasks and exit')
  return parser


def _statistics(episodes: List[Dict[str, Any]]) -> str:
  """One line per behaviour policy (and overall), mean/std/min/max return."""
  groups = {'all': episodes}
  names = sorted({e['policy'] for e in episodes})
  if len(names) > 1:
    groups.update({n: [e for e in episodes if e['policy'] == n] for n in names})
  lines = []
  for name, group in groups.items():
    returns = np.array([e['return'] for e in group])
    lines.append(f'  {name:>7}: {len(group):4d} episodes, return mean '
                 f'{returns.mean():8.2f} std {returns.std():7.2f} min '
                 f'{returns.min():8.2f} max {returns.max():8.2f}')
  return '\n'.join(lines)


def _raise_on_sigterm(signum: int, frame: Any) -> None:
  del frame
  raise SystemExit(128 + signum)  # Unwinds, so the writer removes its temp dir.


def _generate(args: argparse.Namespace) -> Dict[str, Any]:
  """Writes the dataset with a progress bar over episodes."""
  returns = []
  with tqdm.tqdm(total=args.episodes, unit='episode',
                 desc=f'{args.task}/{args.policy}') as bar:

    def on_episode(summary: Dict[str, Any]) -> None:
      returns.append(summary['return'])
      bar.set_postfix(mean_return=f'{np.mean(returns):.1f}')
      bar.update(1)

    return writer.write_dataset(
        args.out, args.task, args.policy, args.episodes, args.seed,
        overwrite=args.overwrite, on_episode=on_episode,
        workers=args.workers)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parser().parse_args(argv)
  if args.list_tasks:
    for task in suite.list_tasks():
      print(task)
    return 0
  if not args.task or not args.out:
    _parser().error('--task and --out are required (or use --list-tasks).')
  previous_handler = signal.signal(signal.SIGTERM, _raise_on_sigterm)
  try:
    writer.check_request(args.out, args.task, args.policy, args.episodes,
                         args.overwrite)
    if args.workers < 1:
      raise errors.DatasetError(f'--workers must be >= 1, got {args.workers}.')
    metadata = _generate(args)
  except errors.DatasetError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f'interrupted: nothing was written to {args.out}', file=sys.stderr)
    return 130
  finally:
    signal.signal(signal.SIGTERM, previous_handler)

  print(f'wrote {metadata["num_episodes"]} episodes, '
        f'{metadata["num_transitions"]} transitions to '
        f'{os.path.abspath(args.out)}')
  print(_statistics(metadata['episodes']))
  return 0


if __name__ == '__main__':
  sys.exit(main())
