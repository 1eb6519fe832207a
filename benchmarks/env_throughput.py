r"""Benchmark: environment steps/s, dataset generation and reading.

  python -m benchmarks.env_throughput [--seconds=3] [--episodes=40]

Writes benchmarks/results/env_throughput.json and env_throughput.png:
  * env_steps_per_s: suite steps/s under uniform random actions, per task.
  * generation.workers_{1,2}_transitions_per_s: `write_dataset` of a random
    cartpole_swingup dataset (simulation and EnvLogger writing) with 1 and 2
    processes, one after the other in this run; `speedup` is their ratio.
  * read.decode_transitions_per_s: the dataset's transitions decoded from its
    EnvLogger files (`transitions(use_cache=False)`), with the fast record
    decoder and (`generic_decode_...`) with EnvLogger's codec alone;
    read.warm_cache_transitions_per_s: the same read from the decoded cache.
"""

import os
import shutil
import tempfile

from absl import app
from absl import flags
import numpy as np

from benchmarks import common
from environments import dataset
from environments import suite
from environments import writer

_SECONDS = flags.DEFINE_float('seconds', 3.0, 'Seconds of stepping per task.')
_EPISODES = flags.DEFINE_integer('episodes', 40,
                                 'Episodes in the generated datasets.')
_TASKS = ('cartpole_swingup', 'walker_walk', 'cheetah_run', 'humanoid_stand')


def env_steps_per_second(task: str, seconds: float) -> float:
  env = suite.make_environment(task, 0)
  shape = env.action_spec().shape
  rng = np.random.default_rng(0)
  state = {'timestep': env.reset()}

  def hundred_steps() -> int:
    for _ in range(100):
      if state['timestep'].last():
        state['timestep'] = env.reset()
      state['timestep'] = env.step(
          rng.uniform(-1, 1, shape).astype(np.float32))
    return 100

  return common.rate(hundred_steps, seconds)


def main(argv):
  del argv
  monitor = common.LoadMonitor()
  monitor.mark('start')
  env_rates = {task: env_steps_per_second(task, _SECONDS.value)
               for task in _TASKS}
  monitor.mark('env')
  tmp = tempfile.mkdtemp(prefix='env-bench-')
  try:
    generation = {}
    for workers in (1, 2):
      path = os.path.join(tmp, f'workers_{workers}')
      metadata, seconds = common.timed(lambda w=workers, p=path: (
          writer.write_dataset(p, 'cartpole_swingup', 'random',
                               _EPISODES.value, seed=0, workers=w)))
      generation[f'workers_{workers}_transitions_per_s'] = (
          metadata['num_transitions'] / seconds)
      monitor.mark(f'generate_{workers}')
    generation['speedup'] = (generation['workers_2_transitions_per_s'] /
                             generation['workers_1_transitions_per_s'])
    generation['transitions'] = metadata['num_transitions']
    data = dataset.load_dataset(path)
    count = data.num_transitions
    read = {}
    for key, read_fn in (
        ('generic_decode_transitions_per_s',
         lambda: data.decode_columns(fast=False)),
        ('decode_transitions_per_s',
         lambda: data.transitions(use_cache=False)),
        ('cold_cache_transitions_per_s', data.transitions),
        ('warm_cache_transitions_per_s',
         lambda: dataset.load_dataset(path).transitions())):
      _, seconds = common.timed(read_fn)
      read[key] = count / seconds
    monitor.mark('read')
  finally:
    shutil.rmtree(tmp)

  results = {'env_steps_per_s': env_rates, 'generation': generation,
             'read': read, 'seconds_per_task': _SECONDS.value}
  for task, value in env_rates.items():
    print(f'{task:>18}: {value:10,.0f} steps/s')
  print(f'generation: 1 process {generation["workers_1_transitions_per_s"]:,.0f}'
        f' transitions/s, 2 processes '
        f'{generation["workers_2_transitions_per_s"]:,.0f} '
        f'(x{generation["speedup"]:.2f})')
  print('read: ' + ', '.join(f'{k} {v:,.0f}' for k, v in read.items()))
  path = common.write_results('env_throughput', results, monitor)
  common.bar_panels(
      [('suite tasks, random policy', 'steps / s', env_rates),
       ('dataset generation (cartpole)', 'transitions / s',
        {'1 process': generation['workers_1_transitions_per_s'],
         '2 processes': generation['workers_2_transitions_per_s']}),
       ('dataset read (cartpole)', 'transitions / s',
        {'EnvLogger codec': read['generic_decode_transitions_per_s'],
         'fast decoder': read['decode_transitions_per_s'],
         'warm cache': read['warm_cache_transitions_per_s']})],
      path.replace('.json', '.png'),
      f'{os.cpu_count()} shared CPUs, load {monitor.summary()["one_minute_max"]}')
  print(f'wrote {path} and the PNG beside it')


if __name__ == '__main__':
  app.run(main)
