"""Benchmark: env steps/s per task, dataset write and read transitions/s.

  python -m benchmarks.env_throughput [--seconds 3] [--episodes 10]

Writes benchmarks/results/env_throughput.json and env_throughput.png.

  * env_steps_per_s: suite steps per second under a uniform random policy
    (policy cost included, resets included), for `--seconds` per task.
  * dataset_write_transitions_per_s: `write_dataset` end to end with the random
    policy on cartpole_swingup, i.e. simulation + EnvLogger/Riegeli writing
    (compare with env_steps_per_s['cartpole_swingup'] for the logging cost).
  * dataset_read_transitions_per_s: `load_dataset(...).transitions()` (1-step)
    on that dataset: Riegeli reading, decoding, checks and transition assembly.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import tempfile
import time
from typing import Dict

# EnvLogger's C++ code logs INFO lines at every file close; set before it loads.
os.environ.setdefault('GLOG_minloglevel', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib
matplotlib.use('Agg')
from matplotlib import pyplot as plt
import numpy as np

from environments import dataset
from environments import suite
from environments import writer
# pylint: enable=g-import-not-at-top,wrong-import-position

_TASKS = ('cartpole_swingup', 'walker_walk', 'cheetah_run', 'humanoid_stand')
_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def env_steps_per_second(task: str, seconds: float, seed: int = 0) -> float:
  """Steps/s of `task` under uniform random actions, for about `seconds`."""
  env = suite.make_environment(task, seed)
  shape = env.action_spec().shape
  rng = np.random.default_rng(seed)
  timestep = env.reset()
  steps = 0
  start = time.perf_counter()
  while time.perf_counter() - start < seconds:
    for _ in range(100):  # Check the clock every 100 steps only.
      if timestep.last():
        timestep = env.reset()
      timestep = env.step(rng.uniform(-1, 1, shape).astype(np.float32))
      steps += 1
  return steps / (time.perf_counter() - start)


def dataset_rates(episodes: int) -> Dict[str, float]:
  """Write and read transitions/s of a random cartpole_swingup dataset."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'bench')
    start = time.perf_counter()
    metadata = writer.write_dataset(path, 'cartpole_swingup', 'random',
                                    episodes, seed=0)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    with dataset.load_dataset(path) as data:
      count = len(data.transitions().reward)
    read_s = time.perf_counter() - start
  assert count == metadata['num_transitions']
  return {'write': count / write_s, 'read': count / read_s,
          'transitions': count}


def _machine() -> Dict[str, object]:
  return {
      'platform': platform.platform(),
      'processor': platform.processor() or platform.machine(),
      'cpu_count': os.cpu_count(),
      'python': platform.python_version(),
      'versions': {p: importlib.metadata.version(p)
                   for p in ('mujoco', 'dm_control', 'envlogger', 'numpy')},
  }


def _plot(results: Dict[str, object], path: str) -> None:
  env_rates = results['env_steps_per_s']
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4),
                                    gridspec_kw={'width_ratios': [2, 1]})
  left.bar(list(env_rates), list(env_rates.values()), color='tab:blue')
  left.set_ylabel('environment steps / s')
  left.set_title('Suite tasks, random policy')
  left.tick_params(axis='x', labelrotation=20)
  rates = {'write': results['dataset_write_transitions_per_s'],
           'read': results['dataset_read_transitions_per_s']}
  right.bar(list(rates), list(rates.values()),
            color=['tab:orange', 'tab:green'])
  right.set_ylabel('transitions / s')
  right.set_title('Dataset (cartpole_swingup)')
  for axis in (left, right):
    for patch in axis.patches:
      axis.annotate(f'{patch.get_height():,.0f}',
                    (patch.get_x() + patch.get_width() / 2, patch.get_height()),
                    ha='center', va='bottom', fontsize=8)
  fig.suptitle(f'{results["date"][:10]}, {results["machine"]["cpu_count"]} '
               'CPUs (shared)')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(prog='python -m benchmarks.env_throughput')
  parser.add_argument('--seconds', type=float, default=3.0,
                      help='seconds of stepping per task (default: 3)')
  parser.add_argument('--episodes', type=int, default=10,
                      help='episodes in the benchmark dataset (default: 10)')
  args = parser.parse_args()

  env_rates = {}
  for task in _TASKS:
    env_rates[task] = env_steps_per_second(task, args.seconds)
    print(f'{task:>18}: {env_rates[task]:10,.0f} steps/s')
  rates = dataset_rates(args.episodes)
  print(f'dataset write: {rates["write"]:10,.0f} transitions/s '
        f'({rates["transitions"]} transitions, simulation included)')
  print(f'dataset read:  {rates["read"]:10,.0f} transitions/s')

  results = {
      'env_steps_per_s': env_rates,
      'dataset_write_transitions_per_s': rates['write'],
      'dataset_read_transitions_per_s': rates['read'],
      'dataset_transitions': rates['transitions'],
      'seconds_per_task': args.seconds,
      'notes': ('write rate includes simulating cartpole_swingup with a random '
                'policy; read rate is load_dataset().transitions() (1-step).'),
      'machine': _machine(),
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
  }
  os.makedirs(_RESULTS, exist_ok=True)
  with open(os.path.join(_RESULTS, 'env_throughput.json'), 'w') as f:
    json.dump(results, f, indent=1)
  _plot(results, os.path.join(_RESULTS, 'env_throughput.png'))
  print(f'wrote {_RESULTS}/env_throughput.json and env_throughput.png')


if __name__ == '__main__':
  main()
