"""The scaling sweep's runner: a tiny grid end to end, resume, bad input.

The integration test runs the real command (`python -m benchmarks.scaling`)
on tiny sizes and budgets: real PAC learners on real cartpole data, real
MuJoCo evaluations, worker processes, Ctrl-C.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from benchmarks import scaling
from benchmarks import scaling_run
from tests import processes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _command(tmp_path, *extra, results='results'):
  return [sys.executable, '-m', 'benchmarks.scaling', '--methods=pac',
          '--seeds=0', '--eval_episodes=1', '--dataset_episodes=3',
          '--num_bootstrap=20', f'--work_dir={tmp_path / "work"}',
          f'--results_dir={tmp_path / results}', *extra]


def _run(command, token=None):
  env = dict(os.environ)
  if token:
    env[processes.TOKEN_VARIABLE] = token
  return subprocess.run(command, cwd=ROOT, env=env, text=True, timeout=900,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _record(tmp_path, results, size):
  path = tmp_path / results / 'scaling_runs' / (
      f'cartpole_swingup_pac_{size}_seed0.json')
  return json.loads(path.read_text())


def test_budget_steps_round_to_whole_learner_calls():
  assert scaling_run.budget_steps((1e9, 3e9, 1e6), 5.9e7, 8) == [16, 48, 8]


def test_budget_records_normalise_and_carry_the_curve():
  run = {'method': 'bc', 'task': 't', 'size': 's', 'dataset': '/d/x',
         'seed': 3, 'params': 100, 'flops_per_step': 1e8, 'curve': [
             {'budget_flops': 1e9, 'learner_steps': 8, 'return_mean': 20.0},
             {'budget_flops': 2e9, 'learner_steps': 16, 'return_mean': 65.0}]}
  records = scaling.budget_records([run], {'random': 20.0, 'expert': 110.0})
  assert [r['score'] for r in records] == [0.0, 50.0]
  assert records[1]['curve'] == [0.0, 50.0]
  assert records[1]['flops'] == 2e9 and records[1]['dataset'] == 'x'
  assert records[1]['training_flops'] == 16 * 1e8


@pytest.mark.parametrize('flag,named', [
    ('--sizes=huge', "unknown size 'huge'"),
    ('--methods=cql', "unknown method 'cql'"),
    ('--budgets=0', 'must be positive'),
    ('--seeds=one', 'take numbers'),
])
def test_bad_flags_get_one_line_and_status_2(tmp_path, flag, named):
  result = _run(_command(tmp_path, flag))
  assert result.returncode == 2, result.stdout
  assert named in result.stdout.strip().splitlines()[-1], result.stdout
  assert 'Traceback' not in result.stdout
  assert not (tmp_path / 'work').exists()  # Nothing started.


@pytest.mark.integration
def test_tiny_grid_runs_resumes_and_survives_ctrl_c(tmp_path):
  # 2 sizes x 2 budgets, two runs in parallel, end to end.
  grid = _command(tmp_path, '--sizes=xs,s', '--budgets=1e9,3e9')
  result = _run(grid)
  assert result.returncode == 0, result.stdout
  assert 'Traceback' not in result.stdout
  out = json.loads((tmp_path / 'results' / 'scaling.json').read_text())
  assert len(out['records']) == 4 and out['missing'] == []
  assert {(r['size'], r['flops']) for r in out['records']} == {
      ('xs', 1e9), ('xs', 3e9), ('s', 1e9), ('s', 3e9)}
  xs = _record(tmp_path, 'results', 'xs')
  assert [p['learner_steps'] for p in xs['curve']] == [16, 48]
  assert xs['params'] < _record(tmp_path, 'results', 's')['params']
  assert set(out['fits']['pac']) >= {'frontier', 'params_vs_flops',
                                     'distance_vs_flops'}
  for name in ('scaling_frontier.png', 'scaling_isoreturn.png'):
    assert (tmp_path / 'results' / name).stat().st_size > 1000

  # A rerun skips the finished runs (their records stay as they were).
  mtime = (tmp_path / 'results' / 'scaling_runs' /
           'cartpole_swingup_pac_xs_seed0.json').stat().st_mtime
  again = _run(grid)
  assert again.returncode == 0 and '2 already finished' in again.stdout
  assert (tmp_path / 'results' / 'scaling_runs' /
          'cartpole_swingup_pac_xs_seed0.json').stat().st_mtime == mtime

  # Ctrl-C after the first budget of a longer xs run; the rerun resumes it
  # and its first two budgets equal the uninterrupted run's, bit for bit.
  token = uuid.uuid4().hex
  longer = _command(tmp_path, '--sizes=xs', '--budgets=1e9,3e9,3e10',
                    '--parallel=1', results='resumed')
  env = dict(os.environ, **{processes.TOKEN_VARIABLE: token})
  process = subprocess.Popen(longer, cwd=ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True,
                             # A shell's background job starts with Ctrl-C
                             # ignored, which Python would inherit.
                             preexec_fn=lambda: signal.signal(
                                 signal.SIGINT, signal.SIG_DFL))
  checkpoint = (tmp_path / 'work' / 'checkpoints' /
                'cartpole_swingup_pac_xs_seed0.pkl')
  deadline = time.time() + 300
  while not checkpoint.exists():
    assert process.poll() is None, process.stdout.read()
    assert time.time() < deadline
    time.sleep(0.1)
  os.killpg(process.pid, signal.SIGINT)  # As a terminal's Ctrl-C.
  output, _ = process.communicate(timeout=60)
  assert process.returncode == 130, output
  assert output.strip().splitlines()[-1] == (
      '[scaling] interrupted: 0/1 runs finished; rerun the same command to '
      'resume'), output
  assert 'Traceback' not in output
  time.sleep(0.5)
  assert processes.processes_with(token) == []
  resumed = _run(longer)
  assert resumed.returncode == 0, resumed.stdout
  curve = _record(tmp_path, 'resumed', 'xs')['curve']
  assert [p['learner_steps'] for p in curve][:2] == [16, 48]
  assert [p['return_mean'] for p in curve][:2] == [
      p['return_mean'] for p in xs['curve']]
