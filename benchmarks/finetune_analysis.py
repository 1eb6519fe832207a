"""What `benchmarks.finetune` makes of its runs: records, summary, plot.

No flags here, so that tests and notebooks can import it beside the other
benchmarks. Scores are normalised by the suite's constants (0 = the task's
random dataset, 100 = its expert dataset), as the offline suite's are.
"""

import json
from typing import Any, Dict, List

import numpy as np

from benchmarks import offline_suite_analysis

# The aims: the gain on medium data, and the floor every evaluation keeps.
MIN_GAIN = 20.0
FLOOR = 0.9


def _evaluations(path: str) -> List[Dict[str, Any]]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def run_record(run: Dict[str, Any], offline_eval_path: str,
               finetune_eval_path: str, constants: Dict[str, float],
               seconds: float) -> Dict[str, Any]:
  """The record of one fine-tuning run (`run`: task, dataset, seed).

  `before` is the fine-tuning run's evaluation of the model it starts from
  (marked `start`; `launchers.nodes.Controller`), with the same episodes as
  the ones after it; a run from before that evaluation existed falls back
  on the offline run's last evaluation (the same model, evaluated there).
  `after` is the fine-tuning's last evaluation, `min_during` the lowest after
  the start, `env_steps` the actors' steps at its end; the curve is (env
  steps, normalised return) from `before` on, which is at step 0 (actors
  may have played while it ran, but the model it evaluates is the start's).
  """
  during = _evaluations(finetune_eval_path)
  if during and during[0].get('start'):
    before, during, source = during[0], during[1:], 'finetune_start'
  else:
    before, source = _evaluations(offline_eval_path)[-1], 'offline_last'
  if not during:
    raise ValueError(f'{finetune_eval_path} holds no evaluation after its '
                     'start')
  norm = lambda value: offline_suite_analysis.normalized(value, constants)
  lowest = min(during, key=lambda e: e['return_mean'])
  return {'task': run['task'], 'dataset': run['dataset'], 'seed': run['seed'],
          'before': norm(before['return_mean']),
          'after': norm(during[-1]['return_mean']),
          'min_during': norm(lowest['return_mean']),
          'env_steps': int(during[-1]['actor_steps']),
          'before_return': before['return_mean'], 'before_from': source,
          'after_return': during[-1]['return_mean'],
          'min_during_return': lowest['return_mean'],
          'floor': norm(FLOOR * before['return_mean']),
          'learner_steps': [before['learner_steps'],
                            during[-1]['learner_steps']],
          'curve': [[0, norm(before['return_mean'])]] + [
              [int(e['actor_steps']), norm(e['return_mean'])]
              for e in during],
          'run_wall_s': round(seconds, 1)}


def summarise(records: List[Dict[str, Any]]) -> Dict[str, Any]:
  """Mean and std over seeds of before, after and their gain per (task,
  dataset); the aims: a gain of `MIN_GAIN` normalised points on average over
  the medium datasets, and no evaluation below `FLOOR` of the return a run
  started from."""
  table: Dict[str, Dict[str, Dict[str, Any]]] = {}
  for task, dataset in sorted({(r['task'], r['dataset']) for r in records}):
    chosen = [r for r in records if (r['task'], r['dataset']) ==
              (task, dataset)]
    gains = [r['after'] - r['before'] for r in chosen]
    table.setdefault(task, {})[dataset] = {
        'before': float(np.mean([r['before'] for r in chosen])),
        'after': float(np.mean([r['after'] for r in chosen])),
        'after_std': float(np.std([r['after'] for r in chosen])),
        'gain': float(np.mean(gains)), 'gain_std': float(np.std(gains)),
        'min_during': float(min(r['min_during'] for r in chosen)),
        'seeds': len(chosen)}
  aims = {}
  medium = [r['after'] - r['before'] for r in records
            if r['dataset'] == 'medium']
  if medium:
    aims['medium_gain'] = round(float(np.mean(medium)), 2)
    aims['gain_20_on_medium'] = bool(np.mean(medium) >= MIN_GAIN)
  if records:
    aims['never_below_90pct_of_start'] = all(
        r['min_during_return'] >= FLOOR * r['before_return']
        for r in records)
  return {'normalized_return': table, 'aims': aims}


def plot(records: List[Dict[str, Any]], path: str, title: str) -> None:
  """Normalised return against the actors' environment steps, one panel per
  task and dataset, one line per seed (step 0: the offline model), dotted:
  90% of each run's starting return."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  groups = sorted({(r['task'], r['dataset']) for r in records})
  fig, axes = plt.subplots(1, max(len(groups), 1),
                           figsize=(4 * max(len(groups), 1), 3.5),
                           squeeze=False)
  for axis, (task, dataset) in zip(axes[0], groups):
    for record in sorted((r for r in records if (r['task'], r['dataset']) ==
                          (task, dataset)), key=lambda r: r['seed']):
      steps, scores = zip(*record['curve'])
      axis.plot(steps, scores, marker='o', ms=3,
                label=f'seed {record["seed"]}')
      axis.axhline(record['floor'], color='grey', lw=0.6, ls=':')
    axis.axhline(100, color='grey', lw=0.8, ls='--')
    axis.set_title(f'{task} {dataset}', fontsize=9)
    axis.set_xlabel('actor environment steps')
    axis.set_ylabel('normalised return')
    axis.legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
