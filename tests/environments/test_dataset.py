"""Tests for dataset reading: round trip, RLDS layout, n-step, every error."""

import json
import os
import shutil

from acme import specs
from acme import types
import numpy as np
import pytest
import tree

from environments import dataset
from environments import errors
from environments import nstep
from environments import suite
from environments import writer
from tests.environments import helpers


def _copy(source, tmp_path):
  target = str(tmp_path / 'copy')
  shutil.copytree(source, target)
  return target


def _edit_metadata(path, edit):
  metadata_path = os.path.join(path, 'dataset.json')
  with open(metadata_path) as f:
    metadata = json.load(f)
  edit(metadata)
  with open(metadata_path, 'w') as f:
    json.dump(metadata, f)


def _records_by_episode(records):
  episodes = []
  for record in records:
    if record.timestep.first():
      episodes.append([])
    episodes[-1].append(record)
  return episodes


# Round trip.


@pytest.mark.parametrize('fixture', ['short_dataset', 'full_dataset'])
def test_episodes_read_back_exactly_as_written(fixture, request):
  written = request.getfixturevalue(fixture)
  raw_episodes = _records_by_episode(written['records'])
  with dataset.load_dataset(written['path']) as data:
    episodes = list(data.episodes())
  assert len(episodes) == len(raw_episodes) == data.num_episodes
  for i, (episode, raw) in enumerate(zip(episodes, raw_episodes)):
    steps = episode['steps']
    length = len(raw) - 1
    assert episode['episode_id'] == i and episode['length'] == length
    for name, values in steps['observation'].items():
      assert values.dtype == np.float32
      np.testing.assert_array_equal(
          values, np.stack([r.timestep.observation[name] for r in raw]))
    # RLDS step t holds a_t and what ensued, i.e. EnvLogger record t + 1.
    np.testing.assert_array_equal(steps['action'][:-1],
                                  np.stack([r.action for r in raw[1:]]))
    np.testing.assert_array_equal(steps['reward'][:-1],
                                  [r.timestep.reward for r in raw[1:]])
    np.testing.assert_array_equal(steps['discount'][:-1],
                                  [r.timestep.discount for r in raw[1:]])
    np.testing.assert_array_equal(steps['log_prob'][:-1],
                                  [r.custom_data['log_prob'] for r in raw[1:]])
    for field in ('action', 'reward', 'discount', 'log_prob'):
      assert steps[field].dtype == np.float32
      assert len(steps[field]) == length + 1
      np.testing.assert_array_equal(steps[field][-1], 0.0)  # RLDS: undefined.
    np.testing.assert_array_equal(steps['is_first'],
                                  np.arange(length + 1) == 0)
    np.testing.assert_array_equal(steps['is_last'],
                                  np.arange(length + 1) == length)
    assert episode['return'] == pytest.approx(
        float(np.sum(steps['reward'], dtype=np.float64)))


def test_is_terminal_only_on_true_terminations(short_dataset, full_dataset):
  for episode in dataset.load_dataset(short_dataset['path']).episodes():
    flags = episode['steps']['is_terminal']
    assert flags[-1] and not flags[:-1].any()  # Ended with discount 0.
    assert episode['steps']['discount'][-2] == 0.0
  for episode in dataset.load_dataset(full_dataset['path']).episodes():
    assert not episode['steps']['is_terminal'].any()  # Time limit: discount 1.
    assert episode['steps']['discount'][-2] == 1.0


def test_metadata_and_spec(short_dataset):
  data = dataset.load_dataset(short_dataset['path'])
  metadata = data.metadata
  assert metadata['task'] == 'cartpole_swingup'
  assert metadata['policy'] == 'mixed' and metadata['seed'] == 7
  assert [e['policy'] for e in metadata['episodes']] == ['expert', 'medium',
                                                         'random']
  assert [e['length'] for e in metadata['episodes']] == [5, 9, 3]
  assert set(metadata['policies']) == {'expert', 'medium', 'random'}
  assert metadata['num_transitions'] == 17 and metadata['has_log_prob']
  assert metadata['format_version'] == 1
  assert metadata['returns']['max'] == max(
      e['return'] for e in metadata['episodes'])
  assert metadata['spec']['action'] == {
      'shape': [1], 'dtype': 'float32', 'name': 'action', 'minimum': [-1.0],
      'maximum': [1.0]}
  env_spec = suite.environment_spec(suite.make_environment('cartpole_swingup',
                                                           0))
  assert data.spec == env_spec
  data.check_spec(env_spec)  # Does not raise.


