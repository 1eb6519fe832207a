"""PACBuilder inside Acme's own layouts, on a real MuJoCo task.

This is what "drop PAC into an Acme experiment" means: the builder runs under
`acme.jax.layouts.local_layout.LocalLayout` with the real Reverb server, and
the learner trains. `DistributedLayout` under Launchpad's `local_mp` is the
README's example program, run by tests/test_docs.py.
"""

from acme import environment_loop
from acme import specs
from acme.jax.layouts import local_layout
from acme.utils import loggers
import numpy as np
import reverb

import environments
from agents.pac import builder as builder_lib
from agents.pac import config as config_lib
from agents.pac import networks as networks_lib
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


def test_local_layout_trains_on_cartpole(tmp_path):
  """Acme's LocalLayout: the actor fills `online`, the learner steps."""
  config = _config()
  environment = environments.make_environment(TASK, seed=0)
  spec = specs.make_environment_spec(environment)
  builder = builder_lib.PACBuilder(config)
  networks = networks_lib.make_networks(spec, config)
  agent = local_layout.LocalLayout(
      seed=0, environment_spec=spec, builder=builder, networks=networks,
      policy_network=builder.make_policy(networks),
      # The layout must see a few more observations than the table's minimum
      # size: the n-step adder writes its first items late, and a learner step
      # on an under-filled table would block the single-threaded loop.
      workdir=str(tmp_path),
      min_replay_size=config.min_replay_size + config.n_step,
      samples_per_insert=config.samples_per_insert,
      batch_size=config.batch_size, checkpoint=False)
  loop = environment_loop.EnvironmentLoop(
      environment, agent, logger=loggers.NoOpLogger())
  loop.run(num_steps=250)
  learner_steps = agent._learner.num_steps  # pylint: disable=protected-access
  # One learner step per env step once `min_replay_size` transitions exist.
  assert learner_steps >= 200, learner_steps
