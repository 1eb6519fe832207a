r"""Scaling sweep: model size x compute budget x method (PAC, BC) x seed.

  python -m benchmarks.scaling [--sizes=xs,s,m,ml,l,xl] [--seeds=0,1]
      [--budgets=1e11,...,3e12] [--methods=pac,bc] [--parallel=2]

Trains every (method, size, seed) of the grid on one fixed dataset
(`benchmarks/scaling_run.py`: one run covers all budgets), `--parallel` runs
at a time, each in its own process with one XLA thread. Resumable: each run's
record is written to `<results_dir>/scaling_runs/` as it finishes and a rerun
skips it; an interrupted run resumes from its last budget (checkpoints under
`--work_dir`). Then `benchmarks/scaling_analysis.py` fits the frontier and the
power laws, and this writes `<results_dir>/scaling.json`,
`scaling_frontier.png` and `scaling_isoreturn.png`, with the runs that are
still missing listed.

Score of a run at a budget: the normalised return of the evaluation taken
when its training compute reached that budget (`--eval_episodes` episodes of
the sampling policy, the main job's evaluation policy), i.e. the last
evaluation of that budget's run, not the best of its curve.
Normalised: 0 = the dataset's random episodes, 100 = its expert episodes.
"""

import os

# One XLA thread per run, as the launchers give a CPU learner (small models
# run fastest so); set XLA_FLAGS yourself for other settings. Before JAX.
os.environ.setdefault(
    'XLA_FLAGS',
    '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1')

# pylint: disable=g-import-not-at-top,wrong-import-position
import concurrent.futures
import json
import multiprocessing
import signal
import sys
import time
from typing import Any, Dict, List, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

import agents  # noqa: F401  pylint: disable=unused-import  (before TF; JAX cache)
from benchmarks import common
from benchmarks import scaling_analysis
from benchmarks import scaling_run
# pylint: enable=g-import-not-at-top,wrong-import-position

_TASK = flags.DEFINE_string('task', 'cartpole_swingup', 'Task of the sweep.')
_DATASET_EPISODES = flags.DEFINE_integer(
    'dataset_episodes', 30, "Episodes of the task's 'mixed' dataset (expert, "
    'medium and random in turn), generated under --work_dir if missing.')
_SIZES = flags.DEFINE_list('sizes', list(scaling_run.LADDER),
                           'Model sizes: the CPU ladder or agent presets.')
_BUDGETS = flags.DEFINE_list(
    'budgets', [f'{b:.3g}' for b in np.geomspace(1e11, 3e12, 6)],
    'Training compute budgets in FLOPs (XLA cost analysis x steps).')
_METHODS = flags.DEFINE_list('methods', list(scaling_run.METHODS),
                             'pac and/or bc.')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1'], 'Seeds of each grid point.')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 4,
                                      'Evaluation episodes per budget.')
_PARALLEL = flags.DEFINE_integer('parallel', 2, 'Runs at a time.')
_WORK_DIR = flags.DEFINE_string('work_dir', 'runs/scaling',
                                'Dataset and checkpoints of unfinished runs.')
_DTYPE = flags.DEFINE_enum('compute_dtype', 'float32',
                           ['float32', 'bfloat16'], 'Network compute dtype.')
_BOOTSTRAP = flags.DEFINE_integer('num_bootstrap', 1000,
                                  'Bootstrap resamples for the intervals.')


class _BadInput(ValueError):
  """A flag value the sweep cannot run with."""


def _specs() -> List[scaling_run.RunSpec]:
  """The grid, seed-major (a partial sweep has whole seeds first)."""
  try:
    budgets = tuple(sorted(float(b) for b in _BUDGETS.value))
    seeds = [int(s) for s in _SEEDS.value]
  except ValueError as e:
    raise _BadInput(f'--budgets and --seeds take numbers ({e})') from e
  if not budgets or budgets[0] <= 0:
    raise _BadInput('--budgets must be positive FLOP counts')
  for method in _METHODS.value:
    for size in _SIZES.value:  # ValueError names the choices.
      scaling_run.agent_config(method, size, seed=0)
  if _PARALLEL.value < 1 or _EVAL_EPISODES.value < 1:
    raise _BadInput('--parallel and --eval_episodes must be >= 1')
  dataset = os.path.abspath(os.path.join(
      _WORK_DIR.value, 'data', f'{_TASK.value}_mixed_{_DATASET_EPISODES.value}'))
  record_dir = os.path.join(common.RESULTS_DIR.value, 'scaling_runs')
  return [scaling_run.RunSpec(
      task=_TASK.value, dataset=dataset, method=method, size=size, seed=seed,
      budgets=budgets, eval_episodes=_EVAL_EPISODES.value,
      checkpoint_dir=os.path.abspath(os.path.join(_WORK_DIR.value,
                                                  'checkpoints')),
      record_dir=record_dir, compute_dtype=_DTYPE.value)
          for seed in seeds for method in _METHODS.value
          for size in _SIZES.value]


