"""Tests for dataset generation: the CLI, overwrite rules, and atomic writes."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from environments import dataset
from environments import errors
from environments import generate
from environments import policies
from environments import writer
from tests.environments import helpers

_REPO = str(pathlib.Path(__file__).resolve().parents[2])


def _leftovers(directory):
  return sorted(p for p in os.listdir(directory) if p.startswith('.'))


def test_cli_end_to_end_with_real_episodes(tmp_path, capsys):
  out = str(tmp_path / 'cartpole_swingup_expert')
  code = generate.main(['--task', 'cartpole_swingup', '--policy', 'expert',
                        '--episodes', '2', '--seed', '0', '--out', out])
  assert code == 0
  printed = capsys.readouterr()
  assert 'wrote 2 episodes, 2000 transitions' in printed.out
  assert 'return mean' in printed.out
  assert '2/2' in printed.err  # The tqdm progress bar.
  data = dataset.load_dataset(out)
  assert data.metadata['policy'] == 'expert' and data.num_transitions == 2000
  assert data.metadata['returns']['min'] >= 700
  assert len(data.transitions().reward) == 2000
  assert _leftovers(tmp_path) == []


def test_cli_mixed_prints_per_policy_statistics(tmp_path, capsys):
  out = str(tmp_path / 'mixed')
  with helpers.short_episodes([4] * 6, terminal=False):
    assert generate.main(['--task', 'cartpole_swingup', '--policy', 'mixed',
                          '--episodes', '6', '--out', out,
                          '--workers', '1']) == 0
  printed = capsys.readouterr().out
  for name in ('all', 'expert', 'medium', 'random'):
    assert f'{name}:' in printed
  policies_used = [e['policy'] for e in
                   dataset.load_dataset(out).metadata['episodes']]
  assert policies_used == ['expert', 'medium', 'random'] * 2


def test_cli_bad_inputs_exit_2_and_write_nothing(tmp_path, capsys):
  out = str(tmp_path / 'x')
  assert generate.main(['--task', 'cartpol_swingup', '--out', out]) == 2
  assert "Unknown task 'cartpol_swingup'" in capsys.readouterr().err
  assert generate.main(['--task', 'acrobot_swingup', '--policy', 'expert',
                        '--out', out]) == 2
  assert "No policy 'expert' for task 'acrobot_swingup'" in capsys.readouterr().err
  assert generate.main(['--task', 'acrobot_swingup', '--episodes', '0',
                        '--out', out]) == 2
  assert 'num_episodes' in capsys.readouterr().err
  with pytest.raises(errors.UnknownTaskError) as info:
    writer.write_dataset(out, 'nope', 'random', 1, seed=0)
  assert isinstance(info.value, errors.DatasetError)
  with pytest.raises(errors.UnknownPolicyError):
    writer.write_dataset(out, 'acrobot_swingup', 'medium', 1, seed=0)
  assert os.listdir(tmp_path) == []
  with pytest.raises(SystemExit):
    generate.main(['--task', 'acrobot_swingup'])  # No --out: argparse error.


def test_cli_lists_tasks(capsys):
  assert generate.main(['--list-tasks']) == 0
  lines = capsys.readouterr().out.split()
  assert 'cartpole_swingup' in lines and 'ball_in_cup_catch' in lines


def test_refuses_to_overwrite_unless_asked(tmp_path, capsys):
  out = str(tmp_path / 'data')
  with helpers.short_episodes([3] * 4, terminal=False):
    writer.write_dataset(out, 'cartpole_swingup', 'random', 2, seed=0)
    with pytest.raises(errors.DatasetExistsError, match='--overwrite'):
      writer.write_dataset(out, 'cartpole_swingup', 'random', 2, seed=1)
    assert generate.main(['--task', 'cartpole_swingup', '--out', out,
                          '--episodes', '2', '--seed', '1',
                          '--workers', '1']) == 2
    assert 'already exists' in capsys.readouterr().err
    assert dataset.load_dataset(out).metadata['seed'] == 0
    assert generate.main(['--task', 'cartpole_swingup', '--out', out,
                          '--episodes', '2', '--seed', '1', '--workers', '1',
                          '--overwrite']) == 0
  assert dataset.load_dataset(out).metadata['seed'] == 1
  assert _leftovers(tmp_path) == []


def test_overwrite_never_deletes_a_foreign_directory(tmp_path):
  precious = tmp_path / 'precious'
  precious.mkdir()
  (precious / 'notes.txt').write_text('keep me')
  with pytest.raises(errors.DatasetExistsError, match='not a dataset'):
    writer.write_dataset(str(precious), 'cartpole_swingup', 'random', 1,
                         seed=0, overwrite=True)
  assert (precious / 'notes.txt').read_text() == 'keep me'


class _Crash(Exception):
  pass


def _crash_after(monkeypatch, calls, exception):
  """Makes the random policy raise `exception` on its `calls`-th action."""
  original = policies.UniformRandomPolicy.__call__
  count = [0]

  def crashing(self, timestep, rng):
    count[0] += 1
    if count[0] == calls:
      raise exception
    return original(self, timestep, rng)

  monkeypatch.setattr(policies.UniformRandomPolicy, '__call__', crashing)


def test_crash_mid_generation_leaves_nothing(tmp_path, monkeypatch):
  out = str(tmp_path / 'data')
  _crash_after(monkeypatch, calls=7, exception=_Crash())  # In episode 2.
  with helpers.short_episodes([5] * 3, terminal=False):
    with pytest.raises(_Crash):
      writer.write_dataset(out, 'cartpole_swingup', 'random', 3, seed=0)
  assert os.listdir(tmp_path) == []  # Neither --out nor a temp directory.
  with pytest.raises(errors.DatasetNotFoundError):
    dataset.load_dataset(out)


def test_keyboard_interrupt_in_cli_leaves_nothing(tmp_path, monkeypatch,
                                                  capsys):
  out = str(tmp_path / 'data')
  _crash_after(monkeypatch, calls=7, exception=KeyboardInterrupt())
  with helpers.short_episodes([5] * 3, terminal=False):
    assert generate.main(['--task', 'cartpole_swingup', '--episodes', '3',
                          '--out', out, '--workers', '1']) == 130
  assert 'interrupted' in capsys.readouterr().err
  assert os.listdir(tmp_path) == []


def test_crash_during_overwrite_keeps_the_old_dataset(tmp_path, monkeypatch):
  out = str(tmp_path / 'data')
  with helpers.short_episodes([3] * 2, terminal=False):
    writer.write_dataset(out, 'cartpole_swingup', 'random', 2, seed=0)
  before = json.loads((tmp_path / 'data' / 'dataset.json').read_text())
  _crash_after(monkeypatch, calls=2, exception=_Crash())
  with helpers.short_episodes([3] * 2, terminal=False):
    with pytest.raises(_Crash):
      writer.write_dataset(out, 'cartpole_swingup', 'random', 2, seed=9,
                           overwrite=True)
  assert dataset.load_dataset(out).metadata == before
  assert _leftovers(tmp_path) == []


def _cli_process(out, episodes=1000):
  return subprocess.Popen(
      [sys.executable, '-m', 'environments.generate', '--task',
       'cartpole_swingup', '--episodes', str(episodes), '--out', out],
      cwd=_REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_steps_file(directory, timeout=30.0):
  """Waits until a temp dir with EnvLogger files exists; returns its path."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    for name in _leftovers(directory):
      steps = os.path.join(directory, name, 'steps')
      if os.path.isdir(steps) and os.listdir(steps):
        time.sleep(0.5)  # A few episodes in.
        return os.path.join(directory, name)
    time.sleep(0.05)
  raise AssertionError('the generator never started writing')


