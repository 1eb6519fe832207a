"""Offline/online tables and the iterator that mixes them, on a real Reverb server."""

import time

from acme import specs
from acme import types as acme_types
import numpy as np
import pytest
import reverb
import tree

from agents.pac import config as config_lib
from agents.pac import replay

SPEC = specs.EnvironmentSpec(
    observations={'position': specs.Array((3,), np.float32)},
    actions=specs.BoundedArray((2,), np.float32, -1., 1.),
    rewards=specs.Array((), np.float32),
    discounts=specs.BoundedArray((), np.float32, 0., 1.))
NUM_OFFLINE = 21  # Not a multiple of the block size: the last block is padded.
BLOCK = 4


def _offline_transitions(count: int) -> acme_types.Transition:
  """Row i is recognisable in every field: reward i, position [i, 2i, 3i]..."""
  i = np.arange(count, dtype=np.float32)
  return acme_types.Transition(
      observation={'position': np.stack([i, 2 * i, 3 * i], axis=1)},
      action=np.stack([i / 100, -i / 100], axis=1),
      reward=i, discount=np.full(count, 0.5, np.float32),
      next_observation={'position': np.stack([i + 1, i + 2, i + 3], axis=1)},
      extras={'log_prob': -i})  # Extras are not stored.


def _assert_rows_intact(batch: acme_types.Transition) -> np.ndarray:
  """Every field of every offline row agrees with its reward; returns rows."""
  i = batch.reward
  np.testing.assert_array_equal(batch.observation['position'],
                                np.stack([i, 2 * i, 3 * i], axis=1))
  np.testing.assert_array_equal(batch.action,
                                np.stack([i / 100, -i / 100], axis=1))
  np.testing.assert_array_equal(batch.discount, np.full(len(i), 0.5))
  np.testing.assert_array_equal(batch.next_observation['position'],
                                np.stack([i + 1, i + 2, i + 3], axis=1))
  return i


def _online_transition() -> acme_types.Transition:
  obs = {'position': np.zeros(3, np.float32)}
  return acme_types.Transition(obs, np.zeros(2, np.float32), np.float32(-1.),
                               np.float32(1.), obs, ())


def _insert_online(client: reverb.Client, count: int, flush_timeout=None):
  with client.trajectory_writer(num_keep_alive_refs=1) as writer:
    for _ in range(count):
      writer.append(_online_transition())
      writer.create_item(replay.ONLINE_TABLE, 1.0, acme_types.Transition(
          *[_last(column) for column in writer.history]))
      writer.flush(timeout_ms=flush_timeout)


def _last(column):
  if isinstance(column, dict):
    return {k: v[-1] for k, v in column.items()}
  if isinstance(column, tuple) and not column:
    return ()
  return column[-1]


@pytest.fixture(name='server')
def _server():
  """Offline rows carry rewards 0..20, online rows reward -1."""
  server = reverb.Server([
      replay.make_offline_table(SPEC, max_transitions=NUM_OFFLINE,
                                min_transitions=1, block_size=BLOCK),
      replay.make_online_table(SPEC, max_size=1000, min_size=1,
                               samples_per_insert=None, error_buffer=1.)])
  client = reverb.Client(f'localhost:{server.port}')
  blocks = replay.insert_offline(
      client, _offline_transitions(NUM_OFFLINE),
      replay.TransitionPacker.for_spec(SPEC), BLOCK, np.random.default_rng(0))
  assert blocks == 6  # ceil(21 / 4).
  _insert_online(client, 50)
  yield server
  server.stop()


def _iterator(server, batch_size, fraction_at, block_size=BLOCK):
  return replay.MixedReplayIterator(f'localhost:{server.port}',
                                    batch_size=batch_size,
                                    online_fraction_at=fraction_at,
                                    block_size=block_size)


def test_each_batch_takes_exactly_the_configured_rows_from_each_table(server):
  iterator = _iterator(server, 16, lambda step: 0.25)
  for _ in range(3):
    batch = next(iterator)
    assert isinstance(batch, acme_types.Transition)
    assert batch.observation['position'].shape == (16, 3)
    assert batch.reward.dtype == np.float32
    np.testing.assert_array_equal(batch.reward[12:], [-1.] * 4)
    offline = tree.map_structure(lambda x: x[:12], batch)
    assert np.all(_assert_rows_intact(offline) >= 0)


