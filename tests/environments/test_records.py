"""Tests for the fast record decoder: same bits as EnvLogger's codec, or None."""

import os

from envlogger.backends.python import riegeli_dataset_reader
from envlogger.converters import codec
import numpy as np
import pytest
import tree

from environments import dataset
from environments import records


def _serialized_episode(path, i):
  """The raw EnvLogger records of episode i, read with EnvLogger's reader."""
  reader = riegeli_dataset_reader.RiegeliDatasetReader()
  reader.init(os.path.join(path, 'steps'))
  info = reader.episode(i, False)
  return [reader.serialized_step(info.start + j)
          for j in range(info.num_steps)]


@pytest.mark.parametrize('fixture', ['short_dataset', 'full_dataset'])
def test_fast_decoder_matches_the_generic_one_bit_for_bit(fixture, request):
  path = request.getfixturevalue(fixture)['path']
  data = dataset.load_dataset(path)
  fast, generic = data.decode_columns(), data.decode_columns(fast=False)
  for field in ('action', 'reward', 'discount', 'log_prob'):
    assert getattr(fast, field).dtype == getattr(generic, field).dtype
  tree.map_structure(np.testing.assert_array_equal, fast, generic)
  # And the fast path really decoded them (no silent fallback).
  for i in range(data.num_episodes):
    assert records.decode_episode(_serialized_episode(path, i), data.spec,
                                  data.metadata['has_log_prob']) is not None


def _reencoded(serialized, change):
  """Records decoded by the codec, changed, and encoded again."""
  from envlogger.proto import storage_pb2  # pylint: disable=g-import-not-at-top
  out = []
  for record in serialized:
    value = codec.decode(storage_pb2.Data.FromString(record))
    out.append(codec.encode(change(value)).SerializeToString())
  return out


def test_other_structures_fall_back(short_dataset):
  data = dataset.load_dataset(short_dataset['path'])
  serialized = _serialized_episode(short_dataset['path'], 0)
  args = (data.spec, data.metadata['has_log_prob'])
  assert records.decode_episode(serialized, *args) is not None

  def float64_position(value):
    (step_type, reward, discount, obs), action, custom = value
    obs = dict(obs, position=obs['position'].astype(np.float64))
    return ((step_type, reward, discount, obs), action, custom)

  def missing_velocity(value):
    (step_type, reward, discount, obs), action, custom = value
    obs = {k: v for k, v in obs.items() if k != 'velocity'}
    return ((step_type, reward, discount, obs), action, custom)

  def longer_action(value):
    timestep, action, custom = value
    if action is not None:
      action = np.concatenate([action, action])
    return (timestep, action, custom)

  def no_log_prob(value):
    timestep, action, _ = value
    return (timestep, action, None)

  for change in (float64_position, missing_velocity, longer_action,
                 no_log_prob):
    assert records.decode_episode(_reencoded(serialized, change),
                                  *args) is None, change.__name__
  assert records.decode_episode([b'\x0a\xff\xff'] * 3, *args) is None
