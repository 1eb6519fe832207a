r"""Benchmark: the PAC program's data paths and its learner, Reverb-fed.

  python -m benchmarks.system_throughput [--dataset_episodes=200]
      [--seconds=10] [--rounds=2]

Writes benchmarks/results/system_throughput.json and system_throughput.png.
Everything runs the package's own code on a random-policy cartpole_swingup
dataset (`--dataset_episodes` x 1000 steps, written to a temporary directory)
with the main job's agent settings (`launchers.main_job.agent_config`):

  * dataset_load: the program's `DatasetLoader` filling the `offline` table
    of a Reverb server built by `PACBuilder.make_replay_tables`: `cold` with
    no decoded cache (EnvLogger decoding, cache written, blocks inserted),
    `warm` from the cache. `before` approximates the loader this replaced:
    EnvLogger's generic decoder and one Reverb item per transition.
  * learner: steps/s of a `PACLearner` made by `PACBuilder.make_learner` and
    fed by `PACBuilder.make_dataset_iterator` from a filled server in this
    process. `main_job_steps_per_s` uses the main job's settings (8 SGD steps
    per call, 2 calls prefetched, blocks of 8, one XLA thread);
    `main_job_steps_per_s_before` the same agent with every new option off
    (1 step per call, no prefetch, one transition per item, XLA's default
    threads). Each variant runs in its own process (XLA's threads are fixed
    per process); the two alternate `--rounds` times, `--seconds` each.
    `reverb_fed_fraction`: in the main-job process, steps/s when fed from
    Reverb over steps/s when fed one fixed batch from memory (no Reverb),
    phases alternating.
  * sample_per_s: transitions/s drawn by `make_dataset_iterator` (batch 256)
    with blocks of 8 and of 1.
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict

from absl import app
from absl import flags

import agents  # noqa: F401  pylint: disable=unused-import  (before TF; JAX cache)
from benchmarks import common

_EPISODES = flags.DEFINE_integer(
    'dataset_episodes', 200, 'Episodes (1000 transitions each) of the dataset.')
_SECONDS = flags.DEFINE_float('seconds', 10.0, 'Seconds per timed phase.')
_ROUNDS = flags.DEFINE_integer('rounds', 2, 'Alternations of the variants.')
# Internal: a learner process (`_learner_worker`).
_WORKER = flags.DEFINE_string('worker_variant', None, 'before or after.')
_SERVER = flags.DEFINE_string('worker_server', None, 'Reverb address.')
_DATASET = flags.DEFINE_string('worker_dataset', None, 'Dataset path.')

TASK = 'cartpole_swingup'
_RESULT = 'RESULT '
# The main job's learner settings, and the same agent with all of them off.
_VARIANTS = {
    'after': dict(learner_steps_per_call=8, prefetch_batches=2,
                  offline_block_size=8),
    'before': dict(learner_steps_per_call=1, prefetch_batches=0,
                   offline_block_size=1),
}


def _agent(variant: str, **overrides):
  from launchers import main_job  # pylint: disable=g-import-not-at-top
  return main_job.agent_config(**{**_VARIANTS[variant], **overrides})


def _server(spec, config, num_transitions: int):
  import reverb  # pylint: disable=g-import-not-at-top
  from agents.pac import builder as builder_lib  # pylint: disable=g-import-not-at-top
  builder = builder_lib.PACBuilder(config,
                                   offline_table_size=num_transitions)
  server = reverb.Server(builder.make_replay_tables(spec), port=None)
  return server, reverb.Client(f'localhost:{server.port}')


def _loader(path: str, config, client):
  from launchers import config as config_lib  # pylint: disable=g-import-not-at-top
  from launchers import nodes  # pylint: disable=g-import-not-at-top
  run = config_lib.RunConfig(mode='offline', task=TASK, run_dir='unused',
                             dataset=path, agent=config)
  return nodes.DatasetLoader(run, client, seed=0)


def measure_load(path: str, spec, count: int) -> Dict[str, Any]:
  """Cold, warm and old-path loads of the dataset into `offline`."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import environments  # pylint: disable=g-import-not-at-top
  from environments import nstep  # pylint: disable=g-import-not-at-top
  from agents.pac import replay  # pylint: disable=g-import-not-at-top
  results = {'transitions': count}
  config = _agent('after')
  shutil.rmtree(os.path.join(path, 'cache'), ignore_errors=True)
  for phase in ('cold', 'warm'):
    server, client = _server(spec, config, count)
    stats = _loader(path, config, client).load()
    assert stats['cache'] == ('built' if phase == 'cold' else 'warm'), stats
    assert client.server_info()[replay.OFFLINE_TABLE].current_size == (
        stats['items'])
    results[f'{phase}_transitions_per_s'] = count / stats['seconds']
    results[f'{phase}_seconds'] = stats['seconds']
    server.stop()
  before = _agent('before')
  server, client = _server(spec, before, count)
  start = time.perf_counter()
  data = environments.load_dataset(path)
  columns = data.decode_columns(fast=False)
  transitions = nstep.dataset_transitions(
      columns.observation, columns.action, columns.reward, columns.discount,
      {}, columns.episode_lengths, before.n_step, before.discount)
  replay.insert_offline(client, transitions,
                        replay.TransitionPacker.for_spec(spec), 1,
                        np.random.default_rng(0))
  results['before_transitions_per_s'] = count / (time.perf_counter() - start)
  server.stop()
  results['warm_vs_before'] = (results['warm_transitions_per_s'] /
                               results['before_transitions_per_s'])
  results['cold_vs_before'] = (results['cold_transitions_per_s'] /
                               results['before_transitions_per_s'])
  return results