def test_same_seed_same_data(short_dataset, tmp_path):
  path = str(tmp_path / 'again')
  with helpers.short_episodes([5, 9, 3], terminal=True):
    writer.write_dataset(path, 'cartpole_swingup', 'mixed', 3, seed=7)
  again = dataset.load_dataset(path).transitions()
  first = dataset.load_dataset(short_dataset['path']).transitions()
  tree.map_structure(np.testing.assert_array_equal, again, first)


# N-step transitions.


def _tiny_episode():
  return dict(
      observations={'x': np.arange(5, dtype=np.float32)[:, None]},  # s0..s4
      actions=np.arange(4, dtype=np.float32)[:, None] / 10,
      rewards=np.array([1, 2, 3, 4], np.float32),
      discounts=np.array([1, 0.5, 1, 0], np.float32),
      extras={})


def test_nstep_against_hand_computed_values():
  got = nstep.episode_transitions(**_tiny_episode(), n_step=2, discount=0.9)
  # Pairs (start, end): (0,1) (0,2) (1,3) (2,4) (3,4), in the adder's order.
  np.testing.assert_array_equal(got.observation['x'][:, 0], [0, 0, 1, 2, 3])
  np.testing.assert_array_equal(got.next_observation['x'][:, 0],
                                [1, 2, 3, 4, 4])
  np.testing.assert_array_equal(got.action[:, 0],
                                np.float32([0, 0, .1, .2, .3]))
  # r0 | r0 + g d0 r1 | r1 + g d1 r2 | r2 + g d2 r3 | r3
  np.testing.assert_allclose(got.reward, [1, 2.8, 3.35, 6.6, 4], rtol=1e-6)
  # d0 | g d0 d1 | g d1 d2 | g d2 d3 | d3
  np.testing.assert_allclose(got.discount, [1, 0.45, 0.45, 0, 0], rtol=1e-6)

  got = nstep.episode_transitions(**_tiny_episode(), n_step=5, discount=0.9)
  np.testing.assert_array_equal(got.observation['x'][:, 0],
                                [0, 0, 0, 0, 1, 2, 3])
  np.testing.assert_array_equal(got.next_observation['x'][:, 0],
                                [1, 2, 3, 4, 4, 4, 4])
  np.testing.assert_allclose(
      got.reward, [1, 2.8, 4.015, 5.473, 4.97, 6.6, 4], rtol=1e-6)
  np.testing.assert_allclose(got.discount, [1, 0.45, 0.405, 0, 0, 0, 0],
                             rtol=1e-6)

  got = nstep.episode_transitions(**_tiny_episode(), n_step=1, discount=0.9)
  np.testing.assert_array_equal(got.reward, [1, 2, 3, 4])
  np.testing.assert_array_equal(got.discount, [1, 0.5, 1, 0])
  np.testing.assert_array_equal(got.next_observation['x'][:, 0], [1, 2, 3, 4])


def test_nstep_counts():
  for length in (1, 2, 5, 12):
    for n in (1, 3, 5):
      starts, ends = nstep.index_pairs(length, n)
      assert len(starts) == length + min(n, length) - 1
      assert ((ends - starts >= 1) & (ends - starts <= n)).all()
      assert ends.max() == length


