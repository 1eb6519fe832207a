r"""Benchmark: the PAC agent's compute (learner steps/s, actor latency, scoring).

  python -m benchmarks.agent_throughput [--presets=test,32M] [--steps=20]

Writes benchmarks/results/agent_throughput.json and agent_throughput.png.
Per preset, on `networks.reference_spec()` (17 proprio scalars, 6 actions):
  * learner_steps_per_s: a `PACLearner` (the package's learner: K steps per
    jitted call, prefetch, donation) fed one fixed in-memory batch, so no
    input pipeline is timed; `--steps_per_call` and `--compute_dtype` set the
    learner's options.
  * flops_per_learner_step: XLA's cost analysis of the compiled one-step
    update (`make_sgd_step`); achieved_flops_per_s = that x steps/s.
  * actor_step_ms: the jitted 'sample' policy at batch 1 (median, p90).
  * multi_action_cost_ratio: encode + critic for 20 candidate actions over
    encode + critic for 1 (batch 1), timed interleaved. Aim <= 1.3.
Presets listed in `--abstract_presets` are too big for this CPU: their
parameter counts come from `jax.eval_shape`. Accelerator numbers measured
earlier are kept under `gpu` (see benchmarks/README.md).
"""

import itertools
import os
import statistics
import time
from typing import Any, Dict

# A CPU learner's threads as the launchers set them (--learner_cpu_threads=1);
# set XLA_FLAGS yourself to time other settings. Must precede JAX's start.
os.environ.setdefault(
    'XLA_FLAGS',
    '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1')

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

import agents  # noqa: F401  pylint: disable=unused-import  (before TF; JAX cache)
from benchmarks import common
# pylint: enable=g-import-not-at-top,wrong-import-position

_PRESETS = flags.DEFINE_list('presets', ['test', '32M'], 'Presets to time.')
_ABSTRACT = flags.DEFINE_list('abstract_presets', ['100M', '300M', '1B'],
                              'Presets to count only.')
_BATCH = flags.DEFINE_list('batch_sizes', ['test=256', '32M=32'],
                           'preset=batch pairs (default batch: 256).')
_STEPS = flags.DEFINE_integer('steps', 16, 'Timed learner steps per preset.')
_STEPS_PER_CALL = flags.DEFINE_integer('steps_per_call', 8,
                                       'Learner SGD steps per jitted call.')
_DTYPE = flags.DEFINE_enum('compute_dtype', 'float32',
                           ['float32', 'bfloat16'], 'Network compute dtype.')
_REPEATS = flags.DEFINE_integer('repeats', 50, 'Timed actor/scoring calls.')
_SCORED = 20


def _batch(spec, batch: int, seed: int):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from acme import types  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  obs = lambda: {k: rng.normal(size=(batch,) + tuple(s.shape)).astype(
      np.float32) for k, s in spec.observations.items()}
  return types.Transition(
      obs(), rng.uniform(-1, 1, (batch,) + spec.actions.shape).astype(
          np.float32), rng.uniform(size=batch).astype(np.float32),
      np.full(batch, 0.98, np.float32), obs(), ())