def _learner_worker(variant: str, server: str, path: str,
                    seconds: float) -> None:
  """One learner process: prints steps/s (and, for 'after', the fed share)."""
  import jax  # pylint: disable=g-import-not-at-top
  from acme.utils import loggers  # pylint: disable=g-import-not-at-top
  import reverb  # pylint: disable=g-import-not-at-top
  import environments  # pylint: disable=g-import-not-at-top
  from agents.pac import builder as builder_lib  # pylint: disable=g-import-not-at-top
  from agents.pac import networks as networks_lib  # pylint: disable=g-import-not-at-top
  config = _agent(variant)
  spec = environments.load_dataset(path).spec
  builder = builder_lib.PACBuilder(
      config, logger_factory=lambda label: loggers.NoOpLogger())
  networks = networks_lib.make_networks(spec, config)
  client = reverb.Client(server)
  fed = builder.make_learner(jax.random.PRNGKey(0), networks,
                             builder.make_dataset_iterator(client), client)
  learners = {'fed': fed}
  if variant == 'after':
    batch = next(builder.make_dataset_iterator(client))
    learners['memory'] = builder.make_learner(
        jax.random.PRNGKey(0), networks, itertools.repeat(batch), client)
  for learner in learners.values():  # Compile (or load) and fill prefetch.
    for _ in range(3):
      learner.step()
  totals = {name: [0, 0.0] for name in learners}
  for _ in range(2):  # Alternate, so both see the same machine load.
    for name, learner in learners.items():
      steps, start = learner.num_steps, time.perf_counter()
      while time.perf_counter() - start < seconds / 2:
        learner.step()
      totals[name][0] += learner.num_steps - steps
      totals[name][1] += time.perf_counter() - start
  rates = {name: steps / elapsed for name, (steps, elapsed) in totals.items()}
  print(_RESULT + json.dumps(rates), flush=True)


def _run_learner(variant: str, server: str, path: str) -> Dict[str, float]:
  from launchers import placement  # pylint: disable=g-import-not-at-top
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)  # 'before': XLA's default threads.
  if variant == 'after':
    env.update(placement.cpu_threads_env(1))
  output = subprocess.run(
      [sys.executable, '-m', 'benchmarks.system_throughput',
       f'--worker_variant={variant}', f'--worker_server={server}',
       f'--worker_dataset={path}', f'--seconds={_SECONDS.value}'],
      env=env, check=True, capture_output=True, text=True).stdout
  line = [l for l in output.splitlines() if l.startswith(_RESULT)][-1]
  return json.loads(line[len(_RESULT):])