def test_sigkill_leaves_no_dataset_at_out(tmp_path):
  out = str(tmp_path / 'data')
  process = _cli_process(out)
  try:
    temp = _wait_for_steps_file(str(tmp_path))
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  assert not os.path.exists(out)
  with pytest.raises(errors.DatasetNotFoundError):
    dataset.load_dataset(out)
  with pytest.raises(errors.NotADatasetError, match='unfinished'):
    dataset.load_dataset(temp)  # The leftover is never accepted.


def test_sigterm_cleans_up(tmp_path):
  out = str(tmp_path / 'data')
  process = _cli_process(out)
  try:
    _wait_for_steps_file(str(tmp_path))
  finally:
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
  assert code == 128 + signal.SIGTERM
  assert os.listdir(tmp_path) == []


def _content(path):
  data = dataset.load_dataset(path)
  metadata = dict(data.metadata)
  metadata.pop('created_at')
  return metadata, data.columns(use_cache=False)


def test_parallel_generation_writes_the_same_dataset(tmp_path):
  """Episodes are seeded by index, so 1 or 2 processes give the same data."""
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  writer.write_dataset(one, 'cartpole_swingup', 'mixed', 3, seed=5, workers=1)
  seen = []
  writer.write_dataset(two, 'cartpole_swingup', 'mixed', 3, seed=5, workers=2,
                       on_episode=seen.append)
  shards = [d for d in os.listdir(os.path.join(two, 'steps'))
            if os.path.isdir(os.path.join(two, 'steps', d))]
  assert len(shards) == 2  # Really written by two processes.
  assert len(seen) == 3
  (meta_one, columns_one), (meta_two, columns_two) = _content(one), _content(
      two)
  assert meta_one == meta_two
  assert [e['policy'] for e in meta_two['episodes']] == [
      'expert', 'medium', 'random']
  for a, b in zip(columns_one.observation.values(),
                  columns_two.observation.values()):
    np.testing.assert_array_equal(a, b)
  for field in ('action', 'reward', 'discount', 'log_prob'):
    np.testing.assert_array_equal(getattr(columns_one, field),
                                  getattr(columns_two, field))
  other = str(tmp_path / 'other')
  writer.write_dataset(other, 'cartpole_swingup', 'mixed', 3, seed=6)
  assert _content(other)[0]['episodes'] != meta_one['episodes']
  assert _leftovers(tmp_path) == []


def test_bad_worker_count_is_an_input_error(tmp_path, capsys):
  out = str(tmp_path / 'x')
  assert generate.main(['--task', 'cartpole_swingup', '--out', out,
                        '--workers', '0']) == 2
  assert '--workers must be >= 1' in capsys.readouterr().err
  with pytest.raises(errors.DatasetError, match='workers'):
    writer.write_dataset(out, 'cartpole_swingup', 'random', 1, seed=0,
                         workers=0)
  assert os.listdir(tmp_path) == []
