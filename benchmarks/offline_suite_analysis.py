"""What `benchmarks.offline_suite` makes of its runs: records, summary, plot.

No flags here, so that tests and notebooks can import it beside the other
benchmarks.
"""

import csv
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

# PAC, BC (the same agent with alpha = 1) and the peer: Acme's D4PG learner
# trained offline (`benchmarks.offline_d4pg`), RL Unplugged's baseline.
PEER = 'd4pg'
METHODS = ('pac', 'bc', PEER)
# PAC at another BC weight than the defaults' ('pac_alpha0.75': alpha 0.75).
# The paper's alpha-PAC is the best of them per dataset: ALPHA_PAC in the
# summary, chosen on the recorded evaluations (so it is tuned on them).
ALPHA_PREFIX = 'pac_alpha'
ALPHA_PAC = 'alpha_pac'
# Any PAC or BC method evaluated at another temperature than the defaults'
# ('pac_t1', 'pac_alpha0.25_t1': evaluations sampled at temperature 1). The
# methods of one temperature form a family: alpha-PAC and the aims compare
# methods within a family only, so PAC and BC always act by the same rule.
TEMPERATURE_INFIX = '_t'
# The BC weights a sweep tries by default beside the defaults' 0.5.
ALPHA_VARIANTS = ('pac_alpha0.25', 'pac_alpha0.75')
# The datasets whose behaviour is below expert (the aim's average).
SUBOPTIMAL = ('random', 'medium', 'medium_replay', 'medium_expert')
# Every dataset kind of the suite, in the order tables and plots show them.
DATASETS = SUBOPTIMAL + ('expert',)


def read_complete_suite(suite_dir: str, tasks: List[str]
                        ) -> Tuple[Dict[str, Any], List[str]]:
  """The suite's tasks (`environments.build_suite`) that have the random
  and expert datasets normalisation needs, and `tasks` checked against them
  (all of them if empty); a one-line `ValueError` that says what to do if
  there are none or a task is not there."""
  from environments import build_suite  # pylint: disable=g-import-not-at-top
  suite = {task: record for task, record in
           build_suite.read_suite(suite_dir).items()
           if 'random_return' in record and 'expert_return' in record}
  if not suite:
    raise ValueError(
        f'{suite_dir} holds no suite (suite.json with a task\'s random '
        'and expert datasets); build it: python -m environments.build_suite '
        f'--out={suite_dir}')
  unknown = sorted(set(tasks) - set(suite))
  if unknown:
    raise ValueError(f'--tasks: {", ".join(unknown)} not in {suite_dir} (it '
                     f'has {", ".join(sorted(suite))})')
  return suite, list(tasks) or sorted(suite)


def split_temperature(method: str) -> Tuple[str, str]:
  """(base method, family suffix): ('pac_alpha0.25', '_t1') for
  'pac_alpha0.25_t1', ('pac', '') for 'pac' (the defaults' temperature)."""
  base, infix, value = method.rpartition(TEMPERATURE_INFIX)
  if infix and base and value:
    return base, infix + value
  return method, ''


def method_overrides(method: str) -> Dict[str, float]:
  """The overrides of the main job's agent settings that `method` trains and
  evaluates with: {} for 'pac' and the peer (their own settings), alpha 1
  for 'bc', alpha x for 'pac_alpha<x>', and eval_temperature T for a
  '_t<T>' suffix; a one-line `ValueError` for any other name."""
  base, suffix = split_temperature(method)
  overrides: Dict[str, float] = {}
  if suffix:
    try:
      temperature = float(suffix[len(TEMPERATURE_INFIX):])
    except ValueError:
      temperature = 0.0
    if base == PEER or not temperature > 0.0:
      raise ValueError(
          f'unknown {method}: a {TEMPERATURE_INFIX}<temperature> suffix takes '
          f'a number > 0 after pac, bc or {ALPHA_PREFIX}<x> (e.g. pac_t1)')
    overrides['eval_temperature'] = temperature
  if base == 'bc':
    overrides['alpha'] = 1.0
  elif base.startswith(ALPHA_PREFIX):
    try:
      alpha = float(base[len(ALPHA_PREFIX):])
    except ValueError:
      alpha = -1.0
    if not 0.0 <= alpha <= 1.0:
      raise ValueError(_unknown(method))
    overrides['alpha'] = alpha
  elif base not in ('pac', PEER):
    raise ValueError(_unknown(method))
  return overrides


def _unknown(method: str) -> str:
  return (f'unknown {method}; choose from {", ".join(METHODS)} or '
          f'{ALPHA_PREFIX}<alpha in [0, 1]> (e.g. {ALPHA_PREFIX}0.75), '
          f'optionally with {TEMPERATURE_INFIX}<evaluation temperature> '
          '(e.g. pac_t1)')


