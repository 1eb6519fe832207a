"""`environments.export`: the D4RL layout holds exactly PAC's transitions."""

import os

import numpy as np
import pytest

from environments import dataset as dataset_lib
from environments import export


def _load(path):
  with np.load(path) as arrays:
    return dict(arrays)


def _check_against_transitions(path, arrays):
  """Every row is the 1-step transition PAC's loader builds, in order."""
  transitions = dataset_lib.load_dataset(path).transitions(n_step=1)
  keys = list(arrays['observation_keys'])
  assert keys == ['position', 'velocity']  # cartpole's spec order
  np.testing.assert_array_equal(arrays['observation_sizes'], [3, 2])
  for name, field in (('observations', transitions.observation),
                      ('next_observations', transitions.next_observation)):
    np.testing.assert_array_equal(
        arrays[name], np.concatenate([field[k] for k in keys], axis=1))
  np.testing.assert_array_equal(arrays['actions'], transitions.action)
  np.testing.assert_array_equal(arrays['rewards'], transitions.reward)
  # A 1-step transition's discount is the environment's: 0 only at a
  # termination.
  np.testing.assert_array_equal(arrays['terminals'], transitions.discount == 0)


def test_short_terminal_episodes(short_dataset, tmp_path):
  out = str(tmp_path / 'short.npz')
  assert export.main(['--dataset', short_dataset['path'], '--out', out]) == 0
  arrays = _load(out)
  # Episodes of 5, 9 and 3 steps, each ending in a termination.
  assert arrays['observations'].shape == (17, 5)
  assert arrays['observations'].dtype == np.float32
  assert np.flatnonzero(arrays['terminals']).tolist() == [4, 13, 16]
  assert not arrays['timeouts'].any()
  np.testing.assert_allclose(
      arrays['episode_returns'],
      [e['return'] for e in short_dataset['metadata']['episodes']])
  _check_against_transitions(short_dataset['path'], arrays)


def test_time_limited_episodes_end_in_timeouts(full_dataset, tmp_path):
  out = str(tmp_path / 'full.npz')
  assert export.main(['--dataset', full_dataset['path'], '--out', out]) == 0
  arrays = _load(out)
  assert len(arrays['rewards']) == 2000
  assert np.flatnonzero(arrays['timeouts']).tolist() == [999, 1999]
  assert not arrays['terminals'].any()
  _check_against_transitions(full_dataset['path'], arrays)
  # The next observation of an episode's last row is its final step, not
  # the next episode's first.
  assert not np.array_equal(arrays['next_observations'][999],
                            arrays['observations'][1000])


def test_bad_input_is_one_line_with_status_2_and_writes_nothing(
    full_dataset, tmp_path, capsys):
  out = tmp_path / 'exists.npz'
  out.write_bytes(b'keep')
  assert export.main(['--dataset', full_dataset['path'],
                      '--out', str(out)]) == 2
  assert 'exists' in capsys.readouterr().err
  assert out.read_bytes() == b'keep'
  assert export.main(['--dataset', str(tmp_path / 'missing'),
                      '--out', str(tmp_path / 'x.npz')]) == 2
  assert not os.path.exists(tmp_path / 'x.npz')
  assert export.main(['--dataset', full_dataset['path'], '--out', str(out),
                      '--overwrite']) == 0
  assert len(_load(str(out))['rewards']) == 2000
  with pytest.raises(SystemExit):  # argparse: unknown format, status 2
    export.main(['--format', 'hdf5', '--dataset', full_dataset['path']])
  assert not list(tmp_path.glob('.*.tmp'))
