"""Result tables and plots: per-task columns, phases drawn as one curve."""

import os

from launchers import plotting


def _evaluation(step, mean, tasks=None):
  result = {'learner_steps': step, 'actor_steps': 0, 'return_mean': mean,
            'return_std': 1.0, 'episodes': 1}
  if tasks:
    result['tasks'] = tasks
  return result


def test_a_multitask_table_has_a_column_per_task_and_normalised_returns():
  results = [_evaluation(8, 5.0, {
      'cartpole_swingup': {'return_mean': 4.0, 'return_std': 0.0,
                           'normalized_return': 3.4},
      'walker_walk': {'return_mean': 6.0, 'return_std': 0.0}})]
  lines = plotting.results_table(results, 'offline').splitlines()
  assert lines[0] == ('| eval | learner steps | actor steps | cartpole_swingup'
                      ' | walker_walk | mean return over tasks |')
  assert lines[2] == '| 1 | 8 | 0 | 4.0 (3) | 6.0 | 5.0 ± 1.0 |'
  assert 'normalised return' in lines[-1]
  single = plotting.results_table([_evaluation(8, 5.0)], 'offline')
  assert single.splitlines()[2] == '| 1 | 8 | 0 | 5.0 ± 1.0 |'
  assert 'normalised' not in single


def test_phases_are_drawn_with_or_without_references(tmp_path):
  phases = [('offline', [_evaluation(1000, 200.0), _evaluation(3000, 220.0)]),
            ('finetune', [_evaluation(3504, 240.0)])]
  for references in ({'random': 16.8, 'expert': 855.7}, None):
    path = str(tmp_path / f'{references is None}.png')
    plotting.plot_phases(phases, references, path, 'title')
    assert os.path.getsize(path) > 10_000