def _reference_returns(path: str) -> Dict[str, float]:
  """Mean return of the dataset's random and expert episodes."""
  import environments  # pylint: disable=g-import-not-at-top
  returns = environments.policy_returns([environments.load_dataset(path)])
  return {name: returns[name] for name in ('random', 'expert')}


def _ensure_dataset(path: str) -> None:
  if os.path.exists(path):
    return
  import environments  # pylint: disable=g-import-not-at-top
  from environments import writer  # pylint: disable=g-import-not-at-top
  print(f'[scaling] generating {path}', flush=True)
  environments.write_dataset(path, _TASK.value, 'mixed',
                             _DATASET_EPISODES.value, seed=0,
                             workers=writer.default_workers())


def _ignore_sigint():
  """In each worker: Ctrl-C is the parent's to handle (it stops them)."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_all(todo: Sequence[scaling_run.RunSpec], total: int) -> List[str]:
  """Runs `todo` in `--parallel` processes; one line per finished run.

  Returns the names of runs that failed (each reported in one line; the
  others go on). On Ctrl-C the workers are stopped at once: each loses at
  most the budget it was in (checkpoints are whole files).
  """
  done, failed = total - len(todo), []
  pool = concurrent.futures.ProcessPoolExecutor(
      _PARALLEL.value, initializer=_ignore_sigint,
      mp_context=multiprocessing.get_context('spawn'))  # No forked JAX.
  try:
    futures = {pool.submit(scaling_run.run, spec): spec for spec in todo}
    for future in concurrent.futures.as_completed(futures):
      name = futures[future].name
      try:
        record = future.result()
      except Exception as e:  # pylint: disable=broad-except
        failed.append(name)
        print(f'[scaling] {name} failed: {type(e).__name__}: {e}',
              flush=True)
        continue
      done += 1
      last = record['curve'][-1]
      print(f'[scaling] {done}/{total} {name}: '
            f'{record["params"]:,} params, {last["learner_steps"]} steps, '
            f'final return {last["return_mean"]:.1f}, '
            f'{record["wall_s"]:.0f}s', flush=True)
  except KeyboardInterrupt:
    pool.shutdown(wait=False, cancel_futures=True)
    for child in multiprocessing.active_children():
      child.terminate()
      child.join()
    raise
  pool.shutdown()
  return failed


def budget_records(runs: Sequence[Dict[str, Any]],
                   references: Dict[str, float]) -> List[Dict[str, Any]]:
  """One record per (run, budget): the analysis's input, with its curve."""
  low, high = references['random'], references['expert']
  records = []
  for run in runs:
    curve = [100.0 * (p['return_mean'] - low) / (high - low)
             for p in run['curve']]
    for index, point in enumerate(run['curve']):
      records.append({
          'method': run['method'], 'task': run['task'], 'size': run['size'],
          'dataset': os.path.basename(run['dataset']), 'seed': run['seed'],
          'params': run['params'], 'flops': point['budget_flops'],
          'learner_steps': point['learner_steps'],
          'flops_per_step': run['flops_per_step'],
          # What was spent: the budget, rounded to whole learner calls.
          'training_flops': point['learner_steps'] * run['flops_per_step'],
          'normalized_return': curve[index], 'score': curve[index],
          'curve': curve[:index + 1]})
  return records


def _plot(records, fits, path_frontier: str, path_iso: str,
          title: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  methods = sorted(fits)
  fig, axes = plt.subplots(1, len(methods) + 1,
                           figsize=(5 * (len(methods) + 1), 4), squeeze=False)
  for axis, method in zip(axes[0], methods):
    cells = scaling_analysis.mean_scores(records, method)
    params, flops, grid = scaling_analysis.iso_return_grid(cells)
    for i, n in enumerate(params):
      axis.plot(flops, grid[:, i], marker='o', ms=3, lw=1,
                color=plt.cm.viridis(i / max(1, len(params) - 1)),
                label=f'{n / 1e3:,.0f}k')
    front = fits[method]['frontier']
    axis.plot([p['flops'] for p in front], [p['score'] for p in front],
              'k--', lw=2, label='frontier')
    axis.set_xscale('log')
    axis.set_xlabel('training FLOPs')
    axis.set_ylabel('normalised return (seed mean)')
    axis.set_title(method.upper(), fontsize=10)
    axis.legend(fontsize=7, title='params', title_fontsize=7)
  axis = axes[0][-1]
  for i, method in enumerate(methods):
    front = fits[method]['frontier']
    fit = fits[method]['params_vs_flops']
    c = np.array([p['flops'] for p in front])
    axis.plot(c, [p['params_opt'] for p in front], 'o', color=f'C{i}')
    lo, hi = fit['interval']
    axis.plot(c, fit['prefactor'] * c**fit['exponent'], '-', color=f'C{i}',
              label=f'{method.upper()}: N_opt ~ C^{fit["exponent"]:.2f} '
              f'[{lo:.2f}, {hi:.2f}]')
  axis.set_xscale('log')
  axis.set_yscale('log')
  axis.set_xlabel('training FLOPs')
  axis.set_ylabel('compute-optimal parameters')
  axis.legend(fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path_frontier, dpi=100)
  plt.close(fig)

  fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4),
                           squeeze=False)
  for axis, method in zip(axes[0], methods):
    params, flops, grid = scaling_analysis.iso_return_grid(
        scaling_analysis.mean_scores(records, method))
    if min(grid.shape) >= 2:  # Contours need 2+ sizes and budgets.
      contour = axis.contourf(params, flops, grid, levels=10, cmap='viridis')
      axis.contour(params, flops, grid, levels=10, colors='k',
                   linewidths=0.5)
      fig.colorbar(contour, ax=axis, label='normalised return')
    front = fits[method]['frontier']
    axis.plot([p['params_opt'] for p in front], [p['flops'] for p in front],
              'r.-', label='compute-optimal')
    axis.set_xscale('log')
    axis.set_yscale('log')
    axis.set_xlabel('parameters')
    axis.set_ylabel('training FLOPs')
    axis.set_title(f'{method.upper()}: iso-return contours', fontsize=10)
    axis.legend(fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path_iso, dpi=100)
  plt.close(fig)


