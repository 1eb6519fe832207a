"""Benchmark: the PAC agent's compute (learner steps/s, actor latency, scoring).

  python -m benchmarks.agent_throughput [--quick]

Writes benchmarks/results/agent_throughput.json and agent_throughput.png.

What it measures, per preset ('test' and '32M' on the CPU by default):
  * learner_steps_per_s: the jitted `make_sgd_step` (the learner's real update:
    loss, grads, clipping, AdamW, target update, finiteness checks) on one
    synthetic batch kept on the device, so no input pipeline is timed.
  * flops_per_learner_step: XLA's `cost_analysis()` of the compiled step (falls
    back to the lowered, unoptimised HLO's estimate, and says which).
  * achieved_flops_fraction: flops_per_learner_step * steps/s divided by a
    matmul peak (best of a large f32 `jnp.dot`, 2048^2 on CPU) measured right
    before that preset's learner timing, so both see the same machine load.
  * actor_step_ms: the jitted 'sample' policy (encode + policy decoder +
    sampling), batch 1, reference_spec() observation; median and p90.
  * multi_action_cost_ratio: time of encode + critic for 20 candidate actions
    over time for 1 action (batch 1), the two timed interleaved. Aim <= 1.3.
    The top-level value is the largest CPU-measured preset's (32M).
The bigger presets (100M, 300M, 1B) are CPU-infeasible: their parameter counts
come from `jax.eval_shape` and the rest is marked as not measured here. A run on
an accelerator (`--presets 100M,300M,1B --json-name agent_throughput_gpu`) writes
its own file, which `--merge-gpu PATH` puts under the `gpu` key of the main one.

`--no-acme` runs the networks/loss/learner step without dm-acme, rlax, Reverb or
TensorFlow installed (minimal stand-ins for the few names those modules import;
`rlax.categorical_l2_project` is replaced by an equivalent projection). It is
for accelerator machines whose image lacks that stack; the CPU numbers always
use the real packages.
"""

import argparse
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

# pylint: disable=g-import-not-at-top,wrong-import-position
if __package__ in (None, ''):
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common

JSON_NAME = 'agent_throughput'
CPU_PRESETS = ('test', '32M')
ALL_PRESETS = ('test', '32M', '100M', '300M', '1B')
NUM_SCORED_ACTIONS = 20
AIM_MULTI_ACTION_RATIO = 1.3
AIM_32M_ACTOR_MS = 50.0


# ----------------------------------------------------------------------------
# Imports: the real stack, or stand-ins for machines without it (--no-acme).
# ----------------------------------------------------------------------------