def _acme_transitions(episodes, n_step, discount):
  """Feeds RLDS episodes through Acme's adder and a real Reverb server."""
  # pylint: disable=g-import-not-at-top
  import dm_env
  import reverb
  from acme.adders.reverb import transition as acme_transition
  # pylint: enable=g-import-not-at-top
  obs_spec = {name: specs.Array(v.shape[1:], v.dtype)
              for name, v in episodes[0]['steps']['observation'].items()}
  env_spec = specs.EnvironmentSpec(
      obs_spec, specs.BoundedArray((1,), np.float32, -1.0, 1.0),
      specs.Array((), np.float32), specs.BoundedArray((), np.float32, 0., 1.))
  signature = acme_transition.NStepTransitionAdder.signature(
      env_spec, {'log_prob': specs.Array((), np.float32)})
  server = reverb.Server([reverb.Table.queue('priority_table', 100000,
                                             signature=signature)])
  client = reverb.Client(f'localhost:{server.port}')
  try:
    adder = acme_transition.NStepTransitionAdder(client, n_step, discount)
    for episode in episodes:
      steps = episode['steps']
      observation = lambda t, s=steps: tree.map_structure(lambda x: x[t],
                                                          s['observation'])
      adder.add_first(dm_env.restart(observation(0)))
      length = len(steps['reward']) - 1
      for t in range(length):
        step_type = (dm_env.StepType.LAST if t == length - 1
                     else dm_env.StepType.MID)
        adder.add(steps['action'][t],
                  dm_env.TimeStep(step_type, steps['reward'][t],
                                  steps['discount'][t], observation(t + 1)),
                  extras={'log_prob': steps['log_prob'][t]})
    del adder  # Flushes and closes its writer, so the server stops at once.
    count = client.server_info()['priority_table'].current_size
    # A queue table hands items back first in, first out.
    samples = [sample.data for sample in client.sample(
        'priority_table', num_samples=count, emit_timesteps=False,
        unpack_as_table_signature=True)]
  finally:
    server.stop()
  return tree.map_structure(lambda *xs: np.stack(xs), *samples)


def test_transitions_match_acme_nstep_adder(short_dataset):
  data = dataset.load_dataset(short_dataset['path'])
  episodes = list(data.episodes())
  for n_step in (1, 3, 10):
    ours = data.transitions(n_step=n_step, discount=0.97)
    acme = _acme_transitions(episodes, n_step, 0.97)
    assert isinstance(ours, types.Transition)
    assert len(ours.reward) == sum(e['length'] + min(n_step, e['length']) - 1
                                   for e in episodes)
    # Same transitions, same order, same float32 bits.
    tree.map_structure(np.testing.assert_array_equal, ours, acme)


def test_transitions_shapes_and_batches(full_dataset):
  data = dataset.load_dataset(full_dataset['path'])
  everything = data.transitions(n_step=3, discount=0.99)
  count = 2 * (1000 + 3 - 1)
  assert everything.observation['position'].shape == (count, 3)
  assert everything.next_observation['velocity'].shape == (count, 2)
  assert everything.action.shape == (count, 1)
  assert everything.reward.shape == everything.discount.shape == (count,)
  assert everything.extras['log_prob'].shape == (count,)
  for leaf in tree.flatten(everything):
    assert leaf.dtype == np.float32

  batches = list(data.iter_transitions(700, n_step=3, discount=0.99))
  assert [len(b.reward) for b in batches] == [700, 700, 604]
  joined = tree.map_structure(lambda *xs: np.concatenate(xs), *batches)
  tree.map_structure(np.testing.assert_array_equal, joined, everything)

  shuffled = list(data.iter_transitions(700, n_step=3, discount=0.99,
                                        shuffle=True, seed=1))
  again = list(data.iter_transitions(700, n_step=3, discount=0.99,
                                     shuffle=True, seed=1))
  tree.map_structure(np.testing.assert_array_equal, shuffled, again)
  rewards = np.concatenate([b.reward for b in shuffled])
  assert not np.array_equal(rewards, everything.reward)
  np.testing.assert_array_equal(np.sort(rewards), np.sort(everything.reward))


def test_bad_transition_arguments(short_dataset):
  data = dataset.load_dataset(short_dataset['path'])
  with pytest.raises(errors.DatasetError, match='n_step'):
    data.transitions(n_step=0)
  with pytest.raises(errors.DatasetError, match='discount'):
    data.transitions(discount=1.5)
  with pytest.raises(errors.DatasetError, match='batch_size'):
    next(data.iter_transitions(0))


# Errors.


def test_missing_path(tmp_path):
  path = str(tmp_path / 'nope')
  with pytest.raises(errors.DatasetNotFoundError) as info:
    dataset.load_dataset(path)
  assert path in str(info.value) and 'environments.generate' in str(info.value)


def test_not_a_dataset(tmp_path, short_dataset):
  with pytest.raises(errors.NotADatasetError, match='dataset.json'):
    dataset.load_dataset(str(tmp_path))  # An empty directory.
  a_file = tmp_path / 'file'
  a_file.write_text('x')
  with pytest.raises(errors.NotADatasetError, match='not a directory'):
    dataset.load_dataset(str(a_file))
  unfinished = str(tmp_path / '.data.incomplete-abc123')
  shutil.copytree(short_dataset['path'], unfinished)  # Even if complete.
  with pytest.raises(errors.NotADatasetError, match='unfinished'):
    dataset.load_dataset(unfinished)