def _fit_all(records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  """`scaling_analysis.analyse` of each method that has enough records."""
  fits = {}
  for method in sorted({r['method'] for r in records}):
    try:
      fits[method] = scaling_analysis.analyse(records, method,
                                              _BOOTSTRAP.value)
    except ValueError as e:  # Too few budgets or sizes yet.
      print(f'[scaling] no fit for {method}: {e}', flush=True)
  return fits


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Libraries' info lines.
  try:
    specs = _specs()
  except ValueError as e:  # _BadInput, or an unknown size.
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  monitor = common.LoadMonitor()
  monitor.mark('start')
  start = time.time()
  _ensure_dataset(specs[0].dataset)
  references = _reference_returns(specs[0].dataset)
  todo = [s for s in specs if not os.path.exists(s.record_path)]
  print(f'[scaling] {len(specs)} runs, {len(specs) - len(todo)} already '
        f'finished; records in {specs[0].record_dir}', flush=True)
  try:
    failed = _run_all(todo, len(specs))
  except KeyboardInterrupt:
    finished = sum(os.path.exists(s.record_path) for s in specs)
    print(f'[scaling] interrupted: {finished}/{len(specs)} runs finished; '
          'rerun the same command to resume', file=sys.stderr)
    sys.exit(130)
  monitor.mark('end')
  runs = []
  for spec in specs:
    if os.path.exists(spec.record_path):
      with open(spec.record_path) as f:
        runs.append(json.load(f))
  records = budget_records(runs, references)
  fits = _fit_all(records)
  # How much the choice of score matters: the same fits with each run's
  # best evaluation up to the budget instead of its last.
  best_fits = _fit_all([dict(r, score=max(r['curve'])) for r in records])
  results = {
      'settings': {'task': _TASK.value, 'sizes': _SIZES.value,
                   'budgets': list(specs[0].budgets),
                   'methods': _METHODS.value, 'seeds': _SEEDS.value,
                   'eval_episodes': _EVAL_EPISODES.value,
                   'dataset_episodes': _DATASET_EPISODES.value,
                   'compute_dtype': _DTYPE.value},
      'score_selection': 'last: the evaluation taken when the run reached '
                         'the budget (not the best of its curve)',
      'reference_returns': references,
      'missing': [s.name for s in specs if not os.path.exists(s.record_path)],
      'this_invocation_s': time.time() - start,
      'run_wall_s_total': sum(r['wall_s'] for r in runs),
      'fits': fits, 'fits_best_of_curve': best_fits, 'records': records}
  path = common.write_results('scaling', results, monitor)
  if fits:
    _plot(records, fits, os.path.join(os.path.dirname(path),
                                      'scaling_frontier.png'),
          os.path.join(os.path.dirname(path), 'scaling_isoreturn.png'),
          f'{_TASK.value}, {len(runs)} runs (seeds {",".join(_SEEDS.value)}); '
          f'{os.cpu_count()} shared CPUs')
  for method, fit in fits.items():
    p, d = fit['params_vs_flops'], fit['distance_vs_flops']
    print(f'[scaling] {method}: N_opt ~ C^{p["exponent"]:.2f} '
          f'[{p["interval"][0]:.2f}, {p["interval"][1]:.2f}], '
          f'(100 - score) ~ C^{d["exponent"]:.3f} '
          f'[{d["interval"][0]:.3f}, {d["interval"][1]:.3f}] '
          f'({100 * fit["interval_level"]:.0f}% intervals)', flush=True)
  if results['missing']:
    print(f'[scaling] missing: {len(results["missing"])} runs (rerun to '
          'finish them)', flush=True)
  print(f'wrote {path}', flush=True)
  if failed:
    print(f'[scaling] {len(failed)} runs failed: {", ".join(failed)}',
          file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