def _install_stand_ins() -> None:
  """Registers minimal `acme`, `reverb`, `rlax` modules for agents.pac.

  Only what agents/pac/{config,networks,losses,learning,acting}.py touch at
  import time or inside the jitted step: spec/transition containers, batch-dim
  helpers, type aliases, the Learner base class and the C51 projection.
  """
  import types as pytypes
  from typing import NamedTuple
  import jax
  import jax.numpy as jnp
  import numpy as np

  def module(name, **attrs):
    mod = pytypes.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod

  class Array(NamedTuple):
    shape: tuple
    dtype: Any
    name: str = ''

  class BoundedArray(NamedTuple):
    shape: tuple
    dtype: Any
    minimum: Any
    maximum: Any
    name: str = ''

  class EnvironmentSpec(NamedTuple):
    observations: Any
    actions: Any
    rewards: Any
    discounts: Any

  class Transition(NamedTuple):
    observation: Any
    action: Any
    reward: Any
    discount: Any
    next_observation: Any
    extras: Any = ()

  def zeros_like(nest):
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), nest,
                        is_leaf=lambda x: isinstance(x, (Array, BoundedArray)))

  def add_batch_dim(nest):
    return jax.tree.map(lambda x: jnp.expand_dims(x, 0), nest)

  class _Base:  # acme.Learner / VariableSource / Actor stand-in.
    pass

  def categorical_l2_project(z_p, probs, z_q):
    # rlax.categorical_l2_project, written out (same maths).
    kp, kq = z_p.shape[-1], z_q.shape[-1]
    d_pos = jnp.roll(z_q, shift=-1)
    d_neg = jnp.roll(z_q, shift=1)
    z_p = jnp.clip(z_p, z_q[0], z_q[-1])[None, :]
    d_pos = (d_pos - z_q)[:, None]
    d_neg = (z_q - d_neg)[:, None]
    z_q = z_q[:, None]
    d_neg = jnp.where(d_neg > 0, 1. / d_neg, jnp.zeros_like(d_neg))
    d_pos = jnp.where(d_pos > 0, 1. / d_pos, jnp.zeros_like(d_pos))
    delta_qp = z_p - z_q
    d_sign = (delta_qp >= 0.).astype(probs.dtype)
    delta_hat = (d_sign * delta_qp * d_pos) - ((1. - d_sign) * delta_qp * d_neg)
    probs = probs[None, :]
    del kp, kq
    return jnp.sum(jnp.clip(1. - delta_hat, 0., 1.) * probs, axis=-1)

  specs = module('acme.specs', Array=Array, BoundedArray=BoundedArray,
                 DiscreteArray=Array, EnvironmentSpec=EnvironmentSpec)
  acme_types = module('acme.types', Transition=Transition, NestedArray=Any,
                      NestedSpec=Any)
  jax_utils = module('acme.jax.utils', zeros_like=zeros_like,
                     add_batch_dim=add_batch_dim)
  jax_networks = module('acme.jax.networks', Params=Any, PRNGKey=Any,
                        Observation=Any, Action=Any)
  counting = module('acme.utils.counting', Counter=_Base)
  loggers = module('acme.utils.loggers', Logger=_Base)
  acme_jax = module('acme.jax', utils=jax_utils, networks=jax_networks)
  acme_utils = module('acme.utils', counting=counting, loggers=loggers)
  acme = module('acme', specs=specs, types=acme_types, jax=acme_jax,
                utils=acme_utils, Learner=_Base, VariableSource=_Base,
                Actor=_Base)
  acme.__path__ = []
  acme_jax.__path__ = []
  acme_utils.__path__ = []
  class ReplaySample(NamedTuple):
    info: Any
    data: Any

  module('reverb', ReplaySample=ReplaySample)
  module('rlax', categorical_l2_project=categorical_l2_project)
  # Skip agents/__init__ (it installs Acme's JAX aliases via TFP): a bare
  # package object whose path lets `agents.pac.*` import normally.
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  agents_pkg = module('agents')
  agents_pkg.__path__ = [os.path.join(root, 'agents')]


def _import_agent(no_acme: bool):
  """Returns (config, networks, learning, acting, acme_types) modules."""
  if no_acme:
    _install_stand_ins()
  else:
    import agents  # noqa: F401  (Acme's JAX aliases; TFP before TF)
    try:
      import launchers  # noqa: F401  (persistent JAX compile cache)
    except Exception as e:  # pylint: disable=broad-except
      print(f'(no persistent compile cache: importing launchers failed: {e!r})')
  from agents.pac import acting
  from agents.pac import config
  from agents.pac import learning
  from agents.pac import networks
  from acme import types as acme_types
  return config, networks, learning, acting, acme_types


# ----------------------------------------------------------------------------
# Measurements.
# ----------------------------------------------------------------------------

def matmul_peak(size: int, repeats: int) -> Dict[str, float]:
  """Best FLOP/s of a jitted f32 [size, size] @ [size, size] (default precision)."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
  dot = jax.jit(jnp.dot)
  times = common.time_calls(lambda: dot(a, b).block_until_ready(), repeats,
                            warmup=2)
  flops = 2.0 * size ** 3
  return {'size': size, 'dtype': 'float32', 'flops': flops,
          'best_flops_per_s': flops / min(times),
          'median_flops_per_s': flops / statistics.median(times)}


def _cost_flops(compiled, lowered) -> Dict[str, Any]:
  """FLOPs of one call: compiled cost analysis, else the lowered HLO's."""
  for source, obj in (('compiled.cost_analysis()', compiled),
                      ('lowered.cost_analysis() (unoptimised HLO)', lowered)):
    try:
      analysis = obj.cost_analysis()
    except Exception:  # pylint: disable=broad-except
      continue
    if isinstance(analysis, (list, tuple)):
      analysis = analysis[0] if analysis else None
    if analysis and analysis.get('flops', 0) > 0:
      return {'flops': float(analysis['flops']), 'flops_source': source}
  return {'flops': None, 'flops_source': 'unavailable'}


