"""Benchmark: the data paths of the PAC Launchpad program (Reverb, loader, actors).

  python -m benchmarks.system_throughput [--quick]

Writes benchmarks/results/system_throughput.json and system_throughput.png.
Everything uses the 'test' preset on cartpole_swingup and an in-process Reverb
server built from `PACBuilder.make_replay_tables`.

  * reverb_fed_fraction: steps/s of a `PACLearner` (from
    `PACBuilder.make_learner`) fed by `MixedReplayIterator` from the `offline`
    table, divided by steps/s of the same learner object's jitted step fed one
    batch kept on the device. Phases alternate (device, Reverb, device, Reverb)
    in one process so both see the same machine load. Batch 256. Aim >= 0.9.
  * load_transitions_per_s: a random-policy dataset on disk -> `offline` table
    by the program's own `launchers.nodes.DatasetLoader.run()` (reading,
    EnvLogger decoding, n-step assembly, one Reverb item per transition), end
    to end. Also `load_read_only_per_s` (the same `iter_transitions` reading,
    no Reverb) and `load_insert_only_per_s` (the loader's writer loop on batches
    already in memory) so the bottleneck is visible. Aim >= 100k/s.
  * sample_per_s: transitions/s sampled from the filled `offline` table in
    batches of 256, through `MixedReplayIterator` and through a raw
    `reverb.TrajectoryDataset` (same batching, numpy iterator).
  * insert_per_s: Acme's `NStepTransitionAdder` (`PACBuilder.make_adder`) into
    the `online` table, transitions/s, from precomputed cartpole timesteps.
  * actor_env_steps_per_s: {1, 2, 4} actor processes, each with its own
    cartpole_swingup environment, an actor from `PACBuilder.make_actor` (the
    'sample' policy, parameters from a local VariableSource) and an adder into
    the parent's Reverb server; total environment steps/s over a window in
    which all of them run.
"""

import argparse
import itertools
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, Optional, Sequence

