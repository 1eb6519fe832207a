"""`python -m launchers.run` as a user runs it: Launchpad `local_mp` processes.

Each run gets a unique token in its environment; every process of the run
inherits it, which is how these tests find the run's processes (and prove none
is left behind).
"""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests import processes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TASK = 'cartpole_swingup'


def _launch(run_dir, dataset, token, *extra):
  env = dict(os.environ, **{processes.TOKEN_VARIABLE: token})
  return subprocess.Popen(
      [sys.executable, '-m', 'launchers.run', '--mode=offline',
       f'--task={TASK}', f'--dataset={dataset}', f'--run_dir={run_dir}',
       '--batch_size=16', '--eval_episodes=1', *extra],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)


def _wait_for_file(path, process, timeout):
  """Waits for `path`; fails at once (with its output) if `process` exits."""
  deadline = time.time() + timeout
  while not os.path.exists(path):
    if process.poll() is not None:
      raise AssertionError(f'run exited early:\n{process.stdout.read()}')
    if time.time() > deadline:
      raise TimeoutError(path)
    time.sleep(0.5)


def _read(path):
  with open(path) as f:
    return f.read()


@pytest.mark.integration
def test_local_mp_run_stops_by_itself_and_leaves_no_process(
    tmp_path, cartpole_dataset):
  token = uuid.uuid4().hex
  run_dir = str(tmp_path / 'run')
  process = _launch(run_dir, cartpole_dataset, token,
                    '--max_learner_steps=30', '--eval_every_steps=15')
  _wait_for_file(os.path.join(run_dir, 'learner.pid'), process, timeout=300)
  learner_pid = int(_read(os.path.join(run_dir, 'learner.pid')))
  interfaces = _read(f'/proc/{learner_pid}/net/dev')
  output, _ = process.communicate(timeout=600)
  assert process.returncode == 0, output
  # The learner ran in the run's private network: loopback only (as root).
  if os.geteuid() == 0:
    names = [line.split(':')[0].strip()
             for line in interfaces.splitlines()[2:]]
    assert names == ['lo'], interfaces
  assert '[eval] learner_steps=30' in output, output
  assert '| eval | learner steps |' in output, output
  assert os.path.exists(os.path.join(run_dir, 'eval_return.png'))
  time.sleep(1.0)
  assert processes.processes_with(token) == []


@pytest.mark.integration
def test_killed_learner_resumes_from_its_last_checkpoint(
    tmp_path, cartpole_dataset):
  token = uuid.uuid4().hex
  run_dir = str(tmp_path / 'run')
  saved_step_file = os.path.join(run_dir, 'checkpoints', 'learner',
                                 'saved_step.txt')
  process = _launch(run_dir, cartpole_dataset, token,
                    '--max_learner_steps=100000', '--eval_every_steps=100000',
                    '--checkpoint_every_s=1')
  _wait_for_file(saved_step_file, process, timeout=300)
  deadline = time.time() + 300
  while int(_read(saved_step_file) or 0) < 5 and time.time() < deadline:
    time.sleep(0.5)
  learner_pid = int(_read(os.path.join(run_dir, 'learner.pid')))
  os.kill(learner_pid, signal.SIGKILL)
  saved_before_kill = int(_read(saved_step_file))
  output, _ = process.communicate(timeout=300)
  # Launchpad notices the dead worker and stops the run with an error.
  assert process.returncode != 0, output
  time.sleep(1.0)
  assert processes.processes_with(token) == []

  restart = _launch(run_dir, cartpole_dataset, uuid.uuid4().hex,
                    f'--max_learner_steps={saved_before_kill + 10}',
                    f'--eval_every_steps={saved_before_kill + 10}')
  output, _ = restart.communicate(timeout=600)
  assert restart.returncode == 0, output
  status = _read(os.path.join(run_dir, 'status.log'))
  resumed = [int(line.rsplit(' ', 1)[1]) for line in status.splitlines()
             if line.startswith('[learner] resumed at step')]
  # At most the steps since the last checkpoint were lost.
  assert resumed and resumed[-1] >= saved_before_kill, status
  assert f'[eval] learner_steps={saved_before_kill + 10}' in output, output


@pytest.mark.parametrize('dataset,run_dir,named', [
    ('missing', 'run', 'missing'),  # No dataset there.
    ('data', 'file', 'a file has that name'),  # --run_dir names a file.
])
def test_cli_reports_bad_input_in_one_line_with_status_2(
    tmp_path, cartpole_dataset, dataset, run_dir, named):
  (tmp_path / 'file').write_text('not a directory')
  dataset = cartpole_dataset if dataset == 'data' else f'{tmp_path}/{dataset}'
  process = subprocess.run(
      [sys.executable, '-m', 'launchers.run', '--mode=offline',
       f'--task={TASK}', f'--dataset={dataset}',
       f'--run_dir={tmp_path}/{run_dir}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert process.returncode == 2, process.stderr
  # One line and nothing else: no traceback, no dependency's banner.
  lines = process.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error:'), process.stderr
  assert named in lines[0], process.stderr
