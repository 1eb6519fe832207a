"""Result tables and learning-curve plots for a finished run."""

from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # Headless: runs on machines without a display.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def _tasks(results: List[dict]) -> List[str]:
  """The tasks of a multi-task run's results; [] for a single task."""
  return list(results[0].get('tasks', {})) if results else []


def results_table(results: List[dict], mode: str) -> str:
  """A Markdown table: one row per evaluation (per round in selfimprove);
  in a multi-task run, a column per task (its return, and its normalised
  return where the datasets give references), the mean over tasks last."""
  first = 'round' if mode == 'selfimprove' else 'eval'
  tasks = _tasks(results)
  mean = 'mean return over tasks' if tasks else 'return (mean ± std)'
  lines = [f'| {first} | learner steps | actor steps | '
           + ''.join(f'{task} | ' for task in tasks) + f'{mean} |',
           '|---:|---:|---:|' + '---:|' * (len(tasks) + 1)]
  for index, r in enumerate(results, start=1):
    cells = []
    for task in tasks:
      task_result = r['tasks'][task]
      cell = f'{task_result["return_mean"]:.1f}'
      if 'normalized_return' in task_result:
        cell += f' ({task_result["normalized_return"]:.0f})'
      cells.append(cell)
    cells.append(f'{r["return_mean"]:.1f} ± {r["return_std"]:.1f}')
    lines.append(f'| {r.get("round", index)} | {r["learner_steps"]} | '
                 f'{r["actor_steps"]} | ' + ' | '.join(cells) + ' |')
  if any('normalized_return' in task_result for r in results
         for task_result in r.get('tasks', {}).values()):
    lines.append('\nIn brackets: normalised return (0 = the datasets\' '
                 'random episodes, 100 = their expert episodes).')
  return '\n'.join(lines)


def plot_eval_returns(results: List[dict], path: str, title: str) -> None:
  """Evaluation return against learner steps and against actor steps."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
  for ax, key, label in ((axes[0], 'learner_steps', 'learner steps'),
                         (axes[1], 'actor_steps', 'actor (environment) steps')):
    xs = [r[key] for r in results]
    for task in _tasks(results):
      ax.errorbar(xs, [r['tasks'][task]['return_mean'] for r in results],
                  yerr=[r['tasks'][task]['return_std'] for r in results],
                  marker='.', capsize=2, alpha=0.7, label=task)
    means = [r['return_mean'] for r in results]
    stds = [r['return_std'] for r in results]
    ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3, color='k',
                label='mean over tasks' if _tasks(results) else None)
    if _tasks(results):
      ax.legend(fontsize=7)
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel('evaluation return')
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_phases(phases: Sequence[Tuple[str, List[dict]]],
                references: Optional[Dict[str, float]], path: str,
                title: str) -> None:
  """Several runs that continue one model (offline, then fine-tuning) as
  one curve of evaluation return against learner steps, each switch marked;
  with `references` ({'random': R, 'expert': R}), both as lines and the
  normalised return (0 = random, 100 = expert) on a second axis."""
  fig, axis = plt.subplots(figsize=(7, 3.8))
  xs, means, stds = [], [], []
  for index, (name, results) in enumerate(phases):
    for r in results:
      xs.append(r['learner_steps'])
      means.append(r['return_mean'])
      stds.append(r['return_std'])
    if index and results and phases[index - 1][1]:
      switch = phases[index - 1][1][-1]['learner_steps']  # Where it resumed.
      axis.axvline(switch, color='grey', ls=':', lw=1)
      axis.annotate(f' {name} \u2192', (switch, 0),
                    xycoords=('data', 'axes fraction'), va='bottom',
                    fontsize=8, color='grey')
  axis.errorbar(xs, means, yerr=stds, marker='o', capsize=3, color='C0',
                label='evaluation return')
  for index, (name, results) in enumerate(phases):
    if results:
      axis.scatter([r['learner_steps'] for r in results],
                   [r['return_mean'] for r in results], color=f'C{index}',
                   zorder=3, label=name)
  if references:
    low, high = references['random'], references['expert']
    axis.axhline(high, color='C2', ls='--', lw=1, label='expert episodes')
    axis.axhline(low, color='C3', ls='--', lw=1, label='random episodes')
    span = (high - low) or 1.0
    secondary = axis.secondary_yaxis(
        'right', functions=(lambda r: 100 * (r - low) / span,
                            lambda n: low + n * span / 100))
    secondary.set_ylabel('normalised return')
  axis.set_xlabel('learner steps')
  axis.set_ylabel('evaluation return')
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7, loc='upper left')
  axis.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
