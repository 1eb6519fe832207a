"""Tests for the decoded-steps cache: exact round trip, staleness, damage."""

import json
import os
import shutil

import numpy as np
import pytest
import tree

from environments import cache
from environments import dataset
from environments import errors


def _copy(source, tmp_path):
  target = str(tmp_path / 'copy')
  shutil.copytree(source, target)
  shutil.rmtree(os.path.join(target, 'cache'), ignore_errors=True)
  return target


def _assert_equal(a, b):
  tree.map_structure(np.testing.assert_array_equal, a, b)


def _reference(path, n_step=3, discount=0.97):
  """Transitions decoded from the EnvLogger files, no cache involved."""
  return dataset.load_dataset(path).transitions(n_step, discount,
                                                use_cache=False)


@pytest.mark.parametrize('fixture', ['short_dataset', 'full_dataset'])
def test_cache_round_trip_equals_the_rlds_read(fixture, request, tmp_path):
  path = _copy(request.getfixturevalue(fixture)['path'], tmp_path)
  expected = _reference(path)
  built = dataset.load_dataset(path)
  first = built.transitions(3, 0.97)
  assert built.cache_status == 'built'
  assert os.path.isfile(os.path.join(path, 'cache', 'steps.npz'))
  warm = dataset.load_dataset(path)
  again = warm.transitions(3, 0.97)
  assert warm.cache_status == 'warm'
  _assert_equal(first, expected)
  _assert_equal(again, expected)
  # The columns themselves, and every n-step setting, come back exactly.
  _assert_equal(warm.columns(), built.decode_columns())
  _assert_equal(warm.transitions(1, 0.99), _reference(path, 1, 0.99))


def test_stale_cache_is_rebuilt_when_the_dataset_changes(short_dataset,
                                                         tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  dataset.load_dataset(path).columns()
  metadata_path = os.path.join(path, 'dataset.json')
  with open(metadata_path) as f:
    metadata = json.load(f)
  metadata['note'] = 'edited'
  with open(metadata_path, 'w') as f:
    json.dump(metadata, f)
  data = dataset.load_dataset(path)
  _assert_equal(data.transitions(3, 0.97), _reference(path))
  assert data.cache_status.startswith('rebuilt (the dataset changed')
  assert dataset.load_dataset(path).columns() is not None


def test_stale_cache_after_the_steps_files_change(short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  dataset.load_dataset(path).columns()
  steps = os.path.join(path, 'steps')
  shard = [d for d in os.listdir(steps) if not d.endswith('.riegeli')][0]
  target = os.path.join(steps, shard, 'steps.riegeli')
  stat = os.stat(target)
  os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
  data = dataset.load_dataset(path)
  data.columns()
  assert data.cache_status.startswith('rebuilt (the dataset changed')


def _damage_arrays(path):
  target = os.path.join(path, 'cache', 'steps.npz')
  content = bytearray(open(target, 'rb').read())
  middle = len(content) // 2
  content[middle:middle + 4] = bytes(b ^ 0xFF for b in content[middle:
                                                               middle + 4])
  open(target, 'wb').write(bytes(content))


def _truncate_arrays(path):
  target = os.path.join(path, 'cache', 'steps.npz')
  content = open(target, 'rb').read()
  open(target, 'wb').write(content[:len(content) // 3])


def _edit_checksum(path):
  target = os.path.join(path, 'cache', 'steps.json')
  manifest = json.load(open(target))
  manifest['arrays']['reward']['sha256'] = '0' * 64
  json.dump(manifest, open(target, 'w'))


def _garble_manifest(path):
  open(os.path.join(path, 'cache', 'steps.json'), 'w').write('{not json')


def _other_version(path):
  target = os.path.join(path, 'cache', 'steps.json')
  manifest = json.load(open(target))
  manifest['format_version'] = 999
  json.dump(manifest, open(target, 'w'))


@pytest.mark.parametrize('damage,reason', [
    (_damage_arrays, 'cache'), (_truncate_arrays, 'cache unreadable'),
    (_edit_checksum, 'does not match its checksum'),
    (_garble_manifest, 'cache unreadable'),
    (_other_version, 'another version')])
def test_damaged_cache_is_never_trusted(damage, reason, full_dataset,
                                        tmp_path):
  path = _copy(full_dataset['path'], tmp_path)
  dataset.load_dataset(path).columns()
  damage(path)
  data = dataset.load_dataset(path)
  _assert_equal(data.transitions(3, 0.97), _reference(path))
  assert data.cache_status.startswith('rebuilt (') and reason in (
      data.cache_status)
  # The rebuilt cache is whole again.
  again = dataset.load_dataset(path)
  again.columns()
  assert again.cache_status == 'warm'


def test_cache_swapped_from_another_dataset_is_not_used(short_dataset,
                                                        full_dataset,
                                                        tmp_path):
  short = _copy(short_dataset['path'], tmp_path)
  other = str(tmp_path / 'other')
  shutil.copytree(full_dataset['path'], other)
  dataset.load_dataset(other).columns()
  shutil.copytree(os.path.join(other, 'cache'), os.path.join(short, 'cache'))
  data = dataset.load_dataset(short)
  _assert_equal(data.transitions(3, 0.97), _reference(short))
  assert data.cache_status.startswith('rebuilt (the dataset changed')


def test_read_only_dataset_is_cached_elsewhere(short_dataset, tmp_path,
                                               monkeypatch):
  if os.geteuid() == 0:  # Root writes through permission bits; simulate.
    real = cache._write  # pylint: disable=protected-access

    def refuse_dataset_dir(directory, columns, source):
      if directory.startswith(str(tmp_path / 'copy')):
        raise PermissionError(13, 'Permission denied')
      return real(directory, columns, source)

    monkeypatch.setattr(cache, '_write', refuse_dataset_dir)
  path = _copy(short_dataset['path'], tmp_path)
  os.chmod(path, 0o555)
  monkeypatch.setenv('PAC_CACHE_DIR', str(tmp_path / 'user_cache'))
  try:
    data = dataset.load_dataset(path)
    _assert_equal(data.transitions(3, 0.97), _reference(path))
    assert data.cache_status == 'built'
    assert not os.path.exists(os.path.join(path, 'cache'))
    warm = dataset.load_dataset(path)
    warm.columns()
    assert warm.cache_status == 'warm'
    assert os.listdir(tmp_path / 'user_cache' / 'datasets')
  finally:
    os.chmod(path, 0o755)


def test_damaged_dataset_is_reported_not_cached(short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  steps = os.path.join(path, 'steps')
  shard = [d for d in os.listdir(steps) if not d.endswith('.riegeli')][0]
  target = os.path.join(steps, shard, 'steps.riegeli')
  content = open(target, 'rb').read()
  open(target, 'wb').write(content[:len(content) // 2])
  with pytest.raises(errors.CorruptDatasetError):
    dataset.load_dataset(path).transitions()
  assert not os.path.exists(os.path.join(path, 'cache', 'steps.json'))


def test_check_columns_names_the_disagreement(short_dataset):
  data = dataset.load_dataset(short_dataset['path'])
  columns = data.decode_columns()
  assert cache.check_columns(columns, data.metadata) is None
  shorter = columns._replace(episode_lengths=columns.episode_lengths[:-1])
  assert 'episode lengths' in cache.check_columns(shorter, data.metadata)
  wrong = columns._replace(reward=columns.reward.astype(np.float64))
  assert 'reward' in cache.check_columns(wrong, data.metadata)
  no_log_prob = columns._replace(log_prob=None)
  assert 'log_prob' in cache.check_columns(no_log_prob, data.metadata)