# EnvLogger's C++ code logs INFO lines at every file close; set before it loads.
os.environ.setdefault('GLOG_minloglevel', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common

JSON_NAME = 'system_throughput'
TASK = 'cartpole_swingup'
PRESET = 'test'
BATCH_SIZE = 256
ACTOR_COUNTS = (1, 2, 4)
AIM_REVERB_FED_FRACTION = 0.9
AIM_LOAD_PER_S = 100_000


def _agent_config(**overrides):
  from agents.pac import config as config_lib
  # Small min_replay_size: the benchmark tables hold ~10-20k transitions.
  settings = dict(preset=PRESET, batch_size=BATCH_SIZE, min_replay_size=256)
  settings.update(overrides)
  return config_lib.PACConfig(**settings)


def _server(spec, config, offline_size: int):
  import reverb
  from agents.pac import builder as builder_lib
  builder = builder_lib.PACBuilder(config, offline_table_size=offline_size)
  server = reverb.Server(builder.make_replay_tables(spec), port=None)
  client = reverb.Client(f'localhost:{server.port}')
  return server, client, builder


def _table_size(client, table: str) -> int:
  return client.server_info()[table].current_size


# ----------------------------------------------------------------------------
# Dataset -> offline table.
# ----------------------------------------------------------------------------

def measure_load(dataset_path: str, spec, config, tmp: str) -> Dict[str, Any]:
  """End-to-end DatasetLoader, read-only and insert-only rates."""
  import environments
  from agents.pac import replay
  from launchers import config as run_config_lib
  from launchers import nodes

  with environments.load_dataset(dataset_path) as data:
    total = data.num_nstep_transitions(config.n_step)
  loader_batch = 1024  # DatasetLoader's default.

  # Read only: the loader's reading loop without Reverb.
  start = time.perf_counter()
  batches = []
  with environments.load_dataset(dataset_path) as data:
    for batch in data.iter_transitions(batch_size=loader_batch,
                                       n_step=config.n_step,
                                       discount=config.discount):
      batches.append(batch._replace(extras=()))
  read_s = time.perf_counter() - start
  read_count = sum(len(b.reward) for b in batches)

  # Insert only: the loader's insert path (replay.insert_transitions) on
  # batches already in memory.
  server, client, _ = _server(spec, config, offline_size=total)
  start = time.perf_counter()
  with client.trajectory_writer(num_keep_alive_refs=1) as writer:
    for batch in batches:
      replay.insert_transitions(writer, replay.OFFLINE_TABLE, batch)
  insert_s = time.perf_counter() - start
  assert _table_size(client, replay.OFFLINE_TABLE) == read_count
  server.stop()

  # Diagnostic: the same loop with num_keep_alive_refs=32, i.e. Reverb chunks
  # of 32 rows instead of 1 (fewer, larger compressed chunks). Not what the
  # loader does: each sampled item would then carry its whole chunk.
  server, client, _ = _server(spec, config, offline_size=total)
  start = time.perf_counter()
  with client.trajectory_writer(num_keep_alive_refs=32) as writer:
    for batch in batches:
      replay.insert_transitions(writer, replay.OFFLINE_TABLE, batch)
  chunked_s = time.perf_counter() - start
  server.stop()
  del batches

  # End to end: the program's own DatasetLoader node, outside Launchpad (its
  # stop check needs a Launchpad node thread, so it is stubbed to "not stopped").
  server, client, _ = _server(spec, config, offline_size=total)
  run_config = run_config_lib.RunConfig(
      mode='offline', task=TASK, run_dir=os.path.join(tmp, 'run'),
      dataset=dataset_path, agent=config)
  os.makedirs(run_config.run_dir, exist_ok=True)
  stopping = nodes._stopping  # pylint: disable=protected-access
  nodes._stopping = lambda: False  # pylint: disable=protected-access
  try:
    start = time.perf_counter()
    nodes.DatasetLoader(run_config, client, batch_size=loader_batch).run()
    load_s = time.perf_counter() - start
  finally:
    nodes._stopping = stopping  # pylint: disable=protected-access
  loaded = _table_size(client, replay.OFFLINE_TABLE)
  server.stop()
  assert loaded == total, (loaded, total)
  return {
      'transitions': total,
      'loader_batch_size': loader_batch,
      'load_transitions_per_s': total / load_s,
      'load_read_only_per_s': read_count / read_s,
      'load_insert_only_per_s': read_count / insert_s,
      'diagnostic_insert_only_chunk_32_per_s': read_count / chunked_s,
      'seconds': {'end_to_end': load_s, 'read_only': read_s,
                  'insert_only': insert_s},
      'us_per_transition': {'end_to_end': 1e6 * load_s / total,
                            'read_only': 1e6 * read_s / read_count,
                            'insert_only': 1e6 * insert_s / read_count},
  }


def _fill_offline(client, dataset_path: str, config) -> int:
  """Fills `offline` the DatasetLoader's way (no timing)."""
  import environments
  from agents.pac import replay
  count = 0
  with environments.load_dataset(dataset_path) as data, \
      client.trajectory_writer(num_keep_alive_refs=1) as writer:
    for batch in data.iter_transitions(batch_size=1024, n_step=config.n_step,
                                       discount=config.discount):
      replay.insert_transitions(writer, replay.OFFLINE_TABLE,
                                batch._replace(extras=()))
      count += len(batch.reward)
  return count


# ----------------------------------------------------------------------------
# Sampling, inserting.
# ----------------------------------------------------------------------------

def measure_sample(server_address: str, seconds: float) -> Dict[str, Any]:
  import reverb
  import tensorflow as tf
  from agents.pac import replay

  iterator = replay.MixedReplayIterator(server_address, BATCH_SIZE,
                                        lambda step: 0.0)
  next(iterator)  # Start the stream (and its prefetch) before timing.
  mixed = common.rate_for(lambda: len(next(iterator).data.reward), seconds,
                          min_calls=5)
  dataset = reverb.TrajectoryDataset.from_table_signature(
      server_address=server_address, table=replay.OFFLINE_TABLE,
      max_in_flight_samples_per_worker=2 * BATCH_SIZE)
  raw_iterator = dataset.batch(BATCH_SIZE, drop_remainder=True).prefetch(
      tf.data.AUTOTUNE).as_numpy_iterator()
  next(raw_iterator)
  raw = common.rate_for(lambda: len(next(raw_iterator).data.reward), seconds,
                        min_calls=5)
  return {
      'batch_size': BATCH_SIZE,
      'mixed_replay_iterator_per_s': mixed['per_s'],
      'raw_trajectory_dataset_per_s': raw['per_s'],
      'mixed_replay_iterator_batches_per_s': mixed['calls'] / mixed['seconds'],
      'raw_trajectory_dataset_batches_per_s': raw['calls'] / raw['seconds'],
      'notes': ('MixedReplayIterator: TrajectoryDataset with its default 2 '
                'workers, .batch(256).prefetch(AUTOTUNE); raw: '
                'TrajectoryDataset.from_table_signature (default workers), '
                'same batching.'),
  }


def _cartpole_timesteps(num_steps: int):
  """Real cartpole_swingup timesteps (random actions), precomputed."""
  import environments
  import numpy as np
  env = environments.make_environment(TASK, seed=1)
  rng = np.random.default_rng(0)
  shape = env.action_spec().shape
  timestep = env.reset()
  steps = [(None, timestep)]
  for _ in range(num_steps):
    action = rng.uniform(-1, 1, shape).astype(np.float32)
    timestep = env.step(action)
    steps.append((action, timestep))
    if timestep.last():
      timestep = env.reset()
      steps.append((None, timestep))
  env.close()
  return steps


def measure_insert(builder, client, num_steps: int) -> Dict[str, Any]:
  """NStepTransitionAdder into `online`: transitions/s (adder work only)."""
  from agents.pac import replay
  steps = _cartpole_timesteps(num_steps)
  before = _table_size(client, replay.ONLINE_TABLE)
  adder = builder.make_adder(client)
  start = time.perf_counter()
  for action, timestep in steps:
    if action is None:
      adder.add_first(timestep)
    else:
      adder.add(action, timestep)
  adder.reset()  # Flushes the writer.
  elapsed = time.perf_counter() - start
  inserted = _table_size(client, replay.ONLINE_TABLE) - before
  return {'insert_per_s': inserted / elapsed, 'transitions': inserted,
          'env_steps_fed': num_steps, 'seconds': elapsed,
          'n_step': builder.config.n_step}


# ----------------------------------------------------------------------------
# Learner: Reverb-fed vs device-resident.
# ----------------------------------------------------------------------------

def measure_learner(spec, builder, client, phase_seconds: float,
                    rounds: int) -> Dict[str, Any]:
  """Alternating phases of the same PACLearner on two iterators."""
  import jax
  from acme.utils import loggers
  from agents.pac import networks as networks_lib

  config = builder.config
  networks = networks_lib.make_networks(spec, config)
  reverb_iterator = builder.make_dataset_iterator(client)

  class Switch:
    """One learner, two sources: the phase picks which one `next` reads."""

    def __init__(self):
      self.source = reverb_iterator

    def __iter__(self):
      return self

    def __next__(self):
      return next(self.source)

  switch = Switch()
  learner = builder.make_learner(jax.random.PRNGKey(0), networks, switch)
  learner._logger = loggers.NoOpLogger()  # pylint: disable=protected-access
  # The device-resident batch: one real batch from the table, on the device.
  resident = jax.device_put(next(reverb_iterator).data)
  device_iterator = itertools.repeat(resident)

  start = time.perf_counter()
  switch.source = device_iterator
  learner.step()  # Compiles (or loads from the persistent cache).
  compile_s = time.perf_counter() - start
  switch.source = reverb_iterator
  for _ in range(2):
    learner.step()  # Warm the Reverb stream and its prefetch.

  phases = []
  for _ in range(rounds):
    for name, source in (('device', device_iterator),
                         ('reverb', reverb_iterator)):
      switch.source = source

      def one_step():
        learner.step()
        return 1

      rate = common.rate_for(one_step, phase_seconds, min_calls=3)
      phases.append({'source': name, 'steps_per_s': rate['per_s'],
                     'steps': rate['units'], 'seconds': rate['seconds'],
                     'load_1min': common.load_average()[:1]})
      print(f'  learner phase {name}: {rate["per_s"]:.3f} steps/s '
            f'({rate["units"]} steps)', flush=True)

  def total_rate(name):
    chosen = [p for p in phases if p['source'] == name]
    return (sum(p['steps'] for p in chosen) /
            sum(p['seconds'] for p in chosen))

  device_rate, reverb_rate = total_rate('device'), total_rate('reverb')
  pair_ratios = [phases[i + 1]['steps_per_s'] / phases[i]['steps_per_s']
                 for i in range(0, len(phases), 2)]
  return {
      'reverb_fed_fraction': reverb_rate / device_rate,
      'reverb_fed_steps_per_s': reverb_rate,
      'device_resident_steps_per_s': device_rate,
      'per_round_fraction': pair_ratios,
      'per_round_fraction_median': statistics.median(pair_ratios),
      'phases': phases,
      'first_step_s (compile or cache load)': compile_s,
      'batch_size': config.batch_size,
      'learner': ('PACBuilder.make_learner: PACLearner.step() (jitted sgd step, '
                  'metrics to host, NaN checks), logger replaced by NoOpLogger'),
  }


# ----------------------------------------------------------------------------
# Actors in separate processes.
# ----------------------------------------------------------------------------

def _actor_worker(index: int, server_address: str, commands, results) -> None:
  """Runs in a child process: builds one actor, then acts on command."""
  try:
    import agents  # noqa: F401
    import launchers  # noqa: F401  (persistent compile cache)
    import environments
    import jax
    import reverb
    from acme import core
    from acme import specs
    from agents.pac import networks as networks_lib

    class LocalVariableSource(core.VariableSource):

      def __init__(self, params):
        self._params = params

      def get_variables(self, names):
        return [self._params for _ in names]

    config = _agent_config()
    env = environments.make_environment(TASK, seed=100 + index)
    spec = specs.make_environment_spec(env)
    from agents.pac import builder as builder_lib
    builder = builder_lib.PACBuilder(config)
    networks = networks_lib.make_networks(spec, config)
    params = jax.device_get(networks.init(jax.random.PRNGKey(0)))
    client = reverb.Client(server_address)
    actor = builder.make_actor(jax.random.PRNGKey(index),
                               builder.make_policy(networks),
                               builder.make_adder(client),
                               LocalVariableSource(params))

    timestep = env.reset()
    actor.observe_first(timestep)

    def act(until: float) -> int:
      nonlocal timestep
      steps = 0
      while time.time() < until:
        action = actor.select_action(timestep.observation)
        timestep = env.step(action)
        actor.observe(action, next_timestep=timestep)
        actor.update()
        steps += 1
        if timestep.last():
          timestep = env.reset()
          actor.observe_first(timestep)
      return steps

    act(time.time() + 1.0)  # Compile the policy, warm everything.
    results.put(('ready', index, None))
    while True:
      command = commands.get()
      if command is None:
        break
      start_at, stop_at = command
      time.sleep(max(0.0, start_at - time.time()))
      began = time.time()
      steps = act(stop_at)
      results.put(('done', index, (steps, time.time() - began)))
  except Exception as e:  # pylint: disable=broad-except
    import traceback
    results.put(('error', index, traceback.format_exc()[-2000:]))
    raise e


def measure_actor_breakdown(spec, builder, client,
                            steps: int) -> Dict[str, Any]:
  """One in-process actor: ms per env step in select_action, env.step, observe.

  observe() is where the n-step adder writes to Reverb; select_action runs the
  jitted policy (dispatch, host<->device copies included).
  """
  import environments
  import jax
  from acme import core
  from agents.pac import networks as networks_lib

  networks = networks_lib.make_networks(spec, builder.config)
  params = jax.device_get(networks.init(jax.random.PRNGKey(0)))

  class LocalVariableSource(core.VariableSource):

    def get_variables(self, names):
      return [params for _ in names]

  env = environments.make_environment(TASK, seed=7)
  actor = builder.make_actor(jax.random.PRNGKey(0),
                             builder.make_policy(networks),
                             builder.make_adder(client), LocalVariableSource())
  timestep = env.reset()
  actor.observe_first(timestep)
  totals = {'select_action': 0.0, 'env_step': 0.0, 'observe_and_update': 0.0}
  for i in range(steps + 100):  # The first 100 steps warm up (compile).
    t0 = time.perf_counter()
    action = actor.select_action(timestep.observation)
    t1 = time.perf_counter()
    timestep = env.step(action)
    t2 = time.perf_counter()
    actor.observe(action, next_timestep=timestep)
    actor.update()
    t3 = time.perf_counter()
    if i >= 100:
      totals['select_action'] += t1 - t0
      totals['env_step'] += t2 - t1
      totals['observe_and_update'] += t3 - t2
    if timestep.last():
      timestep = env.reset()
      actor.observe_first(timestep)
  env.close()
  ms = {k: 1e3 * v / steps for k, v in totals.items()}
  ms['total'] = sum(ms.values())
  ms['implied_steps_per_s'] = 1e3 / ms['total']
  ms['steps'] = steps
  return ms


def measure_actors(server_address: str, client, seconds: float,
                   counts: Sequence[int]) -> Dict[str, Any]:
  from agents.pac import replay
  context = multiprocessing.get_context('spawn')
  results = context.Queue()
  workers = []
  commands = []
  start = time.perf_counter()
  for index in range(max(counts)):
    queue = context.Queue()
    process = context.Process(target=_actor_worker,
                              args=(index, server_address, queue, results),
                              daemon=True)
    process.start()
    workers.append(process)
    commands.append(queue)
  try:
    ready = 0
    while ready < len(workers):
      kind, index, payload = results.get(timeout=600)
      if kind == 'error':
        raise RuntimeError(f'actor {index} failed:\n{payload}')
      ready += 1
    startup_s = time.perf_counter() - start
    rates: Dict[str, float] = {}
    details = {}
    for count in counts:
      before = _table_size(client, replay.ONLINE_TABLE)
      start_at = time.time() + 0.5
      for queue in commands[:count]:
        queue.put((start_at, start_at + seconds))
      per_actor = []
      for _ in range(count):
        kind, index, payload = results.get(timeout=seconds + 120)
        if kind == 'error':
          raise RuntimeError(f'actor {index} failed:\n{payload}')
        per_actor.append(payload[0] / payload[1])
      inserted = _table_size(client, replay.ONLINE_TABLE) - before
      rates[str(count)] = sum(per_actor)
      details[str(count)] = {
          'per_actor_steps_per_s': per_actor,
          'online_items_inserted': inserted,
          'load_1min_after': common.load_average()[:1],
      }
      print(f'  {count} actor(s): {sum(per_actor):,.0f} env steps/s total',
            flush=True)
  finally:
    for queue in commands:
      queue.put(None)
    for process in workers:
      process.join(timeout=30)
      if process.is_alive():
        process.terminate()
  return {'actor_env_steps_per_s': rates, 'details': details,
          'seconds_per_count': seconds, 'process_startup_s': startup_s}


# ----------------------------------------------------------------------------
# Output.
# ----------------------------------------------------------------------------

def _plot(results: Dict[str, Any], path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  fig, axes = plt.subplots(1, 4, figsize=(17, 4.2),
                           gridspec_kw={'width_ratios': [1.1, 1.6, 1.2, 1.1]})
  learner = results['details']['learner']
  axes[0].bar(['device-resident', 'Reverb-fed'],
              [learner['device_resident_steps_per_s'],
               learner['reverb_fed_steps_per_s']],
              color=['tab:gray', 'tab:blue'])
  axes[0].set_ylabel('learner steps / s')
  axes[0].set_title(f'Learner, B={BATCH_SIZE}: fraction '
                    f'{results["reverb_fed_fraction"]:.2f} (aim 0.9)')
  common.annotate_bars(axes[0], '{:.2f}')

  rates = {
      'load end to end': results['load_transitions_per_s'],
      'load read only': results['details']['load']['load_read_only_per_s'],
      'load insert only': results['details']['load']['load_insert_only_per_s'],
      'insert only, chunk 32 (diag.)':
          results['details']['load']['diagnostic_insert_only_chunk_32_per_s'],
      'sample (Mixed)': results['sample_per_s']['mixed_replay_iterator'],
      'sample (raw)': results['sample_per_s']['raw_trajectory_dataset'],
      'insert (n-step adder)': results['insert_per_s'],
  }
  axes[1].bar(list(rates), list(rates.values()),
              color=['tab:red', 'tab:orange', 'tab:orange', 'tab:olive',
                     'tab:green',
                     'tab:green', 'tab:purple'])
  axes[1].axhline(AIM_LOAD_PER_S, color='k', ls='--', lw=1)
  axes[1].annotate('100k/s load aim', (0, AIM_LOAD_PER_S), fontsize=7,
                   va='bottom')
  axes[1].set_yscale('log')
  axes[1].set_ylabel('transitions / s (log)')
  axes[1].set_title('Reverb data paths')
  axes[1].tick_params(axis='x', labelrotation=30, labelsize=8)
  for label in axes[1].get_xticklabels():
    label.set_horizontalalignment('right')
  common.annotate_bars(axes[1], '{:,.0f}')

  actors = results['actor_env_steps_per_s']
  axes[2].bar(list(actors), list(actors.values()), color='tab:cyan')
  axes[2].set_xlabel('actor processes')
  axes[2].set_ylabel('total env steps / s')
  axes[2].set_title(f'Actors ({PRESET} preset, {TASK})')
  common.annotate_bars(axes[2], '{:,.0f}')

  phases = learner['phases']
  for name, color in (('device', 'tab:gray'), ('reverb', 'tab:blue')):
    xs = [i for i, p in enumerate(phases) if p['source'] == name]
    axes[3].plot(xs, [phases[i]['steps_per_s'] for i in xs], 'o-',
                 color=color, label=name)
  axes[3].set_xlabel('phase (alternating)')
  axes[3].set_ylabel('learner steps / s')
  axes[3].set_title('Learner phases (load drift)')
  axes[3].legend(fontsize=8)
  load = results['load_average']
  fig.suptitle(f'PAC system throughput, {results["date"][:10]}, '
               f'{results["machine"]["cpu_count"]} CPUs (shared, 1-min load '
               f'{load["one_minute_min"]}-{load["one_minute_max"]})',
               fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def run(args: argparse.Namespace) -> Dict[str, Any]:
  quick = args.quick
  monitor = common.LoadMonitor()
  monitor.mark('start')
  import agents  # noqa: F401  (Acme's JAX aliases; TFP before TF)
  import launchers  # noqa: F401  (persistent JAX compile cache)
  import environments
  from acme import specs

  config = _agent_config()
  env = environments.make_environment(TASK, seed=0)
  spec = specs.make_environment_spec(env)
  env.close()
  episodes = args.episodes or (5 if quick else 20)
  with tempfile.TemporaryDirectory() as tmp:
    dataset_path = os.path.join(tmp, 'dataset')
    print(f'writing a {episodes}-episode random {TASK} dataset...', flush=True)
    start = time.perf_counter()
    environments.write_dataset(dataset_path, TASK, 'random', episodes, seed=0)
    write_s = time.perf_counter() - start

    print('load: end to end, read only, insert only...', flush=True)
    load = measure_load(dataset_path, spec, config, tmp)
    load['dataset_write_s'] = write_s
    monitor.mark('after_load')
    print(f'  end to end {load["load_transitions_per_s"]:,.0f}/s, read only '
          f'{load["load_read_only_per_s"]:,.0f}/s, insert only '
          f'{load["load_insert_only_per_s"]:,.0f}/s', flush=True)

    server, client, builder = _server(spec, config,
                                      offline_size=load['transitions'])
    _fill_offline(client, dataset_path, config)
  address = f'localhost:{server.port}'

  print('sampling...', flush=True)
  sample = measure_sample(address, seconds=2.0 if quick else 5.0)
  monitor.mark('after_sample')
  print(f'  MixedReplayIterator {sample["mixed_replay_iterator_per_s"]:,.0f}'
        f'/s, raw TrajectoryDataset '
        f'{sample["raw_trajectory_dataset_per_s"]:,.0f}/s', flush=True)

  print('inserting (NStepTransitionAdder)...', flush=True)
  insert = measure_insert(builder, client, 3000 if quick else 10000)
  monitor.mark('after_insert')
  print(f'  {insert["insert_per_s"]:,.0f} transitions/s', flush=True)

  print('learner: device-resident vs Reverb-fed...', flush=True)
  learner = measure_learner(spec, builder, client,
                            phase_seconds=args.phase_seconds or
                            (4.0 if quick else 10.0),
                            rounds=2 if quick else 3)
  monitor.mark('after_learner')
  print(f'  fraction {learner["reverb_fed_fraction"]:.3f} (reverb '
        f'{learner["reverb_fed_steps_per_s"]:.3f} / device '
        f'{learner["device_resident_steps_per_s"]:.3f} steps/s)', flush=True)

  print('one actor in process: per-step breakdown...', flush=True)
  breakdown = measure_actor_breakdown(spec, builder, client,
                                      500 if quick else 2000)
  print('  ms/step: ' + ', '.join(f'{k} {v:.3f}' for k, v in breakdown.items()
                                  if k not in ('steps',)), flush=True)
  print('actors in separate processes...', flush=True)
  counts = ACTOR_COUNTS
  actors = measure_actors(address, client,
                          seconds=args.actor_seconds or
                          (3.0 if quick else 6.0), counts=counts)
  actors['in_process_step_breakdown_ms'] = breakdown
  monitor.mark('after_actors')
  server.stop()
  monitor.mark('end')

  results = {
      'reverb_fed_fraction': learner['reverb_fed_fraction'],
      'load_transitions_per_s': load['load_transitions_per_s'],
      'load_read_only_per_s': load['load_read_only_per_s'],
      'load_insert_only_per_s': load['load_insert_only_per_s'],
      'sample_per_s': {
          'mixed_replay_iterator': sample['mixed_replay_iterator_per_s'],
          'raw_trajectory_dataset': sample['raw_trajectory_dataset_per_s'],
      },
      'insert_per_s': insert['insert_per_s'],
      'actor_env_steps_per_s': actors['actor_env_steps_per_s'],
      'aims': {
          'reverb_fed_fraction_min': AIM_REVERB_FED_FRACTION,
          'reverb_fed_fraction_met':
              learner['reverb_fed_fraction'] >= AIM_REVERB_FED_FRACTION,
          'load_transitions_per_s_min': AIM_LOAD_PER_S,
          'load_transitions_per_s_met':
              load['load_transitions_per_s'] >= AIM_LOAD_PER_S,
      },
      'details': {'learner': learner, 'load': load, 'sample': sample,
                  'insert': insert, 'actors': actors},
      'settings': {
          'quick': quick,
          'task': TASK,
          'preset': PRESET,
          'learner_batch_size': BATCH_SIZE,
          'dataset': f'{episodes} random-policy episodes',
          'n_step': config.n_step,
          'reverb_server': 'in-process reverb.Server, tables from '
                           'PACBuilder.make_replay_tables',
      },
      'load_average': monitor.summary(),
      'machine': common.machine_info(common.DEFAULT_PACKAGES + ('envlogger',)),
      'date': common.utc_now(),
  }
  return results


def main(argv: Optional[Sequence[str]] = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m benchmarks.system_throughput')
  parser.add_argument('--quick', action='store_true',
                      help='~1-2 minutes: smaller dataset, shorter phases')
  parser.add_argument('--episodes', type=int, default=None,
                      help='dataset episodes (1000 steps each; default 20, '
                      '5 quick)')
  parser.add_argument('--phase-seconds', type=float, default=None,
                      help='seconds per learner phase (default 10, 4 quick)')
  parser.add_argument('--actor-seconds', type=float, default=None,
                      help='seconds per actor count (default 6, 3 quick)')
  parser.add_argument('--out-dir', default=None,
                      help=f'default: {common.RESULTS_DIR}')
  args = parser.parse_args(argv)
  out_dir = args.out_dir or common.RESULTS_DIR
  results = run(args)
  path = common.write_json(JSON_NAME, results, out_dir)
  _plot(results, os.path.join(out_dir, f'{JSON_NAME}.png'))
  print(f'wrote {path} and {JSON_NAME}.png')


if __name__ == '__main__':
  main()
