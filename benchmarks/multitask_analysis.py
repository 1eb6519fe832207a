"""What `benchmarks.multitask` makes of its runs: records, summary, plot.

Kept apart from the sweep's command line (no flags here), so that tests and
notebooks can import it beside the other benchmarks.
"""

import json
from typing import Any, Dict, List

import numpy as np

METHODS = ('pac_multi', 'bc_multi', 'pac_single')


def run_records(run: Dict[str, Any], eval_path: str,
                seconds: float) -> List[Dict[str, Any]]:
  """One record per task of a finished run (`run`: its method, tasks and
  seed), from its evaluations (`eval_path`, the run's eval.jsonl)."""
  with open(eval_path) as f:
    evaluations = [json.loads(line) for line in f]

  def per_task(evaluation, task):
    return evaluation['tasks'][task] if 'tasks' in evaluation else evaluation

  records = []
  for task in run['tasks']:
    last = per_task(evaluations[-1], task)
    records.append({
        'method': run['method'], 'task': task,
        'dataset': f'{task}_mixed', 'seed': run['seed'],
        'normalized_return': last['normalized_return'],
        'return': last['return_mean'],
        'learner_steps': evaluations[-1]['learner_steps'],
        'best_normalized_return': max(
            per_task(e, task)['normalized_return'] for e in evaluations),
        'run_wall_s': round(seconds, 1)})
  return records


def summarise(records: List[Dict[str, Any]]) -> Dict[str, Any]:
  """Mean and std over seeds per method and task; the issue's aims."""
  table: Dict[str, Dict[str, Dict[str, float]]] = {}
  for method in sorted({r['method'] for r in records}):
    table[method] = {}
    for task in sorted({r['task'] for r in records}):
      scores = [r['normalized_return'] for r in records
                if r['method'] == method and r['task'] == task]
      if scores:
        table[method][task] = {'mean': float(np.mean(scores)),
                               'std': float(np.std(scores)),
                               'seeds': len(scores)}
    table[method]['mean_over_tasks'] = float(np.mean(
        [v['mean'] for v in table[method].values()]))
  aims = {}
  if {'pac_multi', 'bc_multi'} <= set(table):
    aims['pac_multi_beats_bc_multi'] = (
        table['pac_multi']['mean_over_tasks'] >
        table['bc_multi']['mean_over_tasks'])
  if {'pac_multi', 'pac_single'} <= set(table):
    gaps = {task: table['pac_single'][task]['mean'] -
            table['pac_multi'][task]['mean']
            for task in table['pac_multi'] if task != 'mean_over_tasks'
            and task in table['pac_single']}
    aims['pac_single_minus_pac_multi'] = gaps
    aims['pac_multi_within_10_of_single'] = all(g <= 10 for g in
                                                gaps.values())
  return {'normalized_return': table, 'aims': aims}


def plot(summary: Dict[str, Any], path: str, title: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  table = summary['normalized_return']
  methods = [m for m in METHODS if m in table]
  tasks = sorted({t for m in methods for t in table[m]
                  if t != 'mean_over_tasks'})
  fig, axis = plt.subplots(figsize=(2.2 + 1.6 * len(tasks), 3.8))
  width = 0.8 / max(len(methods), 1)
  for i, method in enumerate(methods):
    xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(tasks))]
    means = [table[method].get(t, {}).get('mean', np.nan) for t in tasks]
    stds = [table[method].get(t, {}).get('std', 0.0) for t in tasks]
    axis.bar(xs, means, width, yerr=stds, capsize=3, label=method,
             color=f'C{i}')
  axis.set_xticks(range(len(tasks)))
  axis.set_xticklabels(tasks, fontsize=8)
  axis.set_ylabel('normalised return (mean ± std over seeds)')
  axis.axhline(100, color='grey', lw=0.8, ls='--')
  axis.legend(fontsize=8)
  axis.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