def run_name(method: str, task: str, dataset: str, steps: int,
             seed: int) -> str:
  """A run's name: its record file and its run directory under the work
  directory (`benchmarks.finetune` finds the offline models by it)."""
  return f'{method}_{task}_{dataset}_{steps}steps_seed{seed}'


def normalized(value: float, constants: Dict[str, float]) -> float:
  """100 (R - random) / (expert - random), from the suite's constants."""
  low, high = constants['random_return'], constants['expert_return']
  return round(100.0 * (value - low) / (high - low), 2)


def run_records(run: Dict[str, Any], eval_path: str,
                constants: Dict[str, float], seconds: float
                ) -> List[Dict[str, Any]]:
  """The record of a finished run (`run`: task, dataset, method, seed), from
  its evaluations (`eval_path`) and the task's normalisation constants."""
  with open(eval_path) as f:
    evaluations = [json.loads(line) for line in f]
  last = evaluations[-1]
  best = max(evaluations, key=lambda e: e['return_mean'])
  return [{'task': run['task'], 'dataset': run['dataset'],
           'method': run['method'], 'seed': run['seed'],
           'normalized_return': normalized(last['return_mean'], constants),
           'return': last['return_mean'],
           'learner_steps': last['learner_steps'],
           'best_normalized_return': normalized(best['return_mean'],
                                                constants),
           'best_return': best['return_mean'],
           'run_wall_s': round(seconds, 1)}]


# The learner's last logged metrics a record carries when its run directory
# is there: how closely the policy fits the data (its BC loss), how broad it
# is, and how far the critic's weights over the M sampled actions are from
# uniform (effective sample size / M: 1 = the RL term reweights nothing).
LEARNER_METRICS = {'bc_nll': 'loss/bc', 'policy_entropy': 'policy/entropy',
                   'weights_ess': 'policy/weights_ess', 'q_mean': 'q/mean'}


def final_learner_metrics(run_dir: str) -> Optional[Dict[str, float]]:
  """LEARNER_METRICS from the last row of a PAC run's learner log, or None
  (no log: a D4PG run, or a run trained elsewhere)."""
  path = os.path.join(run_dir, 'logs', 'learner', 'logs.csv')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    rows = list(csv.DictReader(f))
  if not rows:
    return None
  return {name: round(float(rows[-1][key]), 4)
          for name, key in LEARNER_METRICS.items()}


def summarise(records: List[Dict[str, Any]]) -> Dict[str, Any]:
  """Mean and std over seeds of the last and best normalised return per
  (task, dataset, method); alpha-PAC per (task, dataset): the 'pac' or
  'pac_alpha<x>' cell with the highest mean; the aims, over the cells that
  have BC too: PAC >= BC + 10 on average over the sub-optimal datasets,
  PAC >= BC - 5 on expert data (and the same for alpha-PAC and each
  'pac_alpha<x>')."""
  table: Dict[str, Dict[str, Dict[str, Dict[str, float]]]] = {}
  for record in records:
    table.setdefault(record['task'], {}).setdefault(
        record['dataset'], {}).setdefault(record['method'], [])
  for task, datasets in table.items():
    for dataset, methods in datasets.items():
      for method in list(methods):
        chosen = [r for r in records if (r['task'], r['dataset'],
                                         r['method']) == (task, dataset,
                                                          method)]
        last = [r['normalized_return'] for r in chosen]
        best = [r['best_normalized_return'] for r in chosen]
        methods[method] = {'mean': float(np.mean(last)),
                           'std': float(np.std(last)),
                           'best_mean': float(np.mean(best)),
                           'seeds': len(chosen)}
      for suffix in families(methods):
        candidates = [m for m in methods if _is_pac(m, suffix)]
        if candidates:
          chosen_method = max(sorted(candidates),
                              key=lambda m: methods[m]['mean'])
          methods[ALPHA_PAC + suffix] = dict(methods[chosen_method],
                                             method=chosen_method,
                                             tried=sorted(candidates))

  def gap_to_bc(method, bc, datasets):
    """Mean of (method - bc) over the cells that have both; and how many."""
    gaps = [cells[method]['mean'] - cells[bc]['mean']
            for t in table for d, cells in table[t].items()
            if d in datasets and method in cells and bc in cells]
    return (round(float(np.mean(gaps)), 2) if gaps else None), len(gaps)

  present = {m for t in table for cells in table[t].values() for m in cells}
  aims = {}
  for suffix in families(present):
    variants = sorted(m for m in present if m.startswith(ALPHA_PREFIX)
                      and split_temperature(m)[1] == suffix)
    for name in ['pac' + suffix, ALPHA_PAC + suffix] + variants:
      for kind, datasets, aim, met in (
          ('suboptimal', SUBOPTIMAL, '10_above_bc_on_suboptimal',
           lambda gap: gap >= 10),
          ('expert', ('expert',), 'within_5_of_bc_on_expert',
           lambda gap: gap >= -5)):
        gap, cells = gap_to_bc(name, 'bc' + suffix, datasets)
        if cells:
          aims[f'{kind}_{name}_minus_bc{suffix}'] = gap
          aims[f'{kind}_{name}_cells'] = cells
          aims[f'{name}_{aim}'] = met(gap)
  return {'normalized_return': table, 'aims': aims}


