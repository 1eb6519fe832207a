"""Nodes of the PAC program, driven directly (no Launchpad program around)."""

import concurrent.futures
import os
import shutil
import threading
import time

from acme.utils import counting
import jax
import numpy as np
import pytest
import reverb

import environments
from agents.pac import builder as builder_lib
from agents.pac import config as pac_config
from agents.pac import networks as networks_lib
from agents.pac import replay
from launchers import config as config_lib
from launchers import nodes

TASK = 'cartpole_swingup'


class _CountingSource:
  """A variable source serving a given parameter set, counting fetches."""

  def __init__(self, params):
    self.params = params
    self.fetches = 0

  def get_variables(self, names):
    self.fetches += 1
    return [self.params for _ in names]


def test_evaluator_fetches_one_snapshot_per_evaluation(tmp_path):
  agent = pac_config.PACConfig(variable_update_period=100, num_bins=5)
  config = config_lib.RunConfig(mode='offline', task=TASK,
                                run_dir=str(tmp_path), dataset='unused',
                                agent=agent)
  spec = environments.environment_spec(environments.make_environment(TASK, 0))
  networks = networks_lib.make_networks(spec, agent)
  zero = jax.tree.map(np.zeros_like, networks.init(jax.random.PRNGKey(0)))
  source = _CountingSource(zero)
  evaluator = nodes.Evaluator(config, source, seed=0)
  assert source.fetches == 1  # The actor's first fetch, at construction.
  evaluator.evaluate(1)
  assert source.fetches == 2  # Fresh parameters for every evaluation...
  evaluator.evaluate(1)
  assert source.fetches == 3  # ...and none during its 1000-step episodes.


class _CourierSource:
  """A learner's Courier handle, as far as actors use it: `futures`."""

  def __init__(self, future):
    self.futures = self
    self._future = future

  def get_variables(self, names):
    del names
    return self._future


def test_an_actors_parameter_fetch_returns_or_ends_at_the_stop():
  answered = concurrent.futures.Future()
  answered.set_result(['params'])
  stop = threading.Event()
  assert nodes._TrackedSource(_CourierSource(answered),  # pylint: disable=protected-access
                              stop).get_variables(['policy']) == ['params']
  # A learner that stopped never answers: the run's stop ends the wait.
  source = nodes._TrackedSource(_CourierSource(concurrent.futures.Future()),  # pylint: disable=protected-access
                                stop)
  start = time.time()
  threading.Timer(0.3, stop.set).start()
  with pytest.raises(nodes._StopActing):  # pylint: disable=protected-access
    source.get_variables(['policy'])
  assert 0.3 <= time.time() - start < 5
  assert source.wait_idle(0)  # No fetch in flight.


def test_dataset_loader_fills_the_table_cold_then_warm(tmp_path,
                                                       cartpole_dataset):
  path = str(tmp_path / 'data')
  shutil.copytree(cartpole_dataset, path)
  shutil.rmtree(os.path.join(path, 'cache'), ignore_errors=True)
  agent = pac_config.PACConfig(offline_block_size=8, n_step=5)
  config = config_lib.RunConfig(mode='offline', task=TASK,
                                run_dir=str(tmp_path / 'run'), dataset=path,
                                agent=agent)
  count = environments.load_dataset(path).num_nstep_transitions(5)
  spec = environments.load_dataset(path).spec
  for expected_cache in ('built', 'warm'):
    server = reverb.Server(builder_lib.PACBuilder(
        agent, offline_table_size=count).make_replay_tables(spec))
    client = reverb.Client(f'localhost:{server.port}')
    try:
      stats = nodes.DatasetLoader(config, client, seed=0).load()
      assert stats['cache'] == expected_cache
      assert stats['transitions'] == count
      assert stats['items'] == replay.num_blocks(count, 8)
      assert client.server_info()[replay.OFFLINE_TABLE].current_size == (
          stats['items'])
    finally:
      server.stop()
  # Stopping midway leaves the loader with nothing to report.
  server = reverb.Server(builder_lib.PACBuilder(
      agent, offline_table_size=count).make_replay_tables(spec))
  try:
    client = reverb.Client(f'localhost:{server.port}')
    assert nodes.DatasetLoader(config, client, seed=0).load(
        should_stop=lambda: True) is None
  finally:
    server.stop()