def test_close_after_a_long_read_returns_at_once():
  # With tf.data's autotuning (the iterator's streams before), dropping a
  # stream could wait for the tuning thread's next wake-up, later the longer
  # the stream ran: 4 s after 6 s of reading in some runs of this test (not
  # all: it depends on where the thread is in its sleep), 20-30 s in every
  # learner stopped after a long run, past the stop notice.
  server = reverb.Server([
      replay.make_offline_table(SPEC, max_transitions=400, min_transitions=1,
                                block_size=8),
      replay.make_online_table(SPEC, max_size=10, min_size=1,
                               samples_per_insert=None, error_buffer=1.)])
  replay.insert_offline(
      reverb.Client(f'localhost:{server.port}'), _offline_transitions(400),
      replay.TransitionPacker.for_spec(SPEC), 8, np.random.default_rng(0))
  iterator = _iterator(server, 64, lambda step: 0., block_size=8)
  start = time.time()
  while time.time() - start < 6.0:
    next(iterator)
  start = time.time()
  iterator.close()
  assert time.time() - start < 1.0
  server.stop()


def test_offline_blocks_hold_every_transition_exactly(server):
  """Packing, shuffling into blocks and unpacking lose and alter nothing."""
  iterator = _iterator(server, 8, lambda step: 0.0)
  seen = set()
  for _ in range(60):
    seen.update(_assert_rows_intact(next(iterator)).astype(int).tolist())
  assert seen == set(range(NUM_OFFLINE))


def test_insert_offline_shuffles_before_blocking():
  """Blocks are random subsets, not runs of consecutive transitions."""
  server = reverb.Server([replay.make_offline_table(
      SPEC, max_transitions=400, min_transitions=1, block_size=8)])
  client = reverb.Client(f'localhost:{server.port}')
  try:
    replay.insert_offline(client, _offline_transitions(400),
                          replay.TransitionPacker.for_spec(SPEC), 8,
                          np.random.default_rng(1))
    dataset = reverb.TrajectoryDataset.from_table_signature(
        f'localhost:{server.port}', replay.OFFLINE_TABLE,
        max_in_flight_samples_per_worker=4)
    (packed,) = next(iter(dataset)).data
    rewards = packed.numpy()[:, 5]  # position 3, action 2, then reward.
    assert len(set(rewards)) == 8
    assert np.ptp(rewards) > 50  # Consecutive rows would span 7.
  finally:
    server.stop()


def test_split_follows_the_schedule_from_the_learners_step(server):
  config = config_lib.PACConfig(online_fraction=0.5,
                                online_fraction_schedule_steps=100)
  iterator = _iterator(server, 8, config.online_fraction_at)
  assert [iterator.split(s) for s in (0, 50, 100, 400)] == [
      (8, 0), (6, 2), (4, 4), (4, 4)]
  # The step is read once, then counted: batch j is for step start + j.
  iterator.step_source = lambda: 49
  expected = [iterator.split(s)[1] for s in range(49, 49 + 60)]
  online = [int((next(iterator).reward < 0).sum()) for _ in range(60)]
  assert online == expected
  assert online[0] == 2 and online[-1] == 4


def test_block_size_one_is_one_transition_per_item():
  server = reverb.Server([
      replay.make_offline_table(SPEC, max_transitions=NUM_OFFLINE,
                                min_transitions=1, block_size=1),
      replay.make_online_table(SPEC, max_size=10, min_size=1,
                               samples_per_insert=None, error_buffer=1.)])
  client = reverb.Client(f'localhost:{server.port}')
  try:
    assert replay.insert_offline(
        client, _offline_transitions(NUM_OFFLINE),
        replay.TransitionPacker.for_spec(SPEC), 1,
        np.random.default_rng(0)) == NUM_OFFLINE
    assert client.server_info()[replay.OFFLINE_TABLE].current_size == (
        NUM_OFFLINE)
    batch = next(_iterator(server, 5, lambda step: 0.0, block_size=1))
    _assert_rows_intact(batch)
  finally:
    server.stop()


def test_packer_round_trip_with_several_dtypes():
  spec = specs.EnvironmentSpec(
      observations={'pixels': specs.Array((4, 4, 3), np.uint8),
                    'task_id': specs.Array((), np.int32),
                    'velocity': specs.Array((2,), np.float32)},
      actions=specs.BoundedArray((3,), np.float32, -1., 1.),
      rewards=specs.Array((), np.float32),
      discounts=specs.BoundedArray((), np.float32, 0., 1.))
  packer = replay.TransitionPacker.for_spec(spec)
  rng = np.random.default_rng(0)

  def observation():
    return {'pixels': rng.integers(0, 255, (6, 4, 4, 3), np.uint8),
            'task_id': rng.integers(0, 9, (6,), np.int32),
            'velocity': rng.normal(size=(6, 2)).astype(np.float32)}

  transitions = acme_types.Transition(
      observation(), rng.normal(size=(6, 3)).astype(np.float32),
      rng.normal(size=6).astype(np.float32),
      rng.uniform(size=6).astype(np.float32), observation(), ())
  groups = packer.pack(transitions)
  assert [g.dtype.name for g in groups] == ['float32', 'int32', 'uint8']
  assert [g.shape for g in groups] == [(6, 2 + 3 + 1 + 1 + 2), (6, 2),
                                       (6, 96)]
  tree.map_structure(np.testing.assert_array_equal,
                     packer.unpack(groups), transitions)
  # Unpacking keeps leading dims: [blocks, rows] stays [blocks, rows, ...].
  blocked = packer.unpack([g.reshape(2, 3, -1) for g in groups])
  assert blocked.observation['pixels'].shape == (2, 3, 4, 4, 3)
  assert [s.shape for s in packer.signature(5)] == [(5, 9), (5, 2), (5, 96)]