def is_pac(method: str) -> bool:
  """Whether `method` is PAC at some alpha (not BC, not the peer)."""
  base = split_temperature(method)[0]
  return base == 'pac' or base.startswith(ALPHA_PREFIX)


def _is_pac(method: str, suffix: str) -> bool:
  """Whether `method` is PAC at some alpha, of the family `suffix`."""
  return is_pac(method) and split_temperature(method)[1] == suffix


def families(methods) -> List[str]:
  """The temperature families among `methods`: '' (the defaults') first."""
  return sorted({split_temperature(m)[1] for m in methods if m != PEER},
                key=lambda suffix: (suffix != '', suffix))


def markdown_table(summary: Dict[str, Any]) -> str:
  """The summary as README tables, one per temperature family (the
  defaults' first, with the peer): last normalised return, mean ± std over
  seeds (best evaluation's mean in brackets), one column per method that
  has a cell; alpha-PAC's cell names its choice in square brackets."""
  table = summary['normalized_return']
  present = {m for t in table for cells in table[t].values() for m in cells}
  parts = []
  for suffix in families(present):
    variants = sorted(m for m in present if m.startswith(ALPHA_PREFIX)
                      and split_temperature(m)[1] == suffix)
    columns = [m for m in ['pac' + suffix] + variants +
               [ALPHA_PAC + suffix, 'bc' + suffix] + ([PEER] * (not suffix))
               if m in present]
    if not columns:
      continue
    lines = ['| task | dataset | ' + ' | '.join(columns) + ' |',
             '|---|---|' + '---:|' * len(columns)]
    for task in sorted(table):
      for dataset in DATASETS:
        if not any(m in table[task].get(dataset, {}) for m in columns):
          continue
        cells = []
        for method in columns:
          cell = table[task][dataset].get(method)
          if cell is None:
            cells.append('')
            continue
          text = f'{cell["mean"]:.1f}'
          if cell['seeds'] > 1:
            text += f' ± {cell["std"]:.1f}'
          text += f' ({cell["best_mean"]:.1f})'
          if split_temperature(method)[0] == ALPHA_PAC:
            chosen = split_temperature(cell['method'])[0]
            text += f' [{chosen.replace(ALPHA_PREFIX, "alpha ")}]'
          cells.append(text)
        lines.append(f'| {task} | {dataset} | ' + ' | '.join(cells) + ' |')
    heading = ('Evaluated at the defaults\' temperature' if not suffix else
               'Evaluated at temperature '
               f'{suffix[len(TEMPERATURE_INFIX):]}')
    parts.append(f'{heading}:\n\n' + '\n'.join(lines) + '\n')
  return '\n'.join(parts)


def plot(summary: Dict[str, Any], path: str, title: str) -> None:
  """Bars of the last normalised return (mean ± std over seeds), one group
  per task/dataset, one bar per method (PAC, alpha-PAC, BC, the peer)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  table = summary['normalized_return']
  groups = [(task, dataset) for task in sorted(table)
            for dataset in DATASETS if dataset in table[task]]
  methods = [m for m in ('pac', ALPHA_PAC, 'bc', PEER, 'pac_t1', 'bc_t1')
             if any(m in table[t][d] for t, d in groups)]
  fig, axis = plt.subplots(figsize=(2.5 + 1.1 * len(groups), 4))
  width = 0.8 / max(len(methods), 1)
  for i, method in enumerate(methods):
    xs = [j + (i - (len(methods) - 1) / 2) * width
          for j in range(len(groups))]
    cells = [table[t][d].get(method, {}) for t, d in groups]
    axis.bar(xs, [c.get('mean', np.nan) for c in cells], width,
             yerr=[c.get('std', 0.0) for c in cells], capsize=3,
             label=method, color=f'C{i}')
  axis.set_xticks(range(len(groups)))
  axis.set_xticklabels([f'{t}\n{d}' for t, d in groups], fontsize=7)
  axis.set_ylabel('normalised return (last eval, mean ± std)')
  axis.axhline(100, color='grey', lw=0.8, ls='--')
  axis.legend(fontsize=8)
  axis.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
