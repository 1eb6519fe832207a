"""The defaults sweep: flag errors in one line, and a tiny real sweep on a
one-episode dataset whose records are written, summarised and resumed."""

import json
import os
import subprocess
import sys

import pytest

import environments

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _sweep(tmp_path, *extra):
  return subprocess.run(
      [sys.executable, '-m', 'benchmarks.defaults_sweep',
       f'--dataset={tmp_path / "data"}', f'--results_dir={tmp_path / "out"}',
       '--seeds=0', '--steps=16', '--eval_every=8', '--eval_episodes=1',
       '--final_episodes=1', '--temperature_episodes=1', *extra],
      cwd=ROOT, text=True, timeout=600, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT)


def test_bad_flags_end_in_one_line(tmp_path):
  result = _sweep(tmp_path)
  assert result.returncode == 2
  assert 'does not exist; make it with' in result.stdout
  assert 'Traceback' not in result.stdout
  (tmp_path / 'data').mkdir()
  result = _sweep(tmp_path, '--variants=main,fastest')
  assert result.returncode == 2 and 'unknown fastest' in result.stdout


@pytest.mark.integration
def test_a_tiny_sweep_writes_records_and_resumes(tmp_path):
  environments.write_dataset(str(tmp_path / 'data'), 'cartpole_swingup',
                             'random', 1, 0)
  # A report of nothing recorded yet trains nothing and lists the run.
  result = _sweep(tmp_path, '--variants=main', '--report_only')
  assert result.returncode == 0, result.stdout[-3000:]
  results = json.loads((tmp_path / 'out' / 'defaults_sweep.json').read_text())
  assert results['records'] == [] and results['missing'] == [
      'main_seed0_16steps']
  result = _sweep(tmp_path, '--variants=main')
  assert result.returncode == 0, result.stdout[-3000:]
  record_path = tmp_path / 'out' / 'defaults_sweep_runs' / (
      'main_seed0_16steps.json')
  (record,) = json.loads(record_path.read_text())
  assert record['variant'] == 'main' and record['learner_steps'] == 16
  assert [p['learner_steps'] for p in record['curve']] == [8, 16]
  assert set(record['final']) == {'sample', 'mode', 'q_filter'}
  # The same model sampled at each temperature (an episode of cartpole
  # swingup scores above 0 whatever the policy, so each one ran).
  assert set(record['final_by_temperature']) == {'1.0', '0.5', '0.25'}
  assert all(r > 0.0 for r in record['final_by_temperature'].values())
  assert -1.0 <= record['critic']['rank_correlation'] <= 1.0
  assert 0.0 <= record['pole']['upright_fraction'] <= 1.0
  assert record['pole']['mean_abs_angular_velocity'] >= 0.0
  assert record['critic']['pairs'] == 1000 - 300  # One episode, margin 300.
  assert record['action_gap']['states'] == 1000  # Every step with an action.
  assert 0.0 <= record['action_gap']['data_above_random'] <= 1.0
  results = json.loads((tmp_path / 'out' / 'defaults_sweep.json').read_text())
  assert results['missing'] == []
  assert results['summary']['main']['return_mean'] == record['return']
  assert results['summary']['main']['final_by_temperature'] == (
      record['final_by_temperature'])
  assert (tmp_path / 'out' / 'defaults_sweep.png').stat().st_size > 0
  # A rerun trains nothing: the run is recorded.
  mtime = record_path.stat().st_mtime_ns
  result = _sweep(tmp_path, '--variants=main')
  assert result.returncode == 0
  assert 'main seed 0: 8 steps' not in result.stdout
  assert record_path.stat().st_mtime_ns == mtime