def measure_learner(path: str, spec, count: int,
                    monitor: common.LoadMonitor) -> Dict[str, Any]:
  servers = {}
  for variant in _VARIANTS:
    config = _agent(variant)
    servers[variant] = _server(spec, config, count)
    _loader(path, config, servers[variant][1]).load()
  runs = {variant: [] for variant in _VARIANTS}
  for round_index in range(_ROUNDS.value):
    for variant in ('before', 'after'):
      runs[variant].append(_run_learner(
          variant, f'localhost:{servers[variant][0].port}', path))
      monitor.mark(f'learner_{variant}_{round_index}')
  for server, _ in servers.values():
    server.stop()
  mean = lambda values: sum(values) / len(values)
  after = mean([r['fed'] for r in runs['after']])
  before = mean([r['fed'] for r in runs['before']])
  memory = mean([r['memory'] for r in runs['after']])
  return {'main_job_steps_per_s': after,
          'main_job_steps_per_s_before': before,
          'speedup': after / before,
          'reverb_fed_fraction': after / memory,
          'memory_fed_steps_per_s': memory,
          'per_round': runs}


def measure_sample(path: str, spec, count: int) -> Dict[str, float]:
  results = {}
  for variant, block in (('after', 8), ('before', 1)):
    config = _agent(variant, batch_size=256)
    server, client = _server(spec, config, count)
    _loader(path, config, client).load()
    from agents.pac import builder as builder_lib  # pylint: disable=g-import-not-at-top
    iterator = builder_lib.PACBuilder(config).make_dataset_iterator(client)
    next(iterator)
    results[f'blocks_of_{block}_transitions_per_s'] = common.rate(
        lambda it=iterator: len(next(it).reward), _SECONDS.value / 2)
    server.stop()
  return results


def main(argv):
  del argv
  if _WORKER.value:
    _learner_worker(_WORKER.value, _SERVER.value, _DATASET.value,
                    _SECONDS.value)
    return
  import environments  # pylint: disable=g-import-not-at-top
  from environments import writer  # pylint: disable=g-import-not-at-top
  monitor = common.LoadMonitor()
  monitor.mark('start')
  tmp = tempfile.mkdtemp(prefix='system-bench-')
  try:
    path = os.path.join(tmp, 'cartpole_random')
    writer.write_dataset(path, TASK, 'random', _EPISODES.value, seed=0,
                         workers=writer.default_workers())
    data = environments.load_dataset(path)
    spec = data.spec
    count = data.num_nstep_transitions(_agent('after').n_step)
    monitor.mark('dataset')
    results = {'dataset_load': measure_load(path, spec, count)}
    monitor.mark('load')
    results['learner'] = measure_learner(path, spec, count, monitor)
    results['sample_per_s'] = measure_sample(path, spec, count)
    monitor.mark('sample')
  finally:
    shutil.rmtree(tmp)
  results['settings'] = {'dataset_episodes': _EPISODES.value,
                         'seconds': _SECONDS.value, 'rounds': _ROUNDS.value,
                         'variants': _VARIANTS}
  print(json.dumps({k: v for k, v in results.items() if k != 'settings'},
                   indent=1))
  path = common.write_results('system_throughput', results, monitor)
  load, learner = results['dataset_load'], results['learner']
  common.bar_panels(
      [('dataset -> offline table', 'transitions / s',
        {'before': load['before_transitions_per_s'],
         'cold': load['cold_transitions_per_s'],
         'warm': load['warm_transitions_per_s']}),
       ('learner, main job settings, Reverb-fed', 'learner steps / s',
        {'before': learner['main_job_steps_per_s_before'],
         'after': learner['main_job_steps_per_s'],
         'after, fed from memory': learner['memory_fed_steps_per_s']})],
      path.replace('.json', '.png'),
      f'{os.cpu_count()} shared CPUs, 1-min load '
      f'{monitor.summary()["one_minute_min"]}-'
      f'{monitor.summary()["one_minute_max"]}')
  print(f'wrote {path} and the PNG beside it')


if __name__ == '__main__':
  app.run(main)
