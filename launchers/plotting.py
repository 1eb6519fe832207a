"""Result tables and learning-curve plots for a finished run."""

from typing import List

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
