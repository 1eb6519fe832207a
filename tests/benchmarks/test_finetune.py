"""The offline-to-online benchmark: records, aims, a missing offline model,
and a tiny real run from a tiny offline suite run."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import finetune_analysis as analysis
from environments import build_suite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONSTANTS = {'random_return': 20.0, 'expert_return': 820.0}


def _write(path, evaluations):
  path.write_text('\n'.join(json.dumps(e) for e in evaluations) + '\n')


def _run_record(tmp_path, offline, finetune):
  """The record of a finger_spin medium seed-1 run with these evaluations."""
  _write(tmp_path / 'offline.jsonl', offline)
  _write(tmp_path / 'finetune.jsonl', finetune)
  run = {'task': 'finger_spin', 'dataset': 'medium', 'seed': 1}
  return analysis.run_record(run, str(tmp_path / 'offline.jsonl'),
                             str(tmp_path / 'finetune.jsonl'), CONSTANTS, 1.0)


def test_a_record_starts_from_the_offline_models_last_evaluation(tmp_path):
  record = _run_record(tmp_path, [
      {'learner_steps': 50, 'return_mean': 820.0, 'actor_steps': 0},
      {'learner_steps': 100, 'return_mean': 420.0, 'actor_steps': 0}], [
      {'learner_steps': 150, 'return_mean': 380.0, 'actor_steps': 2000},
      {'learner_steps': 200, 'return_mean': 660.0, 'actor_steps': 4000}])
  # (R - 20) / 800 * 100: 420 -> 50, 660 -> 80, 380 -> 45; floor 378 -> 44.75.
  assert {k: record[k] for k in ('task', 'dataset', 'seed', 'before', 'after',
                                 'min_during', 'env_steps', 'floor')} == {
                                     'task': 'finger_spin',
                                     'dataset': 'medium', 'seed': 1,
                                     'before': 50.0, 'after': 80.0,
                                     'min_during': 45.0, 'env_steps': 4000,
                                     'floor': 44.75}
  assert record['curve'] == [[0, 50.0], [2000, 45.0], [4000, 80.0]]
  assert record['learner_steps'] == [100, 200]


def test_a_record_starts_from_the_fine_tuning_runs_start_evaluation(
    tmp_path):
  offline = [{'learner_steps': 100, 'return_mean': 420.0, 'actor_steps': 0}]
  start = {'learner_steps': 100, 'return_mean': 340.0, 'actor_steps': 100,
           'start': True}
  record = _run_record(tmp_path, offline, [
      start,
      {'learner_steps': 150, 'return_mean': 380.0, 'actor_steps': 2000},
      {'learner_steps': 200, 'return_mean': 660.0, 'actor_steps': 4000}])
  # 340 -> 40 is before (not the offline run's 420) and not the lowest
  # evaluation during: that is 380 -> 45; floor 0.9 * 340 = 306 -> 35.75.
  assert (record['before'], record['after'], record['min_during'],
          record['floor'], record['before_from']) == (
              40.0, 80.0, 45.0, 35.75, 'finetune_start')
  assert record['curve'] == [[0, 40.0], [2000, 45.0], [4000, 80.0]]
  with pytest.raises(ValueError, match='no evaluation after its start'):
    _run_record(tmp_path, offline, [start])


def _record(dataset, seed, before, after, low):
  return {'task': 't', 'dataset': dataset, 'seed': seed, 'before': before,
          'after': after, 'min_during': low, 'before_return': before,
          'after_return': after, 'min_during_return': low}


def test_summary_and_aims():
  records = [_record('medium', 0, 40, 70, 38), _record('medium', 1, 40, 60, 30),
             _record('medium_replay', 0, 50, 50, 50)]
  summary = analysis.summarise(records)
  medium = summary['normalized_return']['t']['medium']
  assert (medium['before'], medium['after'], medium['gain'],
          medium['gain_std'], medium['min_during'], medium['seeds']) == (
              40.0, 65.0, 25.0, 5.0, 30, 2)
  # Gains 30 and 20 on medium: 25 >= 20; 30 < 0.9 * 40 breaks the floor.
  assert summary['aims'] == {'medium_gain': 25.0, 'gain_20_on_medium': True,
                             'never_below_90pct_of_start': False}
  assert analysis.summarise(records[:1])['aims'][
      'never_below_90pct_of_start']


def run_name(steps, suffix=''):
  return (f'finetune_pac_cartpole_swingup_medium_16steps_seed0_{steps}steps_'
          f'1actors{suffix}')


def _finetune(tmp_path, *extra):
  return subprocess.run(
      [sys.executable, '-m', 'benchmarks.finetune',
       f'--suite_dir={tmp_path / "suite"}', f'--work_dir={tmp_path / "runs"}',
       f'--results_dir={tmp_path / "results"}', '--seeds=0', *extra],
      cwd=ROOT, text=True, timeout=600, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT)


def test_a_missing_suite_or_offline_model_ends_in_one_line(tmp_path):
  result = _finetune(tmp_path)
  assert result.returncode == 2
  assert 'build it: python -m environments.build_suite' in result.stdout
  (tmp_path / 'suite').mkdir()
  (tmp_path / 'suite' / 'suite.json').write_text(json.dumps(
      {'cartpole_swingup': dict(CONSTANTS, datasets={})}))
  result = _finetune(tmp_path, '--datasets=expert')
  assert result.returncode == 2 and 'unknown expert' in result.stdout
  result = _finetune(tmp_path)
  assert result.returncode == 2
  assert 'has no cartpole_swingup medium dataset' in result.stdout
  (tmp_path / 'suite' / 'suite.json').write_text(json.dumps(
      {'cartpole_swingup': dict(CONSTANTS, datasets={
          'medium': {'path': str(tmp_path / 'medium')}})}))
  result = _finetune(tmp_path, '--suite_steps=16')
  assert result.returncode == 2
  assert ('train them first: python -m benchmarks.offline_suite' in
          result.stdout and '--steps=16' in result.stdout)
  assert 'Traceback' not in result.stdout
  # With the model there, a fine-tuning BC weight out of [0, 1] is bad input.
  model = tmp_path / 'runs' / 'pac_cartpole_swingup_medium_16steps_seed0'
  model.mkdir(parents=True)
  (model / 'eval.jsonl').write_text('{}\n')
  result = _finetune(tmp_path, '--suite_steps=16', '--alpha=2')
  assert result.returncode == 2 and 'alpha' in result.stdout
  assert 'Traceback' not in result.stdout and '[run]' not in result.stdout
  # --method names the offline models: a PAC method, with its settings.
  result = _finetune(tmp_path, '--suite_steps=16', '--method=bc')
  assert result.returncode == 2 and 'not a PAC method' in result.stdout
  result = _finetune(tmp_path, '--suite_steps=16', '--method=pac_t0')
  assert result.returncode == 2 and '--method: unknown pac_t0' in result.stdout
  result = _finetune(tmp_path, '--suite_steps=16', '--method=pac_t1')
  assert result.returncode == 2 and '--methods=pac_t1 ' in result.stdout
  assert 'Traceback' not in result.stdout and '[run]' not in result.stdout


@pytest.mark.integration
def test_a_tiny_offline_model_is_fine_tuned_recorded_and_skipped_on_rerun(
    tmp_path):
  build_suite.build(['cartpole_swingup'], 1, str(tmp_path / 'suite'), seed=0,
                    workers=1, log=lambda line: None)
  offline = subprocess.run(
      [sys.executable, '-m', 'benchmarks.offline_suite',
       f'--suite_dir={tmp_path / "suite"}', f'--work_dir={tmp_path / "runs"}',
       f'--results_dir={tmp_path / "results"}', '--seeds=0',
       '--datasets=medium', '--methods=pac', '--steps=16',
       '--eval_episodes=1'],
      cwd=ROOT, text=True, timeout=600, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT)
  assert offline.returncode == 0, offline.stdout[-3000:]
  command = ('--suite_steps=16', '--steps=32', '--actors=1',
             '--eval_episodes=1')
  result = _finetune(tmp_path, *command)
  assert result.returncode == 0, result.stdout[-3000:]
  with open(tmp_path / 'results' / 'finetune.json') as f:
    results = json.load(f)
  (record,) = results['records']
  assert (record['task'], record['dataset'], record['seed']) == (
      'cartpole_swingup', 'medium', 0)
  # It restored the offline model (step 16) and trained 32 more steps.
  assert record['learner_steps'] == [16, 48]
  assert record['env_steps'] > 0  # The actors played.
  # Its first evaluation was of the restored model, before any training.
  with open(tmp_path / 'runs' / run_name(32) / 'eval.jsonl') as f:
    start = json.loads(f.readline())
  assert start['start'] and start['learner_steps'] == 16
  assert record['before_from'] == 'finetune_start'
  assert record['before_return'] == start['return_mean']
  assert (tmp_path / 'results' / 'finetune.png').stat().st_size > 0
  rerun = _finetune(tmp_path, *command)
  assert rerun.returncode == 0 and '[run]' not in rerun.stdout
  # At another alpha: a run of its own, from the same model, at that weight.
  other = _finetune(tmp_path, *command, '--alpha=0.75')
  assert other.returncode == 0 and '[run]' in other.stdout, other.stdout[-3000:]
  with open(tmp_path / 'results' / 'finetune.json') as f:
    results = json.load(f)
  assert results['settings']['alpha'] == 0.75
  (record,) = results['records']
  assert record['learner_steps'] == [16, 48]
  with open(tmp_path / 'runs' / run_name(32, '_alpha0.75') /
            'config.json') as f:
    assert json.load(f)['agent.alpha'] == 0.75
