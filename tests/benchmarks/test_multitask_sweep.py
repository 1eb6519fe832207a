"""`benchmarks.multitask`: its records, summary, resume and bad flags.

(Named apart from tests/launchers/test_multitask.py: test files share one
namespace here.)

The runs themselves are the launchers' offline runs (tested in
tests/launchers/test_multitask.py); here the sweep around them: a finished
run's records are read back from its eval.jsonl, a rerun skips runs with
records, and bad flags end in one line with exit status 2.
"""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import multitask_analysis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
TASKS = ('cartpole_swingup', 'cartpole_balance')


def _command(tmp_path, *extra):
  return [sys.executable, '-m', 'benchmarks.multitask', '--seeds=0',
          f'--tasks={",".join(TASKS)}', '--episodes=3',
          f'--data_dir={tmp_path / "data"}', f'--work_dir={tmp_path / "runs"}',
          f'--results_dir={tmp_path / "results"}', *extra]


def _run(command):
  return subprocess.run(command, cwd=ROOT, text=True, timeout=600,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _records(method, tasks, pac, seed=0):
  return [{'method': method, 'task': task, 'dataset': f'{task}_mixed',
           'seed': seed, 'normalized_return': pac + i, 'return': 0.0,
           'learner_steps': 3000} for i, task in enumerate(tasks)]


def test_summary_means_over_seeds_and_the_aims():
  records = (_records('pac_multi', TASKS, 50) + _records('pac_multi', TASKS,
                                                         30, seed=1) +
             _records('bc_multi', TASKS, 20) +
             _records('pac_single', TASKS[:1], 55) +
             _records('pac_single', TASKS[1:], 70))
  summary = multitask_analysis.summarise(records)
  table = summary['normalized_return']
  assert table['pac_multi']['cartpole_swingup'] == {'mean': 40.0, 'std': 10.0,
                                                    'seeds': 2}
  assert table['pac_multi']['mean_over_tasks'] == 40.5
  assert summary['aims']['pac_multi_beats_bc_multi']
  # pac_single: 55 on swingup, 70 on balance; pac_multi 40 and 41.
  assert summary['aims']['pac_single_minus_pac_multi'] == {
      'cartpole_balance': 29.0, 'cartpole_swingup': 15.0}
  assert not summary['aims']['pac_multi_within_10_of_single']


def test_a_finished_runs_records_come_from_its_evaluations(tmp_path):
  evaluations = [
      {'learner_steps': 1000, 'return_mean': 1.0, 'tasks': {
          task: {'return_mean': 100.0 * (i + 1), 'normalized_return': 60.0}
          for i, task in enumerate(TASKS)}},
      {'learner_steps': 3000, 'return_mean': 1.0, 'tasks': {
          task: {'return_mean': 200.0 * (i + 1), 'normalized_return': 40.0}
          for i, task in enumerate(TASKS)}}]
  (tmp_path / 'eval.jsonl').write_text(
      ''.join(json.dumps(e) + '\n' for e in evaluations))

  run = {'method': 'pac_multi', 'tasks': list(TASKS), 'seed': 2}
  records = multitask_analysis.run_records(run, str(tmp_path / 'eval.jsonl'),
                                           seconds=12.0)
  assert [(r['task'], r['return'], r['normalized_return'],
           r['best_normalized_return'], r['learner_steps'], r['seed'])
          for r in records] == [('cartpole_swingup', 200.0, 40.0, 60.0, 3000, 2),
                                ('cartpole_balance', 400.0, 40.0, 60.0, 3000,
                                 2)]


def test_a_rerun_skips_finished_runs_and_writes_the_results(tmp_path):
  record_dir = tmp_path / 'results' / 'multitask_runs'
  record_dir.mkdir(parents=True)
  both = '+'.join(TASKS)
  runs = {f'pac_multi_{both}_3000steps_seed0': _records('pac_multi', TASKS,
                                                         50),
          f'bc_multi_{both}_3000steps_seed0': _records('bc_multi', TASKS, 20),
          f'pac_single_{TASKS[0]}_3000steps_seed0': _records(
              'pac_single', TASKS[:1], 55)}
  for name, records in runs.items():
    (record_dir / f'{name}.json').write_text(json.dumps(records))
  # The one missing run cannot start (a file where its run directory would
  # go): one line, exit 2, no results file.
  (tmp_path / 'runs').mkdir()
  (tmp_path / 'runs' / f'pac_single_{TASKS[1]}_3000steps_seed0').write_text(
      '')
  result = _run(_command(tmp_path))
  assert result.returncode == 2, result.stdout[-3000:]
  assert 'Traceback' not in result.stdout
  assert not (tmp_path / 'results' / 'multitask.json').exists()
  # Only the finished runs: the sweep writes what it has, missing listed.
  result = _run(_command(tmp_path, '--methods=pac_multi,bc_multi'))
  assert result.returncode == 0, result.stdout[-3000:]
  with open(tmp_path / 'results' / 'multitask.json') as f:
    results = json.load(f)
  assert len(results['records']) == 4 and results['missing'] == []
  assert results['aims']['pac_multi_beats_bc_multi']
  assert (tmp_path / 'results' / 'multitask.png').stat().st_size > 0
  assert 'load_average' in results


@pytest.mark.parametrize('flag, message', [
    ('--methods=pac_multi,dqn', 'unknown dqn'),
    ('--tasks=cartpole_swingup,walker_wlk', 'walker_wlk'),
    ('--episodes=2', 'no random or no expert episodes'),
])
def test_bad_flags_end_in_one_line_with_status_2(tmp_path, flag, message):
  result = _run(_command(tmp_path, flag))
  assert result.returncode == 2, result.stdout[-3000:]
  assert message in result.stdout and 'Traceback' not in result.stdout


@pytest.mark.integration
def test_a_tiny_sweep_trains_evaluates_and_records(tmp_path):
  """One real run (local_mp, in a launcher process of its own): its record
  comes from its evaluations; a rerun trains nothing."""
  command = _command(tmp_path, '--methods=pac_single',
                     '--tasks=cartpole_balance', '--steps=16',
                     '--eval_episodes=1')
  result = _run(command)
  assert result.returncode == 0, result.stdout[-3000:]
  with open(tmp_path / 'results' / 'multitask.json') as f:
    (record,) = json.load(f)['records']
  assert record['method'] == 'pac_single' and record['seed'] == 0
  assert record['task'] == 'cartpole_balance' and record['learner_steps'] == 16
  assert isinstance(record['normalized_return'], float)
  rerun = _run(command)
  assert rerun.returncode == 0 and '[run]' not in rerun.stdout
