"""Tests for the fast record decoder: same bits as EnvLogger's codec, or None."""

from envlogger.converters import codec
import numpy as np
import pytest
import tree

from environments import dataset
from environments import records


def _generic(data, i):
  """Episode i decoded by EnvLogger's codec (the reader's fallback)."""
  info = data._reader.episode(i, True)  # pylint: disable=protected-access
  serialized = [data._serialized(info.start + j, i)  # pylint: disable=protected-access
                for j in range(info.num_steps)]
  return serialized, data._decode_generic(serialized, info.start, i)  # pylint: disable=protected-access


@pytest.mark.parametrize('fixture', ['short_dataset', 'full_dataset'])
def test_fast_decoder_matches_the_generic_one_bit_for_bit(fixture, request):
  data = dataset.load_dataset(request.getfixturevalue(fixture)['path'])
  for i in range(data.num_episodes):
    serialized, generic = _generic(data, i)
    fast = records.decode_episode(serialized, data.spec,
                                  data.metadata['has_log_prob'])
    assert fast is not None
    assert fast['step_types'] == generic['step_types']
    for name in ('action', 'reward', 'discount', 'log_prob'):
      if generic[name] is None:
        assert fast[name] is None
        continue
      assert fast[name].dtype == generic[name].dtype
      np.testing.assert_array_equal(fast[name], generic[name])
    tree.map_structure(np.testing.assert_array_equal, fast['observation'],
                       generic['observation'])


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
  serialized, _ = _generic(data, 0)
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