def test_online_limiter_holds_the_learner_but_never_blocks_inserts():
  """100 inserts go through with no sampling; sampling is held to the ratio."""
  server = reverb.Server([replay.make_online_table(
      SPEC, max_size=1000, min_size=10, samples_per_insert=2.0,
      error_buffer=1.0)])
  client = reverb.Client(f'localhost:{server.port}')
  try:
    _insert_online(client, 100, flush_timeout=5000)  # Raises if blocked.
    info = client.server_info()[replay.ONLINE_TABLE]
    assert info.current_size == 100
    # min_diff = 2 * 10 - 1 = 19: sampling stops once
    # samples > inserts * 2 - 19 = 181; the dataset then times out and ends.
    dataset = reverb.TrajectoryDataset.from_table_signature(
        f'localhost:{server.port}', replay.ONLINE_TABLE,
        max_in_flight_samples_per_worker=10, rate_limiter_timeout_ms=1000)
    assert sum(1 for _ in dataset) == 181
  finally:
    server.stop()


@pytest.mark.parametrize('rows, weights, steps, expected', [
    # Equal thirds of 256: 85 each and one more, to each share in turn.
    (256, [1 / 3] * 3, 3, [(86, 85, 85), (85, 86, 85), (85, 85, 86)]),
    # 7.5 / 2.5: the tie of remainders alternates.
    (10, [0.75, 0.25], 2, [(8, 2), (7, 3)]),
    # 0.6 * 7 = 4.2, 0.4 * 7 = 2.8: the larger remainder wins every time.
    (7, [0.6, 0.4], 2, [(4, 3), (4, 3)]),
    (16, [1.0], 1, [(16,)]),
    (0, [0.5, 0.5], 1, [(0, 0)]),
])
def test_apportion_by_hand(rows, weights, steps, expected):
  assert [replay.apportion(rows, weights, s) for s in range(steps)] == expected


def test_apportion_is_floor_or_ceil_and_sums_to_the_rows():
  rng = np.random.default_rng(0)
  for _ in range(200):
    weights = rng.dirichlet(np.ones(rng.integers(1, 6)))
    rows = int(rng.integers(0, 300))
    step = int(rng.integers(0, 1000))
    counts = replay.apportion(rows, list(weights), step)
    assert sum(counts) == rows
    for count, weight in zip(counts, weights):
      assert np.floor(weight * rows) <= count <= np.ceil(weight * rows)


def test_per_task_tables_give_each_batch_exactly_its_shares():
  """Two offline tables (rewards 0..20 and 100..120): every batch takes
  `apportion`'s rows of each, in table order, then the online rows."""
  tables = {replay.offline_table('a'): 0, replay.offline_table('b'): 100}
  server = reverb.Server([replay.make_offline_table(
      SPEC, max_transitions=NUM_OFFLINE, min_transitions=1,
      block_size=BLOCK, name=name) for name in tables] + [
          replay.make_online_table(SPEC, max_size=100, min_size=1,
                                   samples_per_insert=None, error_buffer=1.)])
  client = reverb.Client(f'localhost:{server.port}')
  try:
    for name, offset in tables.items():
      transitions = _offline_transitions(NUM_OFFLINE)
      transitions = transitions._replace(reward=transitions.reward + offset)
      replay.insert_offline(client, transitions,
                            replay.TransitionPacker.for_spec(SPEC), BLOCK,
                            np.random.default_rng(0), table=name)
    _insert_online(client, 10)
    weights = {replay.offline_table('a'): 1.0, replay.offline_table('b'): 1.0}
    iterator = replay.MixedReplayIterator(
        f'localhost:{server.port}', batch_size=17,
        online_fraction_at=lambda step: 2 / 17, block_size=BLOCK,
        offline_weights=weights)
    for step in range(6):
      a, b = (8, 7) if step % 2 == 0 else (7, 8)  # 15 offline rows, halved
      assert iterator.offline_split(step) == dict(zip(weights, (a, b)))
      reward = next(iterator).reward
      assert np.all((reward[:a] >= 0) & (reward[:a] < 100))
      assert np.all(reward[a:a + b] >= 100)
      np.testing.assert_array_equal(reward[a + b:], [-1.] * 2)
    with pytest.raises(ValueError, match='positive'):
      replay.MixedReplayIterator('unused', 8, lambda s: 0., BLOCK,
                                 offline_weights={'offline/a': 0.})
  finally:
    server.stop()