# (file, damage): truncation and flipped bytes in each EnvLogger file.
_DAMAGE = [('steps.riegeli', 'truncate'), ('steps.riegeli', 'flip'),
           ('step_offsets.riegeli', 'truncate'),
           ('episode_index.riegeli', 'truncate'),
           ('episode_metadata.riegeli', 'flip'),
           ('metadata.riegeli', 'truncate')]


@pytest.mark.parametrize('name,damage', _DAMAGE)
def test_damaged_riegeli_files(name, damage, short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  target = helpers.riegeli_file(path, name)
  content = bytearray(open(target, 'rb').read())
  if damage == 'truncate':
    content = content[:len(content) // 2]
  else:
    middle = len(content) // 2
    content[middle:middle + 8] = bytes(b ^ 0xFF for b in content[middle:
                                                                 middle + 8])
  with open(target, 'wb') as f:
    f.write(bytes(content))
  with pytest.raises(errors.CorruptDatasetError) as info:
    dataset.load_dataset(path).transitions()
  assert os.path.join(path, 'steps') in str(info.value)


def test_invalid_metadata_json(short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  with open(os.path.join(path, 'dataset.json'), 'r+') as f:
    f.truncate(100)
  with pytest.raises(errors.CorruptDatasetError, match='not valid JSON'):
    dataset.load_dataset(path)


def test_metadata_missing_fields(short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  _edit_metadata(path, lambda m: m['spec'].pop('reward'))
  with pytest.raises(errors.MissingFieldError, match="'reward'"):
    dataset.load_dataset(path)
  _edit_metadata(path, lambda m: m.pop('episodes'))
  with pytest.raises(errors.MissingFieldError, match="'episodes'"):
    dataset.load_dataset(path)


def test_steps_missing_a_declared_field(short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  _edit_metadata(path, lambda m: m['spec']['observation'].update(
      extra={'shape': [2], 'dtype': 'float32', 'name': 'extra'}))
  with pytest.raises(errors.MissingFieldError, match="observation 'extra'"):
    dataset.load_dataset(path).transitions()


def test_steps_inconsistent_with_declared_spec(short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  _edit_metadata(path, lambda m: m['spec']['observation']['position'].update(
      shape=[4]))
  with pytest.raises(errors.CorruptDatasetError) as info:
    list(dataset.load_dataset(path).episodes())
  assert 'observation/position' in str(info.value)
  assert '(4,)' in str(info.value) and '(3,)' in str(info.value)


def test_edited_return_is_detected(short_dataset, tmp_path):
  path = _copy(short_dataset['path'], tmp_path)
  _edit_metadata(path, lambda m: m['episodes'][1].update({'return': 1.0}))
  with pytest.raises(errors.CorruptDatasetError, match='episode 1'):
    list(dataset.load_dataset(path).episodes())


def test_check_spec_names_field_shape_and_dtype(short_dataset):
  data = dataset.load_dataset(short_dataset['path'])
  good = data.spec
  bad_shape = good._replace(observations={
      **good.observations,
      'position': specs.Array((4,), np.float32, 'position')})
  with pytest.raises(errors.DatasetSpecError) as info:
    data.check_spec(bad_shape)
  message = str(info.value)
  assert 'observation/position' in message
  assert 'expected shape (3,) dtype float32' in message
  assert 'found shape (4,) dtype float32' in message

  bad_dtype = good._replace(
      actions=specs.BoundedArray((1,), np.float64, -1.0, 1.0))
  with pytest.raises(errors.DatasetSpecError) as info:
    data.check_spec(bad_dtype)
  assert 'action' in str(info.value)
  assert 'float32' in str(info.value) and 'float64' in str(info.value)

  missing = good._replace(observations={'position': good.observations[
      'position']})
  with pytest.raises(errors.DatasetSpecError, match="missing: \\['velocity'\\]"):
    data.check_spec(missing)
  two_poles = suite.environment_spec(suite.make_environment(
      'cartpole_two_poles', 0))
  with pytest.raises(errors.DatasetSpecError, match='observation/position'):
    data.check_spec(two_poles)
