"""`python -m launchers.run` as a user runs it: Launchpad `local_mp` processes.

Each run gets a unique token in its environment; every process of the run
inherits it, which is how these tests find the run's processes (and prove none
is left behind).
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

import environments
from launchers import supervision
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
      text=True, start_new_session=True)  # Its own group, as in a terminal.


def _wait_for_file(path, process, timeout):
  """Waits for `path`; fails at once (with its output) if `process` exits."""
  deadline = time.time() + timeout
  while not os.path.exists(path):
    if process.poll() is not None:
      raise AssertionError(f'run exited early:\n{process.stdout.read()}')
    if time.time() > deadline:
      raise TimeoutError(path)
    time.sleep(0.5)


def _pid(run_dir, label, process):
  """The process id of node `label` (e.g. 'actor/1') of a local run."""
  path = os.path.join(run_dir, 'workers.json')
  _wait_for_file(path, process, timeout=300)
  return json.loads(_read(path))[label]['pid']


def _read(path):
  with open(path) as f:
    return f.read()


@pytest.mark.integration
def test_a_killed_run_resumes_its_learner_and_its_replay(
    tmp_path, cartpole_dataset):
  """kill -9 of the learner takes the whole run down; a rerun loses at most
  what came after the last checkpoint pair (learner, then Reverb's tables)."""
  token = uuid.uuid4().hex
  run_dir = str(tmp_path / 'run')
  replay_file = os.path.join(run_dir, 'checkpoints', 'replay_saved.json')
  process = _launch(run_dir, cartpole_dataset, token, '--mode=finetune',
                    '--num_actors=1', '--online_fraction=0.5',
                    '--max_learner_steps=100000', '--eval_every_steps=100000',
                    '--checkpoint_every_s=1')
  _wait_for_file(replay_file, process, timeout=300)
  deadline = time.time() + 300
  while (json.loads(_read(replay_file))['items']['online'] < 50 and
         time.time() < deadline):
    time.sleep(0.5)
  os.kill(_pid(run_dir, 'learner/0', process), signal.SIGKILL)
  replay_saved = json.loads(_read(replay_file))
  # The learner's step at the last checkpoint pair.
  saved_before_kill = replay_saved['learner_step']
  output, _ = process.communicate(timeout=300)
  # Launchpad notices the dead worker and stops the run; one line says which
  # node died and how to resume, no traceback.
  assert process.returncode == 1, output
  assert 'Traceback' not in output, output
  last = output.strip().splitlines()[-1]
  assert last.startswith(
      'error: node learner/0 (killed by SIGKILL) died'), output
  assert 'rerunning the same command' in last, output
  time.sleep(1.0)
  assert processes.processes_with(token) == []

  final = saved_before_kill + 10
  restart = _launch(run_dir, cartpole_dataset, uuid.uuid4().hex,
                    '--mode=finetune', '--num_actors=1',
                    '--online_fraction=0.5', f'--max_learner_steps={final}',
                    f'--eval_every_steps={final}')
  output, _ = restart.communicate(timeout=600)
  assert restart.returncode == 0, output
  status = _read(os.path.join(run_dir, 'status.log'))
  resumed = [int(line.rsplit(' ', 1)[1]) for line in status.splitlines()
             if line.startswith('[learner] resumed at step')]
  # At most the steps since the last checkpoint were lost.
  assert resumed and resumed[-1] >= saved_before_kill, status
  assert f'[eval] learner_steps={final}' in output, output
  # The online table came back with at least what the last checkpoint held,
  # and the dataset was not loaded a second time.
  online = [int(line.split()[3]) for line in status.splitlines()
            if line.startswith('[replay] resumed with')]
  assert online and online[-1] >= replay_saved['items']['online'] > 0, status
  assert '"offline" restored from the replay checkpoint' in status, status


@pytest.mark.integration
def test_a_killed_actor_and_evaluator_are_restarted_and_the_run_finishes(
    tmp_path, cartpole_dataset):
  token = uuid.uuid4().hex
  run_dir = str(tmp_path / 'run')
  process = _launch(run_dir, cartpole_dataset, token, '--mode=finetune',
                    '--num_actors=2', '--online_fraction=0.5',
                    '--max_learner_steps=160', '--eval_every_steps=80',
                    '--learner_device=cpu')
  status_file = os.path.join(run_dir, 'status.log')
  _wait_for_file(status_file, process, timeout=300)
  deadline = time.time() + 300
  while '[eval]' not in _read(status_file):  # Every node is up and working.
    assert time.time() < deadline and process.poll() is None, _read(
        status_file)
    time.sleep(0.5)
  killed = {label: _pid(run_dir, label, process)
            for label in ('actor/1', 'evaluator/0')}
  # The run's processes are in its private network: loopback only (as root).
  if os.geteuid() == 0:
    interfaces = _read(f'/proc/{killed["actor/1"]}/net/dev')
    names = [line.split(':')[0].strip()
             for line in interfaces.splitlines()[2:]]
    assert names == ['lo'], interfaces
  # Only the learner may see a GPU (placement.py); here it is told the CPU.
  environ = {label: dict(
      item.split('=', 1) for item in _read(
          f'/proc/{_pid(run_dir, label, process)}/environ').split('\0')
      if '=' in item) for label in ('learner/0', 'actor/0', 'replay/0')}
  assert environ['learner/0']['JAX_PLATFORMS'] == 'cpu'
  assert environ['learner/0']['TF_FORCE_GPU_ALLOW_GROWTH'] == 'true'
  for label in ('actor/0', 'replay/0'):
    assert environ[label]['CUDA_VISIBLE_DEVICES'] == ''
    assert environ[label]['JAX_PLATFORMS'] == 'cpu'
  for pid in killed.values():
    os.kill(pid, signal.SIGKILL)
  output, _ = process.communicate(timeout=600)
  assert process.returncode == 0, output
  for label in killed:
    assert (f'[fault] {label} died (killed by SIGKILL)' in output and
            'restarted it (restart 1 of 3)' in output), output
  assert '[eval] learner_steps=160' in output, output
  assert '| eval | learner steps |' in output, output
  assert os.path.exists(os.path.join(run_dir, 'eval_return.png'))
  workers = json.loads(_read(os.path.join(run_dir, 'workers.json')))
  for label, pid in killed.items():
    assert workers[label]['restarts'] == 1 and workers[label]['pid'] != pid
  assert workers['actor/0']['deaths'] == []
  # actor/0 closed its recorded episodes at the stop; they load.
  assert '[record] actor/0:' in output, output
  recorded = environments.dataset_paths(os.path.join(run_dir, 'episodes'))
  assert recorded and all(environments.load_dataset(path).num_episodes >= 1
                          for path in recorded)
  time.sleep(1.0)
  assert processes.processes_with(token) == []


@pytest.mark.integration
def test_selfimprove_records_the_episodes_it_collects(
    tmp_path, cartpole_dataset):
  """Each collected episode is on disk, as a dataset a later run can use
  (`--dataset=...,<run_dir>/episodes`: tests/launchers/test_nodes.py and the
  README's commands)."""
  run_dir = str(tmp_path / 'si')
  process = _launch(run_dir, cartpole_dataset, uuid.uuid4().hex,
                    '--mode=selfimprove', '--num_actors=2', '--rounds=1',
                    '--episodes_per_round=2', '--steps_per_round=16',
                    '--record_every_episodes=1')
  output, _ = process.communicate(timeout=600)
  assert process.returncode == 0, output
  episodes_dir = os.path.join(run_dir, 'episodes')
  recorded = environments.dataset_paths(episodes_dir)
  assert len(recorded) == 2, recorded  # One episode per actor and dataset.
  assert '[record] actor/0: 1 episodes in 1 datasets' in output, output
  returns = []
  for path in recorded:
    dataset = environments.load_dataset(path)
    assert dataset.metadata['policy'] == 'pac'
    assert dataset.metadata['run_dir'] == os.path.abspath(run_dir)
    (episode,) = dataset.episodes()
    assert episode['learner_step'] >= 0 and episode['steps'][
        'action'].shape == (1001, 1)
    returns.append(episode['return'])
  # The very episodes the round collected.
  assert (f'[round 1] collected 2 episodes, behaviour return '
          f'{np.mean(returns):.1f}') in output, output


@pytest.mark.integration
@pytest.mark.parametrize('signame,to_group,status', [
    ('SIGINT', True, 130),  # Ctrl-C: the terminal signals every process.
    ('SIGTERM', False, 143),  # kill <launcher pid>.
])
def test_a_signal_stops_the_run_with_every_node_checkpointed(
    tmp_path, cartpole_dataset, signame, to_group, status):
  token = uuid.uuid4().hex
  run_dir = str(tmp_path / 'run')
  checkpoints = os.path.join(run_dir, 'checkpoints')
  # Ctrl-C: with an actor, whose open dataset of episodes (none closed
  # before: 100 per dataset) must be closed at the stop.
  acting = (['--mode=finetune', '--num_actors=1',
             '--record_every_episodes=100'] if to_group else [])
  process = _launch(run_dir, cartpole_dataset, token,
                    '--max_learner_steps=100000', '--eval_every_steps=100000',
                    '--checkpoint_every_s=1', *acting)
  replay_saved = os.path.join(checkpoints, 'replay_saved.json')
  _wait_for_file(replay_saved, process, timeout=300)
  while acting and json.loads(_read(replay_saved))['items']['online'] < 1100:
    assert process.poll() is None, process.stdout.read()
    time.sleep(0.5)  # Over 1,000 actor steps: its first episode ended.
  number = getattr(signal, signame)
  start = time.time()
  if to_group:
    os.killpg(process.pid, number)
  else:
    process.send_signal(number)
  output, _ = process.communicate(timeout=60)
  assert process.returncode == status, output
  # Every node stopped by itself within the stop notice (one killed at its
  # end, or failing as it stops, is named in the last line instead); the
  # launcher exits soon after. The learner's output, should it not.
  learner_log = os.path.join(run_dir, 'logs', 'nodes', 'learner', '0')
  assert time.time() - start < supervision.STOP_NOTICE_S
  assert f'stopped by {signame}; every node checkpointed' in (
      output.splitlines()[-1]), output + _read(learner_log)[-4000:]
  # The learner's process counted down the run's notice, not Launchpad's 10 s.
  assert (f'Waiting for workers to stop for {supervision.STOP_NOTICE_S}s'
          in _read(learner_log))
  assert 'Traceback' not in output, output
  time.sleep(1.0)
  assert processes.processes_with(token) == []
  # The last checkpoints of the learner and of Reverb's tables are a pair.
  marker = os.path.join(checkpoints, 'learner_stopped.json')
  # The learner stopped within seconds (dropping its replay streams took
  # 20-30 s after a long run while tf.data autotuned them).
  assert os.path.getmtime(marker) - start < 10
  final = json.loads(_read(marker))
  replay_saved = json.loads(_read(os.path.join(checkpoints,
                                                'replay_saved.json')))
  saved_step = replay_saved['learner_step']
  assert final['step'] == saved_step > 0
  if to_group:
    # The interrupted run's episodes: closed at the stop, whole, loadable.
    assert '[record] actor/0: ' in output, output
    (recorded,) = environments.dataset_paths(os.path.join(run_dir,
                                                          'episodes'))
    dataset = environments.load_dataset(recorded)
    assert dataset.num_episodes >= 1
    assert all(episode['steps']['action'].shape == (1001, 1)
               for episode in dataset.episodes())
    # Rerunning resumes exactly there.
    restart = _launch(run_dir, cartpole_dataset, uuid.uuid4().hex,
                      f'--max_learner_steps={saved_step + 8}',
                      f'--eval_every_steps={saved_step + 8}')
    output, _ = restart.communicate(timeout=600)
    assert restart.returncode == 0, output
    assert f'[learner] resumed at step {saved_step}' in output, output


@pytest.mark.parametrize('dataset,run_dir,named', [
    ('missing', 'run', 'missing'),  # No dataset there.
    ('data', 'file', 'a file has that name'),  # --run_dir names a file.
    ('data', 'file/run', 'cannot be created'),  # Under a file: not writable.
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


@pytest.mark.parametrize('flag,named', [
    ('--eval_temperature=0', 'eval_temperature=0.0 is invalid'),
    ('--eval_policy=greedy', "eval_policy='greedy' is invalid"),
])
def test_cli_reports_a_bad_agent_flag_in_one_line_with_status_2(
    tmp_path, cartpole_dataset, flag, named):
  process = subprocess.run(
      [sys.executable, '-m', 'launchers.run', '--mode=offline',
       f'--task={TASK}', f'--dataset={cartpole_dataset}',
       f'--run_dir={tmp_path}/run', flag],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert process.returncode == 2 and not (tmp_path / 'run').exists()
  lines = process.stderr.strip().splitlines()
  assert len(lines) == 1 and named in lines[0], process.stderr