def _observation(spec, batch: int, key):
  import jax
  import jax.numpy as jnp
  keys = jax.random.split(key, len(spec.observations))
  return {name: jax.random.normal(k, (batch,) + tuple(s.shape), jnp.float32)
          for k, (name, s) in zip(keys, sorted(spec.observations.items()))}


def _batch(spec, batch: int, key, acme_types):
  import jax
  import jax.numpy as jnp
  k = jax.random.split(key, 4)
  action_dim = spec.actions.shape[0]
  return acme_types.Transition(
      observation=_observation(spec, batch, k[0]),
      action=jax.random.uniform(k[1], (batch, action_dim), jnp.float32, -1, 1),
      reward=jax.random.uniform(k[2], (batch,), jnp.float32),
      discount=jnp.full((batch,), 0.99 ** 2, jnp.float32),
      next_observation=_observation(spec, batch, k[3]),
      extras=())


def measure_learner(modules, preset: str, batch_size: int, steps: int,
                    peak: float) -> Dict[str, Any]:
  """Steps/s of the jitted sgd step on one device-resident batch."""
  import jax
  config_lib, networks_lib, learning, _, acme_types = modules
  config = config_lib.PACConfig(preset=preset, batch_size=batch_size)
  spec = networks_lib.reference_spec()
  networks = networks_lib.make_networks(spec, config)
  optimizer = learning.make_optimizer(config)
  # Jitted like PACLearner does it (no buffer donation).
  step = jax.jit(learning.make_sgd_step(networks, config, optimizer))
  state = learning.init_training_state(networks, optimizer,
                                       jax.random.PRNGKey(0))
  batch = jax.device_put(_batch(spec, batch_size, jax.random.PRNGKey(1),
                                acme_types))
  start = time.perf_counter()
  lowered = step.lower(state, batch)
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  cost = _cost_flops(compiled, lowered)
  state, metrics = compiled(state, batch)  # Warm-up (first run allocations).
  jax.block_until_ready((state, metrics))
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(state.params)
    times.append(time.perf_counter() - t0)
  assert not bool(metrics['opt/nonfinite_update']), 'non-finite update'
  steps_per_s = 1.0 / statistics.median(times)
  result = {
      'batch_size': batch_size,
      'timed_steps': steps,
      'compile_s': compile_s,
      'step_ms': common.summarize_ms(times),
      'learner_steps_per_s': steps_per_s,
      'transitions_per_s': steps_per_s * batch_size,
      'flops_per_learner_step': cost['flops'],
      'flops_source': cost['flops_source'],
  }
  if cost['flops']:
    result['achieved_flops_per_s'] = cost['flops'] * steps_per_s
    result['achieved_flops_fraction'] = cost['flops'] * steps_per_s / peak
  else:
    result['achieved_flops_per_s'] = None
    result['achieved_flops_fraction'] = None
  del state, batch
  return result


