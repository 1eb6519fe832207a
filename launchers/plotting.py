"""Result tables and learning-curve plots for a finished run."""

from typing import List

import matplotlib

matplotlib.use('Agg')  # Headless: runs on machines without a display.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def results_table(results: List[dict], mode: str) -> str:
  """A Markdown table: one row per evaluation (per round in selfimprove)."""
  first = 'round' if mode == 'selfimprove' else 'eval'
  lines = [f'| {first} | learner steps | actor steps | return (mean ± std) |',
           '|---:|---:|---:|---:|']
  for index, r in enumerate(results, start=1):
    lines.append(f'| {r.get("round", index)} | {r["learner_steps"]} | '
                 f'{r["actor_steps"]} | {r["return_mean"]:.1f} ± '
                 f'{r["return_std"]:.1f} |')
  return '\n'.join(lines)


def plot_eval_returns(results: List[dict], path: str, title: str) -> None:
  """Evaluation return against learner steps and against actor steps."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
  for ax, key, label in ((axes[0], 'learner_steps', 'learner steps'),
                         (axes[1], 'actor_steps', 'actor (environment) steps')):
    xs = [r[key] for r in results]
    means = [r['return_mean'] for r in results]
    stds = [r['return_std'] for r in results]
    ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3)
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel('evaluation return')
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