def measure_learner(preset: str, batch_size: int) -> Dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  from acme.utils import loggers  # pylint: disable=g-import-not-at-top
  from agents.pac import builder as builder_lib  # pylint: disable=g-import-not-at-top
  from agents.pac import config as config_lib  # pylint: disable=g-import-not-at-top
  from agents.pac import learning  # pylint: disable=g-import-not-at-top
  from agents.pac import networks as networks_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.PACConfig(
      preset=preset, batch_size=batch_size, compute_dtype=_DTYPE.value,
      learner_steps_per_call=_STEPS_PER_CALL.value, prefetch_batches=2)
  spec = networks_lib.reference_spec()
  networks = networks_lib.make_networks(spec, config)
  batch = _batch(spec, batch_size, 0)
  flops = learning.sgd_step_flops(networks, config, batch)
  builder = builder_lib.PACBuilder(
      config, logger_factory=lambda label: loggers.NoOpLogger())
  # The builder compiles the learner's call before returning it.
  learner, compile_s = common.timed(lambda: builder.make_learner(
      jax.random.PRNGKey(0), networks, itertools.repeat(batch)))
  learner.step()
  calls = max(1, _STEPS.value // _STEPS_PER_CALL.value)
  _, seconds = common.timed(lambda: [learner.step() for _ in range(calls)])
  steps_per_s = calls * _STEPS_PER_CALL.value / seconds
  return {'params': networks_lib.count_params(learner.state.params),
          'batch_size': batch_size, 'compute_dtype': _DTYPE.value,
          'steps_per_call': _STEPS_PER_CALL.value,
          'make_learner_s': compile_s, 'learner_steps_per_s': steps_per_s,
          'flops_per_learner_step': flops,
          'achieved_flops_per_s': flops * steps_per_s}


def _median_ms(fn, repeats: int) -> float:
  for _ in range(3):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def measure_actor(preset: str) -> Dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  from agents.pac import acting  # pylint: disable=g-import-not-at-top
  from agents.pac import config as config_lib  # pylint: disable=g-import-not-at-top
  from agents.pac import networks as networks_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.PACConfig(preset=preset, compute_dtype=_DTYPE.value)
  spec = networks_lib.reference_spec()
  networks = networks_lib.make_networks(spec, config)
  params = jax.jit(networks.init)(jax.random.PRNGKey(0))
  obs = jax.tree.map(lambda x: x[:1], _batch(spec, 1, 1).observation)
  policy = jax.jit(acting.make_policy(networks, config, 'sample'))
  key = jax.random.PRNGKey(2)
  actor_ms = _median_ms(lambda: policy(params, key, obs).block_until_ready(),
                        _REPEATS.value)
  score = jax.jit(lambda p, o, a: networks.critic_logits(
      p, networks.encode(p, o), a))
  actions = {m: jax.random.uniform(jax.random.PRNGKey(m), (1, m) + spec.actions.shape,
                                   minval=-1, maxval=1) for m in (1, _SCORED)}
  times = {m: [] for m in actions}
  for m in actions:
    score(params, obs, actions[m]).block_until_ready()
  for _ in range(_REPEATS.value):  # Interleaved: the same machine load.
    for m in actions:
      start = time.perf_counter()
      score(params, obs, actions[m]).block_until_ready()
      times[m].append(time.perf_counter() - start)
  return {'actor_step_ms': actor_ms,
          'multi_action_cost_ratio': (statistics.median(times[_SCORED]) /
                                      statistics.median(times[1]))}


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  from agents.pac import networks as networks_lib  # pylint: disable=g-import-not-at-top
  monitor = common.LoadMonitor()
  batches = dict(item.split('=') for item in _BATCH.value)
  presets = {}
  for preset in _PRESETS.value:
    monitor.mark(f'{preset}_start')
    presets[preset] = {**measure_learner(preset, int(batches.get(preset,
                                                                 256))),
                       **measure_actor(preset), 'measured': True}
    monitor.mark(f'{preset}_end')
    print(preset, {k: round(v, 4) if isinstance(v, float) else v
                   for k, v in presets[preset].items()})
  for preset in _ABSTRACT.value:
    presets[preset] = {'params': networks_lib.preset_param_count(preset),
                       'measured': False}
  previous = {}
  path = os.path.join(common.RESULTS_DIR.value, 'agent_throughput.json')
  if os.path.exists(path):
    import json  # pylint: disable=g-import-not-at-top
    with open(path) as f:
      previous = json.load(f)
  results = {'presets': presets, 'device': str(jax.devices()[0]),
             'aims': {'multi_action_cost_ratio_max': 1.3}}
  if 'gpu' in previous:  # Accelerator runs are not repeated on the CPU.
    results['gpu'] = previous['gpu']
  path = common.write_results('agent_throughput', results, monitor)
  measured = {p: v for p, v in presets.items() if v['measured']}
  common.bar_panels(
      [('learner (in-memory batch)', 'learner steps / s',
        {p: v['learner_steps_per_s'] for p, v in measured.items()}),
       ('actor step, batch 1', 'ms', {p: v['actor_step_ms']
                                      for p, v in measured.items()}),
       (f'encode + critic, {_SCORED} vs 1 actions', 'time ratio',
        {p: v['multi_action_cost_ratio'] for p, v in measured.items()})],
      path.replace('.json', '.png'),
      f'{results["device"]}, load {monitor.summary()["one_minute_max"]}')
  print(f'wrote {path} and the PNG beside it')


if __name__ == '__main__':
  app.run(main)