def measure_actor_and_scoring(modules, preset: str, repeats: int
                              ) -> Dict[str, Any]:
  """Actor step (sample policy, B=1) and encode+critic for 1 vs 20 actions."""
  import jax
  import jax.numpy as jnp
  config_lib, networks_lib, _, acting, _ = modules
  config = config_lib.PACConfig(preset=preset)
  spec = networks_lib.reference_spec()
  networks = networks_lib.make_networks(spec, config)
  params = jax.jit(networks.init)(jax.random.PRNGKey(0))
  obs = _observation(spec, 1, jax.random.PRNGKey(1))
  key = jax.random.PRNGKey(2)

  policy = jax.jit(acting.make_policy(networks, config, 'sample'))
  actor_times = common.time_calls(
      lambda: policy(params, key, obs).block_until_ready(), repeats, warmup=3)

  @jax.jit
  def encode_and_score(params, obs, actions):
    latents = networks.encode(params, obs)
    return networks.critic_logits(params, latents, actions)

  @jax.jit
  def score_only(params, latents, actions):
    return networks.critic_logits(params, latents, actions)

  action_dim = spec.actions.shape[0]
  actions = {m: jax.random.uniform(jax.random.PRNGKey(m), (1, m, action_dim),
                                   jnp.float32, -1, 1)
             for m in (1, NUM_SCORED_ACTIONS)}
  latents = jax.jit(networks.encode)(params, obs)
  timed = {('full', m): [] for m in actions}
  timed.update({('critic', m): [] for m in actions})
  for m in actions:  # Compile and warm up.
    for _ in range(3):
      encode_and_score(params, obs, actions[m]).block_until_ready()
      score_only(params, latents, actions[m]).block_until_ready()
  for _ in range(repeats):  # Interleaved: both see the same machine load.
    for m in actions:
      t0 = time.perf_counter()
      encode_and_score(params, obs, actions[m]).block_until_ready()
      timed[('full', m)].append(time.perf_counter() - t0)
      t0 = time.perf_counter()
      score_only(params, latents, actions[m]).block_until_ready()
      timed[('critic', m)].append(time.perf_counter() - t0)
  med = {k: statistics.median(v) for k, v in timed.items()}
  many = NUM_SCORED_ACTIONS
  return {
      'params': networks_lib.count_params(params),
      'actor_step': common.summarize_ms(actor_times),
      'scoring': {
          'encode_plus_critic_1_action': common.summarize_ms(timed[('full', 1)]),
          f'encode_plus_critic_{many}_actions':
              common.summarize_ms(timed[('full', many)]),
          'critic_only_1_action': common.summarize_ms(timed[('critic', 1)]),
          f'critic_only_{many}_actions':
              common.summarize_ms(timed[('critic', many)]),
          'multi_action_cost_ratio': med[('full', many)] / med[('full', 1)],
          'critic_only_ratio': med[('critic', many)] / med[('critic', 1)],
      },
  }


def abstract_preset(modules, preset: str, batch_size: int,
                    with_flops: bool) -> Dict[str, Any]:
  """Param count (eval_shape) and, optionally, lowered-HLO FLOPs per step."""
  import jax
  config_lib, networks_lib, learning, _, acme_types = modules
  result = {'params': networks_lib.preset_param_count(preset)}
  if with_flops:
    config = config_lib.PACConfig(preset=preset, batch_size=batch_size)
    spec = networks_lib.reference_spec()
    networks = networks_lib.make_networks(spec, config)
    optimizer = learning.make_optimizer(config)
    state = jax.eval_shape(
        lambda k: learning.init_training_state(networks, optimizer, k),
        jax.random.PRNGKey(0))
    batch = jax.eval_shape(
        lambda k: _batch(spec, batch_size, k, acme_types), jax.random.PRNGKey(1))
    lowered = jax.jit(learning.make_sgd_step(networks, config,
                                             optimizer)).lower(state, batch)
    cost = _cost_flops(None, lowered)
    result.update(flops_per_learner_step_estimate=cost['flops'],
                  flops_source=cost['flops_source'],
                  flops_batch_size=batch_size)
  return result


# ----------------------------------------------------------------------------
# Output.
# ----------------------------------------------------------------------------

