"""Offline/online tables and the iterator that mixes them, on a real Reverb server."""

from acme import specs
from acme import types as acme_types
import numpy as np
import pytest
import reverb

from agents.pac import config as config_lib
from agents.pac import replay

SPEC = specs.EnvironmentSpec(
    observations={'position': specs.Array((3,), np.float32)},
    actions=specs.BoundedArray((2,), np.float32, -1., 1.),
    rewards=specs.Array((), np.float32),
    discounts=specs.BoundedArray((), np.float32, 0., 1.))


def _transition(reward: float) -> acme_types.Transition:
  obs = {'position': np.zeros(3, np.float32)}
  return acme_types.Transition(obs, np.zeros(2, np.float32),
                               np.float32(reward), np.float32(1.), obs, ())


@pytest.fixture(name='server')
def _server():
  """Offline rows carry reward 0, online rows reward 1: rows show their table."""
  server = reverb.Server([
      replay.make_offline_table(SPEC, max_size=1000, min_size=1),
      replay.make_online_table(SPEC, max_size=1000, min_size=1,
                               samples_per_insert=None, error_buffer=1.)])
  client = reverb.Client(f'localhost:{server.port}')
  with client.trajectory_writer(num_keep_alive_refs=1) as writer:
    for table, reward in ((replay.OFFLINE_TABLE, 0.), (replay.ONLINE_TABLE,
                                                        1.)):
      for _ in range(50):
        writer.append(_transition(reward))
        writer.create_item(table, 1.0, acme_types.Transition(
            *[_last(column) for column in writer.history]))
      writer.flush()
  yield server
  server.stop()


def _last(column):
  if isinstance(column, dict):
    return {k: v[-1] for k, v in column.items()}
  if isinstance(column, tuple) and not column:
    return ()
  return column[-1]


def test_each_batch_takes_exactly_the_configured_rows_from_each_table(server):
  iterator = replay.MixedReplayIterator(f'localhost:{server.port}',
                                        batch_size=16,
                                        online_fraction_at=lambda step: 0.25)
  for _ in range(3):
    batch = next(iterator)
    assert isinstance(batch.data, acme_types.Transition)
    np.testing.assert_array_equal(batch.data.reward, [0.] * 12 + [1.] * 4)
    assert batch.data.observation['position'].shape == (16, 3)


def test_split_follows_the_schedule_at_the_learners_step(server):
  config = config_lib.PACConfig(online_fraction=0.5,
                                online_fraction_schedule_steps=100)
  iterator = replay.MixedReplayIterator(
      f'localhost:{server.port}', batch_size=8,
      online_fraction_at=config.online_fraction_at)
  learner_step = {'value': 0}
  iterator.step_source = lambda: learner_step['value']
  for step, expected_online in ((0, 0), (50, 2), (100, 4), (400, 4)):
    learner_step['value'] = step
    assert iterator.split(step) == (8 - expected_online, expected_online)
    rewards = next(iterator).data.reward
    assert rewards.sum() == expected_online, (step, rewards)


def test_online_limiter_holds_the_learner_but_never_blocks_inserts():
  """100 inserts go through with no sampling; sampling is held to the ratio."""
  server = reverb.Server([replay.make_online_table(
      SPEC, max_size=1000, min_size=10, samples_per_insert=2.0,
      error_buffer=1.0)])
  client = reverb.Client(f'localhost:{server.port}')
  try:
    with client.trajectory_writer(num_keep_alive_refs=1) as writer:
      for _ in range(100):
        writer.append(_transition(1.))
        writer.create_item(replay.ONLINE_TABLE, 1.0, acme_types.Transition(
            *[_last(column) for column in writer.history]))
        writer.flush(timeout_ms=5000)  # Would raise if the insert blocked.
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
