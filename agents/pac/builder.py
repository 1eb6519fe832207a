"""`PACBuilder`: PAC as an Acme `ActorLearnerBuilder` (dm-acme 0.4.0 interface).

The builder is the only reader of `PACConfig` outside the loss: it turns the
config into replay tables, the mixed-table iterator, the online adder, actors and
the learner. Anything that runs Acme builders (`LocalLayout`,
`DistributedLayout`, or this project's Launchpad program) can run PAC.

In Acme's single-process `LocalLayout`, pass the layout a `min_replay_size` of
at least `config.min_replay_size + config.n_step`: the layout starts learner
steps after that many observations, and the n-step adder's first items arrive
a few steps late, so an equal value lets the learner block on a table one item
short of its minimum, in the same thread that would fill it.
"""

from typing import Callable, Iterator, List, Mapping, Optional, Tuple

from acme import adders as acme_adders
from acme import core
from acme import specs
from acme.agents.jax import actor_core as actor_core_lib
from acme.agents.jax import actors
from acme.agents.jax import builders
from acme.jax import networks as networks_lib
from acme.jax import variable_utils
from acme.utils import counting
from acme.utils import loggers
import reverb

from agents.pac import acting
from agents.pac import config as config_lib
from agents.pac import learning
from agents.pac import networks as networks_module
from agents.pac import replay

LoggerFactory = Callable[[str], loggers.Logger]


class PACBuilder(builders.ActorLearnerBuilder):
  """Builds every PAC component from one validated `PACConfig`."""

  def __init__(self,
               config: config_lib.PACConfig,
               logger_factory: Optional[LoggerFactory] = None,
               offline_table_size: Optional[int] = None,
               rate_limit_online: bool = True,
               offline_tables: Optional[Mapping[str, Tuple[int, float]]] = None
               ):
    """Args.

    config: the agent's configuration.
    logger_factory: label -> Logger for the learner (the launcher passes one that
      writes CSV and TensorBoard into the run directory); None prints only.
    offline_table_size: capacity of the `offline` table in transitions;
      defaults to `config.max_replay_size`. The Launchpad program sets it to
      the dataset's transition count so that nothing is ever evicted.
    rate_limit_online: hold the learner to `config.samples_per_insert` on the
      online table. Self-improvement turns it off: it collects whole rounds of
      episodes before training, which a ratio limiter would block.
    offline_tables: a multi-task run's offline tables, {name: (capacity in
      transitions, sampling weight)}, in place of the one `offline` table;
      batches share their offline rows among them by weight, exactly
      (`replay.apportion`).
    """
    self._config = config
    self._logger_factory = logger_factory
    self._offline_tables = dict(offline_tables or {replay.OFFLINE_TABLE: (
        offline_table_size or config.max_replay_size, 1.0)})
    self._rate_limit_online = rate_limit_online

  @property
  def config(self) -> config_lib.PACConfig:
    return self._config

  def make_replay_tables(
      self, environment_spec: specs.EnvironmentSpec) -> List[reverb.Table]:
    config = self._config
    samples_online = config.online_fraction > 0 and self._rate_limit_online
    return [
        replay.make_offline_table(
            environment_spec,
            max_transitions=size,
            min_transitions=min(config.min_replay_size, size),
            block_size=config.offline_block_size, name=name)
        for name, (size, _) in self._offline_tables.items()
    ] + [
        replay.make_online_table(
            environment_spec,
            max_size=config.max_replay_size,
            min_size=config.min_replay_size,
            samples_per_insert=(config.samples_per_insert
                                if samples_online else None),
            error_buffer=config.samples_per_insert_error_buffer),
    ]

  def make_dataset_iterator(
      self, replay_client: reverb.Client) -> replay.MixedReplayIterator:
    return replay.MixedReplayIterator(
        server_address=replay_client.server_address,
        batch_size=self._config.batch_size,
        online_fraction_at=self._config.online_fraction_at,
        block_size=self._config.offline_block_size,
        offline_weights={name: weight for name, (_, weight)
                         in self._offline_tables.items()})

  def make_adder(self, replay_client: reverb.Client) -> acme_adders.Adder:
    return replay.make_online_adder(replay_client, n_step=self._config.n_step,
                                    discount=self._config.discount)

  def make_actor(
      self,
      random_key: networks_lib.PRNGKey,
      policy_network: acting.Policy,
      adder: Optional[acme_adders.Adder] = None,
      variable_source: Optional[core.VariableSource] = None) -> core.Actor:
    assert variable_source is not None, 'PAC actors need a variable source.'
    variable_client = variable_utils.VariableClient(
        variable_source, 'policy', device='cpu',
        update_period=self._config.variable_update_period)
    # Fetch once now so the first action already uses learner parameters.
    variable_client.update_and_wait()
    return actors.GenericActor(
        actor_core_lib.batched_feed_forward_to_actor_core(policy_network),
        random_key, variable_client, adder, backend='cpu')

  def make_learner(
      self,
      random_key: networks_lib.PRNGKey,
      networks: networks_module.PACNetworks,
      dataset: Iterator[reverb.ReplaySample],
      replay_client: Optional[reverb.Client] = None,
      counter: Optional[counting.Counter] = None) -> learning.PACLearner:
    del replay_client  # Uniform tables: no priorities to update.
    logger = (self._logger_factory('learner')
              if self._logger_factory else None)
    learner = learning.PACLearner(
        networks=networks, config=self._config, random_key=random_key,
        iterator=dataset, counter=counter, logger=logger)
    if isinstance(dataset, replay.MixedReplayIterator):
      # The online-fraction schedule follows the learner's (restorable) step.
      dataset.step_source = lambda: learner.num_steps
    # Before the learner serves parameters (see `PACLearner.compile`).
    learner.compile(replay.example_batch(networks.environment_spec,
                                         self._config.batch_size))
    return learner

  def make_policy(self, networks: networks_module.PACNetworks,
                  evaluation: bool = False) -> acting.Policy:
    """The actors' (exploring, temperature 1) or the evaluators' policy
    (`eval_policy` at `eval_temperature`), from the config."""
    if evaluation:
      return acting.make_policy(networks, self._config,
                                self._config.eval_policy,
                                self._config.eval_temperature)
    return acting.make_policy(networks, self._config,
                              self._config.actor_policy)