def _plot(results: Dict[str, Any], path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  groups = [('CPU', results['presets'])]
  if results.get('gpu', {}).get('presets'):
    device = results['gpu'].get('device', 'GPU').replace('NVIDIA ', '')
    groups.append((device.split()[0], results['gpu']['presets']))
  bars = []
  for label, presets in groups:
    for name, entry in presets.items():
      if entry.get('actor_step_ms') is not None:
        bars.append((f'{name}\n{label}', entry))
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  names = [b[0] for b in bars]
  positions = list(range(len(bars)))
  low = min([b[1]['learner_steps_per_s'] for b in bars
             if b[1]['learner_steps_per_s']] or [1.0]) / 3
  axes[0].bar(positions, [b[1]['learner_steps_per_s'] or low for b in bars],
              color=['tab:blue' if b[1]['learner_steps_per_s'] else 'white'
                     for b in bars])
  axes[0].set_xticks(positions, names)
  axes[0].set_yscale('log')
  axes[0].set_ylabel('learner steps / s (log)')
  axes[0].set_title('Learner (device-resident batch)')
  for patch, (_, entry) in zip(axes[0].patches, bars):
    if entry['learner_steps_per_s'] is None:
      axes[0].annotate('not\nmeasured', (patch.get_x() + patch.get_width() / 2,
                                          low), ha='center', va='bottom',
                       fontsize=7)
      continue
    axes[0].annotate(f'{entry["learner_steps_per_s"]:.3g}\nB={entry.get("batch_size")}',
                     (patch.get_x() + patch.get_width() / 2,
                      patch.get_height()), ha='center', va='bottom',
                     fontsize=7)
  axes[1].bar(names, [b[1]['actor_step_ms'] for b in bars],
              color='tab:orange')
  axes[1].axhline(AIM_32M_ACTOR_MS, color='k', ls='--', lw=1)
  axes[1].annotate('50 ms aim (32M)', (0, AIM_32M_ACTOR_MS), fontsize=7,
                   va='bottom')
  axes[1].set_yscale('log')
  axes[1].set_ylabel('actor step, median ms (log)')
  axes[1].set_title('Actor: sample policy, batch 1')
  common.annotate_bars(axes[1], '{:.3g}')
  ratios = [(n, e['multi_action_cost_ratio']) for n, e in bars
            if e.get('multi_action_cost_ratio') is not None]
  axes[2].bar([r[0] for r in ratios], [r[1] for r in ratios],
              color='tab:green')
  axes[2].axhline(AIM_MULTI_ACTION_RATIO, color='k', ls='--', lw=1)
  axes[2].set_ylabel(f'time({NUM_SCORED_ACTIONS} actions) / time(1 action)')
  axes[2].set_title('Encode + critic, batch 1 (aim <= 1.3)')
  common.annotate_bars(axes[2], '{:.2f}')
  for axis in axes:
    axis.tick_params(axis='x', labelsize=8)
  load = results['load_average']
  fig.suptitle(f'PAC agent throughput, {results["date"][:10]}, '
               f'{results["machine"]["cpu_count"]} CPUs (shared, 1-min load '
               f'{load["one_minute_min"]}-{load["one_minute_max"]})', fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _parse_presets(text: str) -> List[str]:
  presets = [p.strip() for p in text.split(',') if p.strip()]
  for p in presets:
    if p not in ALL_PRESETS:
      raise SystemExit(f'unknown preset {p!r}; expected from {ALL_PRESETS}')
  return presets


def _measure_preset(modules, preset: str, batch: int, steps: int, repeats: int,
                    peak_size: int, quick: bool, monitor: common.LoadMonitor):
  """(summary entry, details) of one preset: actor, scoring, learner."""
  print(f'[{preset}] actor and scoring ({repeats} repeats)...', flush=True)
  acting_result = measure_actor_and_scoring(modules, preset, repeats)
  monitor.mark(f'{preset}_after_actor')
  print(f'[{preset}] actor step median '
        f'{acting_result["actor_step"]["median_ms"]:.2f} ms; 20 vs 1 action '
        f'ratio {acting_result["scoring"]["multi_action_cost_ratio"]:.3f}')
  print(f'[{preset}] learner batch {batch}, {steps} timed steps...',
        flush=True)
  # The peak is re-measured next to each learner timing, so that the
  # fraction compares two numbers taken under the same (shared) load.
  local_peak = matmul_peak(peak_size, repeats=5 if quick else 10)
  learner_result = measure_learner(modules, preset, batch, steps,
                                   local_peak['best_flops_per_s'])
  learner_result['matmul_peak_flops_per_s'] = local_peak['best_flops_per_s']
  monitor.mark(f'{preset}_after_learner')
  print(f'[{preset}] {learner_result["learner_steps_per_s"]:.3f} steps/s '
        f'(compile {learner_result["compile_s"]:.1f} s), '
        f'FLOPs/step {learner_result["flops_per_learner_step"]} '
        f'({learner_result["flops_source"]}), fraction of matmul peak '
        f'{learner_result["achieved_flops_fraction"]}', flush=True)
  entry = {
      'params': acting_result['params'],
      'learner_steps_per_s': learner_result['learner_steps_per_s'],
      'actor_step_ms': acting_result['actor_step']['median_ms'],
      'achieved_flops_fraction': learner_result['achieved_flops_fraction'],
      'batch_size': batch,
      'multi_action_cost_ratio':
          acting_result['scoring']['multi_action_cost_ratio'],
      'measured': True,
  }
  return entry, {'learner': learner_result, **acting_result}


def _parse_batch_overrides(text: Optional[str]) -> Dict[str, int]:
  """'1B=128,300M=256' -> {'1B': 128, '300M': 256}."""
  overrides = {}
  for item in (text or '').split(','):
    if item.strip():
      name, value = item.split('=')
      overrides[name.strip()] = int(value)
  return overrides


def run(args: argparse.Namespace) -> Dict[str, Any]:
  monitor = common.LoadMonitor()
  monitor.mark('start')
  modules = _import_agent(args.no_acme)
  import jax
  device = jax.devices()[0]
  on_cpu = device.platform == 'cpu'
  measured = _parse_presets(args.presets)
  quick = args.quick

  peak = matmul_peak(args.matmul_size or (1024 if quick else 2048) if on_cpu
                     else (args.matmul_size or 8192), repeats=5 if quick else 10)
  print(f'matmul peak ({peak["size"]}^2 f32): '
        f'{peak["best_flops_per_s"] / 1e9:,.1f} GFLOP/s')
  monitor.mark('after_matmul_peak')

  presets: Dict[str, Dict[str, Any]] = {}
  details: Dict[str, Dict[str, Any]] = {}
  overrides = _parse_batch_overrides(args.batch_sizes)
  for preset in ALL_PRESETS:
    if preset not in measured:
      continue
    batch = overrides.get(preset) or args.batch_size or (
        256 if preset == 'test' else (16 if quick else 32) if on_cpu else 256)
    steps = args.steps or (
        (10 if quick else 30) if preset == 'test' else (3 if quick else 5)
        if on_cpu else 20)
    repeats = args.repeats or (20 if quick else 50)
    try:
      presets[preset], details[preset] = _measure_preset(
          modules, preset, batch, steps, repeats, peak['size'], quick, monitor)
    except Exception as e:  # pylint: disable=broad-except
      # E.g. out of device memory for the biggest preset: keep the others.
      message = f'{type(e).__name__}: {str(e)[:500]}'
      print(f'[{preset}] FAILED: {message}', flush=True)
      presets[preset] = {'params': None, 'learner_steps_per_s': None,
                         'actor_step_ms': None,
                         'achieved_flops_fraction': None, 'batch_size': batch,
                         'measured': False, 'error': message}
      details[preset] = {'error': message}

  for preset in ALL_PRESETS:
    if preset in measured or args.skip_abstract:
      continue
    abstract = abstract_preset(modules, preset, 256,
                               with_flops=not quick and not args.no_hlo_flops)
    presets[preset] = {
        'params': abstract['params'],
        'learner_steps_per_s': None,
        'actor_step_ms': None,
        'achieved_flops_fraction': None,
        'measured': False,
        'note': ('not measured on this machine (CPU-infeasible); see the '
                 '`gpu` key for accelerator numbers'),
    }
    details[preset] = abstract
    print(f'[{preset}] params {abstract["params"]:,} (eval_shape); '
          f'FLOPs/step at B=256 (HLO estimate): '
          f'{abstract.get("flops_per_learner_step_estimate")}')
  monitor.mark('end')

  headline = next((p for p in ('32M', '100M', 'test') if p in details and
                   'scoring' in details.get(p, {})), None)
  ratio = (details[headline]['scoring']['multi_action_cost_ratio']
           if headline else None)
  actor_32m = presets.get('32M', {}).get('actor_step_ms')
  results = {
      'multi_action_cost_ratio': ratio,
      'multi_action_cost_ratio_preset': headline,
      'presets': presets,
      'aims': {
          'multi_action_cost_ratio_max': AIM_MULTI_ACTION_RATIO,
          'multi_action_cost_ratio_met': (ratio is not None and
                                          ratio <= AIM_MULTI_ACTION_RATIO),
          'actor_step_32M_ms_max': AIM_32M_ACTOR_MS,
          'actor_step_32M_met': (None if actor_32m is None else
                                 actor_32m < AIM_32M_ACTOR_MS),
      },
      'matmul_peak': peak,
      'details': details,
      'settings': {
          'quick': quick,
          'device': str(device),
          'device_kind': getattr(device, 'device_kind', str(device)),
          'platform': device.platform,
          'dtype': 'float32 parameters and activations (XLA default matmul '
                   'precision)',
          'spec': 'networks.reference_spec(): position (8,), velocity (9,), '
                  '6 actions',
          'num_scored_actions': NUM_SCORED_ACTIONS,
          'learner_batch': 'synthetic Transition kept on device; jitted '
                           'make_sgd_step (as PACLearner jits it); median step time',
          'stand_ins_for_acme_rlax_reverb': bool(args.no_acme),
      },
      'load_average': monitor.summary(),
      'machine': common.machine_info(),
      'date': common.utc_now(),
  }
  return results


def main(argv: Optional[Sequence[str]] = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m benchmarks.agent_throughput')
  parser.add_argument('--quick', action='store_true',
                      help='~1 minute: fewer repeats/steps, smaller batch')
  parser.add_argument('--presets', default=','.join(CPU_PRESETS),
                      help='presets to measure (default: test,32M)')
  parser.add_argument('--batch-size', type=int, default=None,
                      help='learner batch (default: 256 for test; 32 (16 '
                      'quick) for bigger presets on CPU; 256 on accelerators)')
  parser.add_argument('--batch-sizes', default=None,
                      help="per-preset learner batch, e.g. '1B=128'")
  parser.add_argument('--steps', type=int, default=None,
                      help='timed learner steps per preset')
  parser.add_argument('--repeats', type=int, default=None,
                      help='timed actor/scoring calls (default 50, 20 quick)')
  parser.add_argument('--matmul-size', type=int, default=None)
  parser.add_argument('--skip-abstract', action='store_true',
                      help='do not list the unmeasured presets')
  parser.add_argument('--no-hlo-flops', action='store_true',
                      help='skip the lowered-HLO FLOPs of unmeasured presets')
  parser.add_argument('--no-acme', action='store_true',
                      help='use stand-ins for acme/rlax/reverb (GPU images)')
  parser.add_argument('--json-name', default=JSON_NAME)
  parser.add_argument('--out-dir', default=None,
                      help=f'default: {common.RESULTS_DIR}')
  parser.add_argument('--merge-gpu', default=None, nargs='+', metavar='PATH',
                      help='only put the JSON files at PATH... (accelerator '
                      'runs) under the `gpu` key of the main results file, '
                      'and re-plot')
  args = parser.parse_args(argv)
  out_dir = args.out_dir or common.RESULTS_DIR

  if args.merge_gpu:
    import json
    runs = []
    for path in args.merge_gpu:
      with open(path) as f:
        runs.append(json.load(f))
    results = common.read_json(JSON_NAME, out_dir)
    results['gpu'] = _gpu_section(runs)
  else:
    results = run(args)
    previous = common.read_json(args.json_name, out_dir)
    if 'gpu' in previous and args.json_name == JSON_NAME:
      results['gpu'] = previous['gpu']  # Kept from an earlier accelerator run.
  path = common.write_json(args.json_name, results, out_dir)
  if args.json_name == JSON_NAME:
    _plot(results, os.path.join(out_dir, f'{JSON_NAME}.png'))
  print(f'wrote {path}' + (' and the PNG' if args.json_name == JSON_NAME
                           else ''))


def _gpu_section(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
  """Accelerator runs (one file per preset or several), under the `gpu` key."""
  first = runs[0]
  devices = first.get('machine', {}).get('jax_devices', [])
  presets, details, peaks = {}, {}, {}
  for result in runs:
    for name, entry in result['presets'].items():
      presets[name] = entry
      details[name] = result['details'].get(name)
      peaks[name] = result.get('matmul_peak')
  ratio_run = next((r for r in runs if r.get('multi_action_cost_ratio')), first)
  return {
      'device': (first.get('settings', {}).get('device_kind')
                 or (devices[0] if devices else 'GPU')),
      'presets': presets,
      'multi_action_cost_ratio': ratio_run.get('multi_action_cost_ratio'),
      'multi_action_cost_ratio_preset':
          ratio_run.get('multi_action_cost_ratio_preset'),
      'matmul_peak_per_run': peaks,
      'details': details,
      'settings': first.get('settings'),
      'load_average': [r.get('load_average') for r in runs],
      'machine': first.get('machine'),
      'date': first.get('date'),
  }


if __name__ == '__main__':
  main()
