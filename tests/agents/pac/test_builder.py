"""PACBuilder inside Acme's own layouts, on a real MuJoCo task.

This is what "drop PAC into an Acme experiment" means: the builder's parts on
the real Reverb server. Whole programs, `LocalLayout` and `DistributedLayout`
(under Launchpad's `local_mp`), are the README's examples, run by
tests/test_docs.py.
"""

from acme import specs
import numpy as np
import reverb

import environments
from agents.pac import builder as builder_lib
from agents.pac import config as config_lib
from agents.pac import replay

TASK = 'cartpole_swingup'


def _config(**overrides) -> config_lib.PACConfig:
  """Small and fast: the point is the wiring, not the learning."""
  values = dict(batch_size=16, min_replay_size=32, samples_per_insert=16.0,
                samples_per_insert_tolerance_rate=1.0, num_sampled_actions=4,
                variable_update_period=10, online_fraction=1.0)
  values.update(overrides)
  return config_lib.PACConfig(**values)


def test_replay_tables_signatures():
  """`online` holds Acme's n-step transitions; `offline` packed blocks of them."""
  environment = environments.make_environment(TASK, seed=0)
  spec = specs.make_environment_spec(environment)
  config = _config(offline_block_size=4)
  tables = builder_lib.PACBuilder(
      config, offline_table_size=10).make_replay_tables(spec)
  assert [t.name for t in tables] == [replay.OFFLINE_TABLE,
                                      replay.ONLINE_TABLE]
  server = reverb.Server(tables, port=None)
  try:
    info = reverb.Client(f'localhost:{server.port}').server_info()
    offline, online = (info[replay.OFFLINE_TABLE],
                       info[replay.ONLINE_TABLE])
    assert online.signature == replay.transition_signature(spec)
    assert online.signature.observation['position'].shape == (3,)
    assert online.signature.action.shape == (1,)
    # position 3 + velocity 2 + action 1 + reward + discount + next 3 + 2.
    (packed,) = offline.signature
    assert packed.shape == (4, 13) and packed.dtype == np.float32
    assert offline.max_size == 3  # ceil(10 transitions / 4 per block).
  finally:
    server.stop()


