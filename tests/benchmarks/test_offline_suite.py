"""The offline suite benchmark: normalisation, records, aims, and a tiny real
sweep on a one-episode suite."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import offline_suite_analysis as analysis
from environments import build_suite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONSTANTS = {'random_return': 20.0, 'expert_return': 820.0}


def test_normalized_maps_random_to_0_and_expert_to_100():
  assert analysis.normalized(20.0, CONSTANTS) == 0.0
  assert analysis.normalized(820.0, CONSTANTS) == 100.0
  assert analysis.normalized(420.0, CONSTANTS) == 50.0


def test_a_runs_record_has_its_last_and_best_evaluation(tmp_path):
  path = tmp_path / 'eval.jsonl'
  path.write_text('\n'.join(json.dumps(e) for e in [
      {'learner_steps': 10, 'return_mean': 100.0},
      {'learner_steps': 20, 'return_mean': 660.0},
      {'learner_steps': 30, 'return_mean': 500.0}]))
  run = {'task': 'finger_spin', 'dataset': 'medium', 'method': 'pac',
         'seed': 2}
  (record,) = analysis.run_records(run, str(path), CONSTANTS, 12.34)
  assert record == {'task': 'finger_spin', 'dataset': 'medium',
                    'method': 'pac', 'seed': 2, 'normalized_return': 60.0,
                    'return': 500.0, 'learner_steps': 30,
                    'best_normalized_return': 80.0, 'best_return': 660.0,
                    'run_wall_s': 12.3}


def test_the_learners_last_metrics_come_from_its_log(tmp_path):
  assert analysis.final_learner_metrics(str(tmp_path)) is None
  log = tmp_path / 'logs' / 'learner'
  log.mkdir(parents=True)
  (log / 'logs.csv').write_text(
      'learner_steps,loss/bc,policy/entropy,policy/weights_ess,q/mean\n'
      '8,3.0,2.5,0.5,10.0\n16,2.0,1.5,0.75,12.0\n')
  assert analysis.final_learner_metrics(str(tmp_path)) == {
      'bc_nll': 2.0, 'policy_entropy': 1.5, 'weights_ess': 0.75,
      'q_mean': 12.0}


def _record(dataset, method, seed, score):
  return {'task': 't', 'dataset': dataset, 'method': method, 'seed': seed,
          'normalized_return': score, 'best_normalized_return': score + 1}


def test_summary_and_aims():
  records = [_record('medium', 'pac', 0, 50), _record('medium', 'pac', 1, 70),
             _record('medium', 'bc', 0, 40), _record('medium', 'bc', 1, 40),
             _record('random', 'pac', 0, 30), _record('random', 'bc', 0, 10),
             _record('expert', 'pac', 0, 90), _record('expert', 'bc', 0, 97),
             _record('expert', 'pac_alpha0.75', 0, 95),
             _record('random', 'pac_alpha0.75', 0, 20)]
  summary = analysis.summarise(records)
  table = summary['normalized_return']['t']
  assert table['medium']['pac'] == {'mean': 60.0, 'std': 10.0,
                                    'best_mean': 61.0, 'seeds': 2}
  # alpha-PAC takes the better PAC alpha per dataset, and says which.
  assert table['expert']['alpha_pac'] == {
      'mean': 95.0, 'std': 0.0, 'best_mean': 96.0, 'seeds': 1,
      'method': 'pac_alpha0.75', 'tried': ['pac', 'pac_alpha0.75']}
  assert table['random']['alpha_pac']['method'] == 'pac'
  assert table['medium']['alpha_pac']['tried'] == ['pac']
  # Sub-optimal gaps to BC: PAC 60 - 40 and 30 - 10, alpha-PAC the same
  # (PAC is its choice on both), alpha 0.75 20 - 10 on the one cell it has;
  # on expert data alpha 0.75 (alpha-PAC's choice) is 95, PAC 90, BC 97.
  assert summary['aims'] == {
      'suboptimal_pac_minus_bc': 20.0, 'suboptimal_pac_cells': 2,
      'pac_10_above_bc_on_suboptimal': True,
      'expert_pac_minus_bc': -7.0, 'expert_pac_cells': 1,
      'pac_within_5_of_bc_on_expert': False,
      'suboptimal_alpha_pac_minus_bc': 20.0, 'suboptimal_alpha_pac_cells': 2,
      'alpha_pac_10_above_bc_on_suboptimal': True,
      'expert_alpha_pac_minus_bc': -2.0, 'expert_alpha_pac_cells': 1,
      'alpha_pac_within_5_of_bc_on_expert': True,
      'suboptimal_pac_alpha0.75_minus_bc': 10.0,
      'suboptimal_pac_alpha0.75_cells': 1,
      'pac_alpha0.75_10_above_bc_on_suboptimal': True,
      'expert_pac_alpha0.75_minus_bc': -2.0,
      'expert_pac_alpha0.75_cells': 1,
      'pac_alpha0.75_within_5_of_bc_on_expert': True}


def test_the_table_has_a_column_per_method_and_alpha_pacs_choice():
  records = [_record('medium', 'pac', 0, 50), _record('medium', 'pac', 1, 70),
             _record('medium', 'bc', 0, 40), _record('expert', 'bc', 0, 97),
             _record('expert', 'pac', 0, 90),
             _record('expert', 'pac_alpha0.75', 0, 95)]
  assert analysis.markdown_table(analysis.summarise(records)).splitlines() == [
      "Evaluated at the defaults' temperature:", '',
      '| task | dataset | pac | pac_alpha0.75 | alpha_pac | bc |',
      '|---|---|---:|---:|---:|---:|',
      '| t | medium | 60.0 ± 10.0 (61.0) |  | 60.0 ± 10.0 (61.0) [pac] | '
      '40.0 (41.0) |',
      '| t | expert | 90.0 (91.0) | 95.0 (96.0) | 95.0 (96.0) [alpha 0.75] | '
      '97.0 (98.0) |']


def test_a_methods_settings_are_in_its_name():
  """Its BC weight and, with a _t<T> suffix, its evaluation temperature."""
  assert analysis.method_overrides('pac') == {}
  assert analysis.method_overrides('d4pg') == {}
  assert analysis.method_overrides('bc') == {'alpha': 1.0}
  assert analysis.method_overrides('pac_alpha0.75') == {'alpha': 0.75}
  assert analysis.method_overrides('pac_alpha0') == {'alpha': 0.0}
  assert analysis.method_overrides('pac_t1') == {'eval_temperature': 1.0}
  assert analysis.method_overrides('bc_t0.25') == {'alpha': 1.0,
                                                   'eval_temperature': 0.25}
  assert analysis.method_overrides('pac_alpha0.25_t1') == {
      'alpha': 0.25, 'eval_temperature': 1.0}
  for bad in ('pac_alpha1.5', 'pac_alpha', 'pac_alphax', 'cql', 'cql_t1',
              'pac_alpha2_t1'):
    with pytest.raises(ValueError, match=f'unknown {bad}; choose from'):
      analysis.method_overrides(bad)
  for bad in ('pac_t0', 'pac_tx', 'd4pg_t1'):
    with pytest.raises(ValueError, match=f'unknown {bad}: a _t<temperature>'):
      analysis.method_overrides(bad)


def test_methods_are_compared_within_their_temperature_family():
  """alpha-PAC and the aims never compare PAC at one temperature with BC
  at another; each family has its own table."""
  records = [_record('medium', 'pac', 0, 50), _record('medium', 'bc', 0, 40),
             _record('medium', 'pac_t1', 0, 30),
             _record('medium', 'pac_alpha0.25_t1', 0, 45),
             _record('medium', 'bc_t1', 0, 20), _record('medium', 'd4pg', 0, 5)]
  summary = analysis.summarise(records)
  table = summary['normalized_return']['t']['medium']
  assert table['alpha_pac']['tried'] == ['pac']
  assert table['alpha_pac_t1']['method'] == 'pac_alpha0.25_t1'
  assert table['alpha_pac_t1']['tried'] == ['pac_alpha0.25_t1', 'pac_t1']
  aims = summary['aims']
  assert aims['suboptimal_pac_minus_bc'] == 10.0
  assert aims['suboptimal_pac_t1_minus_bc_t1'] == 10.0
  assert aims['suboptimal_alpha_pac_t1_minus_bc_t1'] == 25.0
  assert aims['suboptimal_pac_alpha0.25_t1_minus_bc_t1'] == 25.0
  assert not any(key.endswith('minus_bc') and '_t1' in key for key in aims)
  lines = analysis.markdown_table(summary).splitlines()
  assert lines[2] == '| task | dataset | pac | alpha_pac | bc | d4pg |'
  assert lines[4] == ('| t | medium | 50.0 (51.0) | 50.0 (51.0) [pac] | '
                      '40.0 (41.0) | 5.0 (6.0) |')
  assert lines[6] == 'Evaluated at temperature 1:'
  assert lines[8] == ('| task | dataset | pac_t1 | pac_alpha0.25_t1 | '
                      'alpha_pac_t1 | bc_t1 |')
  assert lines[10] == ('| t | medium | 30.0 (31.0) | 45.0 (46.0) | '
                       '45.0 (46.0) [alpha 0.25] | 20.0 (21.0) |')


def _sweep(tmp_path, *extra):
  return subprocess.run(
      [sys.executable, '-m', 'benchmarks.offline_suite',
       f'--suite_dir={tmp_path / "suite"}', f'--work_dir={tmp_path / "runs"}',
       f'--results_dir={tmp_path / "results"}', '--seeds=0', *extra],
      cwd=ROOT, text=True, timeout=600, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT)


def test_a_missing_suite_or_bad_flags_end_in_one_line(tmp_path):
  result = _sweep(tmp_path)
  assert result.returncode == 2
  assert 'build it: python -m environments.build_suite' in result.stdout
  (tmp_path / 'suite').mkdir()
  (tmp_path / 'suite' / 'suite.json').write_text(json.dumps(
      {'cartpole_swingup': dict(CONSTANTS, datasets={})}))
  result = _sweep(tmp_path, '--datasets=medium,great')
  assert result.returncode == 2 and 'unknown great' in result.stdout
  result = _sweep(tmp_path, '--methods=pac,pac_alpha2')
  assert result.returncode == 2
  assert '--methods: unknown pac_alpha2' in result.stdout
  result = _sweep(tmp_path, '--tasks=walker_walk')
  assert result.returncode == 2 and 'walker_walk not in' in result.stdout
  assert 'Traceback' not in result.stdout


@pytest.mark.integration
def test_a_tiny_sweep_trains_records_and_skips_on_rerun(tmp_path):
  build_suite.build(['cartpole_swingup'], 1, str(tmp_path / 'suite'), seed=0,
                    workers=1, log=lambda line: None)
  command = ('--datasets=medium', '--methods=pac_alpha0.75_t1,d4pg',
             '--steps=16', '--eval_episodes=1')
  # What an interrupted peer run left: it starts again from scratch.
  peer_dir = tmp_path / 'runs' / analysis.run_name(
      'd4pg', 'cartpole_swingup', 'medium', 16, 0)
  peer_dir.mkdir(parents=True)
  (peer_dir / 'eval.jsonl').write_text(json.dumps(
      {'learner_steps': 5, 'return_mean': 999.0}) + '\n')
  result = _sweep(tmp_path, *command)
  assert result.returncode == 0, result.stdout[-3000:]
  with open(tmp_path / 'results' / 'offline_suite.json') as f:
    results = json.load(f)
  pac, d4pg = results['records']
  assert [(r['task'], r['dataset'], r['method'], r['seed'],
           r['learner_steps']) for r in (pac, d4pg)] == [
               ('cartpole_swingup', 'medium', 'pac_alpha0.75_t1', 0, 16),
               ('cartpole_swingup', 'medium', 'd4pg', 0, 16)]
  # PAC trained at the BC weight its name gives, and evaluated at its
  # temperature.
  with open(tmp_path / 'runs' / analysis.run_name(
      'pac_alpha0.75_t1', 'cartpole_swingup', 'medium', 16, 0) /
            'config.json') as f:
    config = json.load(f)
  assert config['agent.alpha'] == 0.75
  assert config['agent.eval_temperature'] == 1.0
  # The report carries PAC's last learner metrics (D4PG logs its own).
  assert set(pac['final_learner']) == set(analysis.LEARNER_METRICS)
  assert 'final_learner' not in d4pg
  suite = build_suite.read_suite(str(tmp_path / 'suite'))['cartpole_swingup']
  for record in (pac, d4pg):
    assert record['normalized_return'] == analysis.normalized(
        record['return'], suite)
  # The peer evaluated at every third of its steps, as the program does.
  with open(peer_dir / 'eval.jsonl') as f:
    evaluations = [json.loads(line) for line in f]
  assert [e['learner_steps'] for e in evaluations] == [5, 10, 16]
  assert 999.0 not in [e['return_mean'] for e in evaluations]
  assert results['constants']['cartpole_swingup']['expert_return'] == (
      suite['expert_return'])
  assert (tmp_path / 'results' / 'offline_suite.png').stat().st_size > 0
  table = (tmp_path / 'results' / 'offline_suite.md').read_text()
  assert '| cartpole_swingup | medium |' in table
  rerun = _sweep(tmp_path, *command)
  assert rerun.returncode == 0 and '[run]' not in rerun.stdout
  assert '[d4pg]' not in rerun.stdout
  # A report over more than was run trains nothing and names what is missing.
  report = _sweep(tmp_path, '--datasets=medium,expert',
                  '--methods=pac_alpha0.75_t1',
                  '--steps=16', '--eval_episodes=1', '--report_only')
  assert report.returncode == 0 and '[run]' not in report.stdout
  with open(tmp_path / 'results' / 'offline_suite.json') as f:
    reported = json.load(f)
  assert reported['records'] == [pac]
  assert reported['missing'] == [
      'pac_alpha0.75_t1_cartpole_swingup_expert_16steps_seed0']