def test_several_datasets_and_a_directory_of_them_fill_one_table(
    tmp_path, cartpole_dataset):
  """`--dataset=a,dir`: a run's recorded `episodes/` counts as its datasets."""
  episodes = tmp_path / 'episodes'
  for name, seed in (('actor_0_000', 1), ('actor_1_000', 2)):
    environments.write_dataset(str(episodes / name), TASK, 'random', 1, seed)
  os.makedirs(episodes / '.actor_2_000.incomplete-x')  # A killed actor's.
  agent = pac_config.PACConfig(offline_block_size=8, n_step=5)
  config = config_lib.RunConfig(
      mode='offline', task=TASK, run_dir=str(tmp_path / 'run'),
      dataset=f'{cartpole_dataset},{episodes}', agent=agent)
  paths = environments.dataset_paths(config.dataset)
  assert paths == [cartpole_dataset, str(episodes / 'actor_0_000'),
                   str(episodes / 'actor_1_000')]
  count = sum(environments.load_dataset(p).num_nstep_transitions(5)
              for p in paths)
  spec, offline_sizes = config_lib.preflight(config)
  assert offline_sizes == {replay.OFFLINE_TABLE: count}
  server = reverb.Server(builder_lib.PACBuilder(
      agent, offline_table_size=count).make_replay_tables(spec))
  try:
    client = reverb.Client(f'localhost:{server.port}')
    stats = nodes.DatasetLoader(config, client, seed=0).load()
    assert stats['transitions'] == count
    assert client.server_info()[replay.OFFLINE_TABLE].current_size == (
        replay.num_blocks(count, 8))
  finally:
    server.stop()


def test_counter_node_serves_acme_counter_and_restores_it(tmp_path):
  config = config_lib.RunConfig(mode='offline', task=TASK,
                                run_dir=str(tmp_path), dataset='unused')
  counter = nodes.CounterNode(config)
  # Courier serves what dir() lists: the wrapped Counter's methods, not the
  # node's loop.
  served = {name for name in dir(counter) if not name.startswith('_')}
  assert {'increment', 'get_counts'} <= served
  assert not {'run', 'step', 'finish'} & served
  counter.increment(learner_steps=5)
  counter._checkpointer.save(force=True)  # pylint: disable=protected-access
  assert nodes.CounterNode(config).get_counts() == {'learner_steps': 5}


_TINY_NETWORK = pac_config.NetworkConfig(
    embed_dim=32, num_latents=4, num_self_attention_blocks=1, num_heads=2,
    mlp_multiplier=2, critic_hidden=(32,))


def _learner_node(config, spec, client):
  counter = counting.Counter()
  return nodes.LearnerNode(config, spec, client, counter,
                           {replay.OFFLINE_TABLE: 1}, seed=0)


def test_a_restored_learner_holds_until_its_model_is_evaluated(
    tmp_path, cartpole_dataset, monkeypatch):
  """A run from another's model trains only once the controller has evaluated
  that model (`set_step_budget`); its first evaluation sees the restored step."""
  stop = threading.Event()  # The node's stop event, outside a program.
  monkeypatch.setattr(nodes.lp, 'stop_event', lambda: stop)
  monkeypatch.setattr(nodes.lp, 'wait_for_stop', stop.wait)
  agent = pac_config.PACConfig(network=_TINY_NETWORK, num_bins=5,
                               num_atoms=11, batch_size=8,
                               offline_block_size=8, n_step=5)
  base = dict(mode='offline', task=TASK, dataset=cartpole_dataset, agent=agent,
              max_learner_steps=6, checkpoint_every_s=3600)
  source = config_lib.RunConfig(run_dir=str(tmp_path / 'source'), **base)
  restored = config_lib.RunConfig(run_dir=str(tmp_path / 'restored'),
                                  restore_from=source.run_dir, **base)
  count = environments.load_dataset(cartpole_dataset).num_nstep_transitions(5)
  spec = environments.load_dataset(cartpole_dataset).spec
  server = reverb.Server(builder_lib.PACBuilder(
      agent, offline_table_size=count).make_replay_tables(spec))
  try:
    client = reverb.Client(f'localhost:{server.port}')
    nodes.DatasetLoader(source, client, seed=0).load()
    learner = _learner_node(source, spec, client)
    learner.set_step_budget(3)
    while learner.num_steps() < 3:
      learner.step()
    learner.finish()

    learner = _learner_node(restored, spec, client)
    assert learner.num_steps() == 3
    learner.step()  # Held: no evaluation of the restored model yet.
    assert learner.num_steps() == 3
    learner.set_step_budget(restored.max_learner_steps)  # The controller's.
    while not learner.done():
      learner.step()
    assert learner.num_steps() == 6
    learner.finish()

    # Restarted after that evaluation (eval.jsonl holds it): no hold.
    with open(restored.path('eval.jsonl'), 'w') as f:
      f.write('{"learner_steps": 3, "start": true}\n')
    shutil.rmtree(os.path.join(restored.run_dir, 'checkpoints'))
    learner = _learner_node(restored, spec, client)
    assert learner.num_steps() == 3
    learner.step()
    assert learner.num_steps() > 3
    learner.finish()
  finally:
    server.stop()
