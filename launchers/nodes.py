"""The workers of a PAC Launchpad program, one class per node kind.

Each class is constructed inside its node (its own process under `local_mp`, a
thread under `test_mt`) and talks to the others through Launchpad handles:
Courier for method calls, a Reverb client for data. `Controller` is the only node
that decides when the run ends: it schedules evaluations, drives self-improvement
rounds, writes the results, and calls `lp.stop()`; every other node runs until it
is told to stop (`lp.wait_for_stop` / `lp.stop_event`), so every mode stops the
same way and leaves no process behind.
"""

import dataclasses
import functools
import json
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from acme import core
from acme import environment_loop
from acme import specs
from acme import wrappers
from acme.tf import savers as tf_savers
from acme.utils import counting
from acme.utils import loggers
import dm_env
import jax
import launchpad as lp
from launchpad import address as lp_address
import numpy as np
import reverb
import tensorflow as tf
import tqdm

from agents.pac import builder as builder_lib
from agents.pac import networks as networks_lib
from agents.pac import replay
from launchers import config as config_lib
from launchers import logs
from launchers import plotting
from launchers import recording
from launchers import supervision
from launchers import tasks as tasks_lib

STATUS_FILE = 'status.log'
# Reverb's own checkpoint of the replay tables (the latest only), taken by the
# learner right after each checkpoint of its own, and what it held.
REPLAY_CHECKPOINT_DIR = os.path.join('checkpoints', 'replay')
REPLAY_SAVED_FILE = os.path.join('checkpoints', 'replay_saved.json')
# Written by the controller just before it stops a run that reached its end:
# Launchpad stops a local program with the same SIGTERM a user may send, and
# this tells the launcher which of the two it got.
FINISHED_FILE = 'finished'
# Written by the learner once its last step and checkpoint are done; the
# replay and counter nodes serve until then (at most REPLAY_GRACE_S after a
# stop).
LEARNER_STOPPED_FILE = os.path.join('checkpoints', 'learner_stopped.json')
# The learner's share of the stop notice; the replay server's final checkpoint
# gets the rest.
REPLAY_GRACE_S = supervision.STOP_NOTICE_S - 10.

# Acme's checkpointer re-traces a tf.function on every save; TF warns each time.
tf.get_logger().setLevel('ERROR')


def _stopping() -> bool:
  return lp.stop_event().is_set()


def _await(future, timeout: Optional[float] = None,
           stop: Optional[threading.Event] = None):
  """The result of a Courier call's future; `_Stopped` if the run stops first.

  A call to a node that dies is retried by gRPC on the node's restart (the
  same address; tests/launchers/test_faults.py), so it waits rather than
  fails; if the node is gone for good it would wait forever, and the stop
  event (or `timeout`, then `TimeoutError`) ends the wait. `stop` is the
  node's `lp.stop_event()`, for a thread that cannot look it up.
  """
  deadline = None if timeout is None else time.time() + timeout
  while not future.done():
    if stop.is_set() if stop is not None else _stopping():
      raise _Stopped()
    if deadline is not None and time.time() > deadline:
      raise TimeoutError()
    time.sleep(0.1)
  return future.result()


class DatasetLoader:
  """Fills the offline table(s) from the run's RLDS datasets, then exits.

  The dataset's steps come from its decoded cache (`environments/cache.py`),
  decoded from the EnvLogger files only on first use; the n-step transitions
  are built in memory and inserted shuffled, in blocks of
  `agent.offline_block_size` transitions per Reverb item (`replay.py`). In a
  multi-task run each task's transitions are padded to the run's spec
  (`MultiTaskEnvironment.pad_transitions`) and go to the task's own table. A
  progress bar goes to the node's output, and one line with the count, the
  rate and whether the cache was used to the run's status file.
  """

  def __init__(self, run_config: config_lib.RunConfig,
               replay_client: reverb.Client, seed: int):
    self._config = run_config
    self._client = replay_client
    self._seed = seed  # Of the insertion order.

  def _transitions(self) -> Tuple[Dict[str, Any], Set[str]]:
    """{table: its n-step transitions [N, ...]}, and the datasets' caches."""
    import environments  # pylint: disable=g-import-not-at-top
    agent = self._config.agent
    padder = (environments.MultiTaskEnvironment(self._config.tasks, seed=0)
              if self._config.multitask else None)
    tables, caches = {}, set()
    for task, datasets in tasks_lib.datasets_by_task(self._config).items():
      # Replay holds no extras (a generated dataset's log_prob, which
      # recorded episodes lack).
      transitions = jax.tree.map(
          lambda *parts: np.concatenate(parts),
          *[d.transitions(agent.n_step, agent.discount)._replace(extras=())
            for d in datasets])
      if padder is not None:
        transitions = padder.pad_transitions(task, transitions)
      tables[tasks_lib.offline_table(self._config, task)] = transitions
      caches.update(d.cache_status for d in datasets)
    if padder is not None:
      padder.close()
    return tables, caches

  def load(self, should_stop: Callable[[], bool] = lambda: False
           ) -> Optional[Dict[str, Any]]:
    """Fills the tables; returns what it did, or None if stopped midway."""
    block_size = self._config.agent.offline_block_size
    start = time.time()
    tables, caches = self._transitions()
    ready = time.time()
    total = sum(len(t.reward) for t in tables.values())
    info = self._client.server_info()
    todo = {table: transitions for table, transitions in tables.items()
            if info[table].current_size != replay.num_blocks(
                len(transitions.reward), block_size)}
    names = ', '.join(f'"{table}"' for table in tables)
    if len(tables) > 1:
      names = ', '.join(f'"{table}" ({len(t.reward)})'
                        for table, t in tables.items())
    if not todo:
      # Restored with the replay checkpoint of a resumed run.
      return {'transitions': total, 'tables': names, 'restored': True}
    packer = replay.TransitionPacker(info[replay.ONLINE_TABLE].signature)
    rng = np.random.default_rng(self._seed)
    items = 0
    with tqdm.tqdm(total=total, desc='load offline', unit='tr',
                   mininterval=2.0) as bar:
      for table, transitions in tables.items():
        if table not in todo:
          bar.update(len(transitions.reward))
          continue
        if info[table].current_size:
          # Never checkpointed so; but a part must not be loaded twice.
          self._client.reset(table)
        done_before = bar.n

        def progress(done: int, done_before=done_before):
          bar.update(done_before + done - bar.n)
          if should_stop():
            raise _Stopped()

        try:
          items += replay.insert_offline(
              self._client, transitions,
              packer, block_size,
              rng, on_progress=progress, table=table)
        except _Stopped:
          return None
    return {'transitions': total, 'items': items,
            'seconds': time.time() - start, 'read_seconds': ready - start,
            'cache': ', '.join(sorted(caches)), 'tables': names}

  def run(self):
    stats = self.load(should_stop=_stopping)
    if stats is None:
      return
    if stats.get('restored'):
      _status(self._config, f'[data] {stats["tables"]} restored from the '
              f'replay checkpoint ({stats["transitions"]} transitions)')
      return
    _status(self._config, f'[data] loaded {stats["transitions"]} transitions '
            f'into {stats["tables"]} in {stats["seconds"]:.1f}s '
            f'({stats["transitions"] / max(stats["seconds"], 1e-9):,.0f}/s; '
            f'dataset cache: {stats["cache"]}, {stats["read_seconds"]:.1f}s '
            'to read)')


class _Stopped(Exception):
  """The program stopped while this node was waiting (inserting, calling)."""


class ReplayNode(lp.ReverbNode):
  """Launchpad's Reverb node, with the tables checkpointed at the end.

  A resumed run's server restores the latest checkpoint (Reverb's own
  checkpointer, in `REPLAY_CHECKPOINT_DIR`). The learner checkpoints the
  tables with each of its own checkpoints; at a stop, this node keeps serving
  until the learner has taken its last step and saved (a learner sampling
  from a stopped server would wait forever), then takes the final checkpoint
  itself, so a run stopped by Ctrl-C or SIGTERM loses no experience.
  """

  def __init__(self, tables_fn: Callable[[], List[reverb.Table]],
               run_config: config_lib.RunConfig):
    super().__init__(tables_fn, checkpoint_ctor=functools.partial(
        reverb.checkpointers.DefaultCheckpointer,
        path=run_config.path(REPLAY_CHECKPOINT_DIR)))
    self._config = run_config

  def run(self):
    # As `lp.ReverbNode.run`, with the final checkpoint.
    server = reverb.Server(
        tables=self._priority_tables_fn(),
        port=lp_address.get_port_from_address(self._address.resolve()),
        checkpointer=self._checkpoint_ctor())
    lp.wait_for_stop()
    learner = _serve_until_learner_stopped(self._config)
    if learner and learner['offline_ready']:
      # By its address: on a cluster host the server listens on the host's
      # address only, where a localhost client would wait forever.
      _checkpoint_replay(reverb.Client(self._address.resolve()),
                         self._config, learner['step'])
    server.stop()


def _serve_until_learner_stopped(
    run_config: config_lib.RunConfig) -> Optional[Dict[str, Any]]:
  """After a stop, waits for the learner's last step and save.

  The nodes the learner calls (replay, counter) keep serving until then: a
  call to a node that has gone waits forever, and Launchpad would kill the
  whole program (and lose its last checkpoint). Returns the learner's
  `LEARNER_STOPPED_FILE`, or None if it did not come within
  `REPLAY_GRACE_S`.
  """
  marker = run_config.path(LEARNER_STOPPED_FILE)
  deadline = time.time() + REPLAY_GRACE_S
  while not os.path.exists(marker) and time.time() < deadline:
    time.sleep(0.1)
  if not os.path.exists(marker):
    return None
  with open(marker) as f:
    return json.load(f)


def _checkpoint_replay(client: reverb.Client,
                       run_config: config_lib.RunConfig,
                       learner_step: int) -> None:
  """Checkpoints the tables, then records what they held.

  Sizes are read first: the checkpoint holds at least these (actors may
  insert in between). Reverb writes the new checkpoint, then drops the older.
  """
  info = client.server_info()
  client.checkpoint()
  _write_atomic(run_config.path(REPLAY_SAVED_FILE), json.dumps({
      'learner_step': learner_step,
      'items': {name: table.current_size for name, table in info.items()}}))


class _Runner(tf_savers.CheckpointingRunner):
  """Acme's `CheckpointingRunner`, with a `run` that returns at the stop.

  Acme's loops forever (its process is killed at the end); a node of ours
  must return, after a last checkpoint, so a stopped run loses nothing.
  Subclasses give one `step` of their loop and `finish`. Courier serves the
  names `dir` lists: Acme's runner lists the wrapped object's, this adds the
  subclass's own methods (not the loop's).
  """

  def run(self):
    while not _stopping():
      self.step()
    self.finish()

  def finish(self):
    self._checkpointer.save(force=True)

  def __dir__(self):
    own = set(vars(type(self))) - {'run', 'step', 'finish'}
    return sorted(set(super().__dir__()) | own)


class CounterNode(_Runner):
  """Acme's shared `Counter`, checkpointed into the run directory."""

  def __init__(self, run_config: config_lib.RunConfig):
    super().__init__(
        counting.Counter(), key='counter', directory=run_config.run_dir,
        subdirectory='counter', add_uid=False,
        time_delta_minutes=run_config.checkpoint_every_s / 60)
    self._config = run_config

  def step(self):
    self._checkpointer.save()
    lp.wait_for_stop(1.0)

  def finish(self):
    _serve_until_learner_stopped(self._config)  # It counts its last steps.
    super().finish()


class LearnerNode(_Runner, core.VariableSource):
  """Runs the PAC learner up to a step budget and checkpoints it.

  In offline and finetune modes the budget is the run's total from the start,
  except in a run initialised from another's model (`restore_from`): it holds
  at the restored step until the controller has evaluated that model. In
  selfimprove mode the controller raises it round by round. Before the first
  step the learner waits until the dataset loader has filled the offline table,
  so training never starts on a fraction of the data.
  """

  def __init__(self, run_config: config_lib.RunConfig,
               environment_spec: specs.EnvironmentSpec,
               replay_client: reverb.Client,
               counter: counting.Counter,
               offline_sizes: Optional[Dict[str, int]], seed: int):
    builder = make_builder(run_config, offline_sizes)
    networks = networks_lib.make_networks(environment_spec, run_config.agent)
    if os.path.exists(run_config.path(LEARNER_STOPPED_FILE)):
      os.remove(run_config.path(LEARNER_STOPPED_FILE))  # A previous run's.
    iterator = builder.make_dataset_iterator(replay_client)
    # The event itself: the prefetch thread cannot look it up (Launchpad
    # keeps it per node thread).
    iterator.should_stop = lp.stop_event().is_set
    self._iterator = iterator
    self._learner = builder.make_learner(
        jax.random.PRNGKey(seed), networks, iterator, replay_client,
        # Sync every step (Acme's default is once a second), so the shared
        # count always equals the learner's step when the controller looks.
        counting.Counter(counter, 'learner', time_delta=0.))
    super().__init__(  # Restores the run's latest checkpoint, if any.
        self._learner, key='learner', directory=run_config.run_dir,
        subdirectory='learner', add_uid=False,
        time_delta_minutes=run_config.checkpoint_every_s / 60)
    self._config = run_config
    self._client = replay_client
    self._offline_sizes = offline_sizes or {}
    if self._learner.num_steps == 0 and run_config.restore_from:
      # Initialise from another run (e.g. finetune an offline model).
      tf_savers.Checkpointer(
          {'learner': self._learner}, directory=run_config.restore_from,
          subdirectory='learner', add_uid=False)
    if self._learner.num_steps:
      _status(run_config, f'[learner] resumed at step '
              f'{self._learner.num_steps}')
    if os.path.exists(run_config.path(REPLAY_SAVED_FILE)):  # Not restore_from.
      online = replay_client.server_info()[replay.ONLINE_TABLE].current_size
      _status(run_config, f'[replay] resumed with {online} online items')
    # Replay is checkpointed only once the offline table is complete, so a
    # restored offline table is always the whole dataset.
    self._offline_ready = False
    self._saved_final = False
    if run_config.mode == 'selfimprove':
      self._budget = 0
    elif (run_config.restore_from and
          not _read_jsonl(run_config.path('eval.jsonl'))):
      # The controller first evaluates the restored model itself; the learner
      # holds until then (`set_step_budget`), or that evaluation would see a
      # model already trained on. (Also when resumed from its own checkpoint
      # before that evaluation: it has not trained since the restore.)
      self._budget = self._learner.num_steps
    else:
      self._budget = run_config.max_learner_steps

  def _save(self, force: bool = False):
    """Checkpoints the learner (if due), then the replay tables.

    The tables' checkpoint is recorded once complete, with the learner step
    it pairs with, in `REPLAY_SAVED_FILE`. A run killed
    outright (kill -9 of every process) loses at most what came after the
    last pair: learner steps and online inserts of up to
    `checkpoint_every_s` seconds (plus one checkpoint's duration). A stopped
    run loses nothing: the learner saves after its last step, the replay
    node after that.
    """
    if not self._checkpointer.save(force=force):
      return
    if self._offline_ready and not _stopping():  # At a stop: ReplayNode.
      _checkpoint_replay(self._client, self._config, self._learner.num_steps)

  def get_variables(self, names: List[str]):
    return self._learner.get_variables(names)

  def num_steps(self) -> int:
    return self._learner.num_steps

  def set_step_budget(self, steps: int):
    self._budget = steps

  def done(self) -> bool:
    """True once the learner has reached the run's final step."""
    return self._learner.num_steps >= self._config.total_learner_steps

  def _wait_for_offline_data(self):
    blocks = {table: replay.num_blocks(size,
                                       self._config.agent.offline_block_size)
              for table, size in self._offline_sizes.items()}
    while blocks and not _stopping():
      info = self._client.server_info()
      if all(info[table].current_size >= n for table, n in blocks.items()):
        return
      time.sleep(0.2)

  def run(self):
    self._wait_for_offline_data()
    self._offline_ready = not _stopping()
    super().run()

  def step(self):
    """Learns up to the budget (then saves), or waits for a larger one."""
    if self._learner.num_steps < self._budget:
      try:
        self._learner.step(max_steps=self._budget - self._learner.num_steps)
      except StopIteration:  # Replay waits end at a stop (see replay.py).
        return
      self._save()
    else:
      if self.done() and not self._saved_final:
        self._save(force=True)
        self._saved_final = True
      lp.wait_for_stop(0.2)

  def finish(self):
    self._save(force=True)
    self._iterator.close()  # No stream outlives the program's replay server.
    _write_atomic(self._config.path(LEARNER_STOPPED_FILE), json.dumps(
        {'step': self._learner.num_steps, 'offline_ready': self._offline_ready}))


class _StopActing(Exception):
  """Raised inside an episode, or a parameter fetch, when the actor stops."""


class _TrackedSource(core.VariableSource):
  """The learner as a variable source: the run's stop ends a fetch, and the
  source knows whether one is in flight.

  Acme's variable client fetches in a background thread, and once, before
  the first episode, in the node's main thread; a fetch still waiting when
  the learner stops would wait forever (a node stuck there is killed at the
  end of the stop notice). Fetches go by Courier's futures and end with
  `_StopActing` once `run_stop` (the node's `lp.stop_event()`) is set; the
  actor waits for the one in flight to end before it reports itself stopped.
  """

  def __init__(self, source: core.VariableSource,
               run_stop: threading.Event):
    self._source = source
    self._in_flight = 0
    self._idle = threading.Condition()
    self._run_stop = run_stop

  def get_variables(self, names: List[str]):
    with self._idle:
      self._in_flight += 1
    try:
      return _await(self._source.futures.get_variables(names),
                    stop=self._run_stop)
    except _Stopped:
      raise _StopActing() from None
    finally:
      with self._idle:
        self._in_flight -= 1
        self._idle.notify_all()

  def wait_idle(self, timeout: float) -> bool:
    with self._idle:
      return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


class _StopAware(wrappers.EnvironmentWrapper):
  """Ends an episode early (by raising) once `stop` is set or the run stops.

  Made in the node's main thread: `lp.stop_event()` is only reachable there,
  and episodes also run in Courier's threads (`collect`).
  """

  def __init__(self, environment: dm_env.Environment,
               stop: threading.Event):
    super().__init__(environment)
    self._stop = stop
    self._run_stop = lp.stop_event()

  def step(self, action) -> dm_env.TimeStep:
    if self._stop.is_set() or self._run_stop.is_set():
      raise _StopActing()
    return self._environment.step(action)


class ActorNode:
  """Acts in the environment with the current policy, inserting into `online`.

  In finetune mode it runs episodes until stopped; in selfimprove mode it waits
  and runs `collect(n)` episodes when the controller asks. The controller calls
  `stop()` before it stops the program, so an actor never outlives the servers
  it calls (a Courier call to a stopped server would wait forever).
  """

  def __init__(self, run_config: config_lib.RunConfig,
               replay_client: reverb.Client,
               variable_source: core.VariableSource,
               counter: counting.Counter, actor_id: int, seed: int):
    self._config = run_config
    self._stop = threading.Event()
    self._stopped = threading.Event()
    self._source = _TrackedSource(variable_source, lp.stop_event())
    self._loop = None
    try:  # Fetches the first parameters.
      environment, actor = _make_acting(
          run_config, seed, self._source,
          replay_client=replay_client,
          visit=run_config.actor_visit(actor_id))
    except _StopActing:  # The run stopped first: `run` returns at once.
      self._stopped.set()
      return
    spec = specs.make_environment_spec(environment)
    self._logger = logs.make_logger(run_config.run_dir, f'actor_{actor_id}',
                                    steps_key='actor_steps', time_delta=0)
    self._label = f'actor/{actor_id}'
    self._recorder = None
    if run_config.record_episodes:
      self._recorder = recording.EpisodeRecorder(
          run_config, actor_id, spec, functools.partial(_learner_step,
                                                        counter))
    self._loop = environment_loop.EnvironmentLoop(
        _StopAware(environment, self._stop), actor,
        counting.Counter(counter, 'actor'), self._logger,
        observers=[self._recorder] if self._recorder else ())

  def collect(self, num_episodes: int) -> List[float]:
    """Runs `num_episodes` episodes; returns their returns."""
    results = [self._loop.run_episode() for _ in range(num_episodes)]
    for result in results:
      self._logger.write(result)
    return [float(result['episode_return']) for result in results]

  def stop(self) -> bool:
    """Ends the current episode and `run`; returns once `run` has returned
    and no parameter fetch is in flight."""
    self._stop.set()
    return self._stopped.wait(timeout=120) and self._source.wait_idle(120)

  def run(self):
    if self._loop is None:  # Stopped before its first parameters.
      return
    try:
      if self._config.mode == 'selfimprove':
        while not (self._stop.wait(0.5) or _stopping()):
          pass
        return
      while not (self._stop.is_set() or _stopping()):
        self._logger.write(self._loop.run_episode())
    except _StopActing:
      pass
    finally:
      if self._recorder:
        self._recorder.close()
        if self._recorder.episodes:
          _status(self._config, f'[record] {self._label}: '
                  f'{self._recorder.episodes} episodes in '
                  f'{len(self._recorder.datasets)} datasets under '
                  f'{self._config.path(recording.EPISODES_DIR)}')
      self._stopped.set()


def _learner_step(counter) -> int:
  """The learner's step count, from the counter node (-1 if unreachable)."""
  try:
    return int(counter.futures.get_counts().result(timeout=10).get(
        'learner_steps', 0))  # No count before the learner's first step.
  except Exception:  # pylint: disable=broad-except  (Courier error, timeout)
    return -1


def _make_acting(run_config: config_lib.RunConfig, seed: int,
                 variable_source: core.VariableSource,
                 replay_client: Optional[reverb.Client] = None,
                 evaluation: bool = False,
                 visit: Optional[List[str]] = None):
  """(environment, actor) of this run's tasks and policy: an actor's (adding
  to `replay_client`; playing the tasks of `visit` in a multi-task run) or
  the evaluator's (`evaluation`), seeded by `seed`."""
  environment = tasks_lib.make_environment(run_config, seed, visit)
  spec = specs.make_environment_spec(environment)
  agent = run_config.agent
  if evaluation:
    # One parameter snapshot per evaluation: `evaluate` fetches it (a period
    # of 1 makes every `update(wait=True)` fetch), and no fetch runs during
    # episodes, so an evaluation scores one set of parameters.
    agent = dataclasses.replace(agent, variable_update_period=1)
  builder = make_builder(dataclasses.replace(run_config, agent=agent), None)
  networks = networks_lib.make_networks(spec, run_config.agent)
  actor = builder.make_actor(
      jax.random.PRNGKey(seed), builder.make_policy(networks, evaluation),
      builder.make_adder(replay_client) if replay_client else None,
      variable_source)
  return environment, actor


class Evaluator:
  """Evaluates the current parameters with the evaluation policy, on request.

  In a multi-task run every task is evaluated on `num_episodes` episodes
  (the environment cycles through the tasks), and the result holds each
  task's return besides their mean.
  """

  def __init__(self, run_config: config_lib.RunConfig,
               variable_source: core.VariableSource, seed: int):
    self._config = run_config
    self._environment, self._actor = _make_acting(
        run_config, seed, variable_source, evaluation=True)
    self._loop = environment_loop.EnvironmentLoop(
        self._environment, self._actor, logger=loggers.NoOpLogger(),
        should_update=False)

  def evaluate(self, num_episodes: int) -> Dict[str, Any]:
    self._actor.update(wait=True)
    by_task = {task: [] for task in self._config.tasks}
    for _ in range(num_episodes * len(by_task)):
      episode_return = float(self._loop.run_episode()['episode_return'])
      task = (self._environment.current_task if self._config.multitask
              else self._config.task)
      by_task[task].append(episode_return)
    # dm_control suite tasks define no success signal, so none is reported.
    result = {'return_mean': float(np.mean([np.mean(r) for r in
                                            by_task.values()])),
              'return_std': float(np.mean([np.std(r) for r in
                                           by_task.values()])),
              'episodes': num_episodes}
    if self._config.multitask:
      result['tasks'] = {task: {'return_mean': float(np.mean(returns)),
                                'return_std': float(np.std(returns))}
                         for task, returns in by_task.items()}
    return result


class Controller:
  """Schedules evaluations and rounds, records results, then stops the program."""

  def __init__(self, run_config: config_lib.RunConfig, learner, evaluator,
               counter: counting.Counter, actors: List,
               replay_client: reverb.Client):
    self._config = run_config
    self._replay = replay_client
    self._learner = learner
    self._evaluator = evaluator
    self._counter = counter
    self._actors = actors
    self._results_path = run_config.path('eval.jsonl')
    self._results = _read_jsonl(self._results_path)
    self._start = time.time()
    # Random and expert returns of each task's datasets, where they hold
    # both: evaluations also report normalised returns (0 random, 100 expert).
    self._references = tasks_lib.reference_returns(run_config)
    # Evaluations in TensorBoard (and logs/evaluation/logs.csv): the mean and,
    # in a multi-task run, one curve per task.
    self._logger = logs.make_logger(run_config.run_dir, 'evaluation',
                                    steps_key='learner_steps', time_delta=0)

  def _normalise(self, result: dict) -> None:
    """Adds normalised returns to `result` for tasks with references."""
    by_task = result.get('tasks') or {self._config.task: result}
    scores = []
    for task, task_result in by_task.items():
      if task in self._references:
        task_result['normalized_return'] = round(tasks_lib.normalized(
            task_result['return_mean'], self._references[task]), 2)
        scores.append(task_result['normalized_return'])
    if 'tasks' in result and len(scores) == len(by_task):
      result['normalized_return'] = round(float(np.mean(scores)), 2)

  def _live_actors(self) -> List[int]:
    """Indices of the actors not given up on (see `launchers.supervision`)."""
    workers = supervision.read_workers(self._config.run_dir)
    return [i for i in range(len(self._actors))
            if workers.get(f'actor/{i}', {}).get('state') != 'gone']

  def _ask(self, node, method: str, *args):
    """`node.method(*args)` by Courier, ended by the run's stop (`_Stopped`):
    a plain call to a node that stopped meanwhile would wait forever."""
    return _await(getattr(node.futures, method)(*args))

  def _evaluate(self, round_index: Optional[int] = None,
                start: bool = False) -> dict:
    steps = self._ask(self._learner, 'num_steps')
    result = self._ask(self._evaluator, 'evaluate', self._config.eval_episodes)
    counts = self._ask(self._counter, 'get_counts')
    result.update(learner_steps=steps,
                  actor_steps=int(counts.get('actor_steps', 0)),
                  counter_learner_steps=int(counts.get('learner_steps', 0)),
                  walltime_s=round(time.time() - self._start, 1))
    result.update(_replay_stats(self._replay))
    if round_index is not None:
      result['round'] = round_index
    if start:
      result['start'] = True
    self._normalise(result)
    self._results.append(result)
    with open(self._results_path, 'a') as f:
      f.write(json.dumps(result) + '\n')
    scalars = {'learner_steps': steps, 'return_mean': result['return_mean']}
    for task, task_result in result.get('tasks', {}).items():
      scalars[f'return/{task}'] = task_result['return_mean']
    self._logger.write(scalars)
    prefix = f'[round {round_index}] ' if round_index is not None else ''
    prefix += '[start] ' if start else ''
    per_task = ''
    if 'tasks' in result:
      per_task = ' (' + ', '.join(
          f'{task} {r["return_mean"]:.1f}'
          for task, r in result['tasks'].items()) + ')'
    _status(self._config,
            f'{prefix}[eval] learner_steps={steps} '
            f'actor_steps={result["actor_steps"]} '
            f'return={result["return_mean"]:.1f}±{result["return_std"]:.1f}'
            f'{per_task} ({result["episodes"]} ep'
            f'{" per task" if per_task else ""}) '
            f't={result["walltime_s"]:.0f}s')
    return result

  def _run_steps_schedule(self):
    evaluated = {r['learner_steps'] for r in self._results}
    # The next multiple of eval_every_steps after the learner's current step:
    # a resumed or restored learner does not replay the evaluations it skipped.
    every = self._config.eval_every_steps
    next_eval = (self._ask(self._learner, 'num_steps') // every + 1) * every
    if self._config.restore_from and not self._results:
      # A run from another's model (fine-tuning) first evaluates the model it
      # starts from, with its own episodes: its curve begins where it began,
      # and its first and last returns are measured alike. The learner holds
      # at the restored step until then (see `LearnerNode`).
      evaluated.add(self._evaluate(start=True)['learner_steps'])
      self._ask(self._learner, 'set_step_budget',
                self._config.max_learner_steps)
    while not _stopping():
      # One reading a pass: the learner can reach its end between two, and
      # its last step would be evaluated twice.
      steps = self._ask(self._learner, 'num_steps')
      if steps >= self._config.total_learner_steps:
        if steps not in evaluated:
          self._evaluate()
        return
      if steps >= next_eval:
        evaluated.add(self._evaluate()['learner_steps'])
        next_eval += every
      time.sleep(0.2)

  def _run_rounds(self):
    config = self._config
    done_rounds = {r['round'] for r in self._results if 'round' in r}
    for round_index in range(1, config.rounds + 1):
      if round_index in done_rounds:
        continue
      returns = self._collect(config.episodes_per_round)
      _status(config, f'[round {round_index}] collected {len(returns)} '
              f'episodes, behaviour return {np.mean(returns):.1f}')
      budget = round_index * config.steps_per_round
      self._ask(self._learner, 'set_step_budget', budget)
      while (self._ask(self._learner, 'num_steps') < budget and
             not _stopping()):
        time.sleep(0.2)
      if _stopping():
        return
      self._evaluate(round_index)

  def _collect(self, num_episodes: int) -> List[float]:
    """Returns of >= `num_episodes` episodes, split across the live actors.

    An actor that dies mid-collection is asked again when it restarts (its
    call is retried); the share of one given up on goes to the others.
    """
    returns = []
    while len(returns) < num_episodes:
      live = self._live_actors()
      if not live:  # Every actor is gone; the launcher stops the run.
        lp.wait_for_stop()
        raise _Stopped()
      per_actor = -(-(num_episodes - len(returns)) // len(live))
      pending = {i: self._actors[i].futures.collect(per_actor) for i in live}
      while pending:
        if _stopping():
          raise _Stopped()
        live = self._live_actors()
        for i, future in list(pending.items()):
          if future.done():
            returns.extend(pending.pop(i).result())
          elif i not in live:
            pending.pop(i).cancel()
        time.sleep(0.2)
    return returns

  def _stop_actors(self):
    """Ends the live actors' episodes before the servers they call stop."""
    futures = [self._actors[i].futures.stop() for i in self._live_actors()]
    for future in futures:
      try:
        _await(future, timeout=30)
      except (TimeoutError, _Stopped):
        pass  # It died or is stopping by itself; the stop reaches it too.

  def run(self):
    try:
      if self._config.mode == 'selfimprove':
        self._run_rounds()
      else:
        self._run_steps_schedule()
    except _Stopped:
      pass
    if not _stopping():
      self._finish()
      _write_atomic(self._config.path(FINISHED_FILE), 'finished\n')
    self._stop_actors()
    lp.stop()

  def _finish(self):
    table = plotting.results_table(self._results, self._config.mode)
    plotting.plot_eval_returns(self._results,
                               self._config.path('eval_return.png'),
                               title=f'PAC {self._config.mode} on '
                               f'{self._config.task}')
    faults = [f'{label} died {len(w["deaths"])} time(s), restarted '
              f'{w["restarts"]}, now {w["state"]}'
              for label, w in sorted(supervision.read_workers(
                  self._config.run_dir).items()) if w['deaths']]
    if faults:
      table += '\n\nFaults: ' + '; '.join(faults) + '.'
    with open(self._config.path('results.md'), 'w') as f:
      f.write(table + '\n')
    _status(self._config, table)
    _status(self._config, f'[done] results in {self._config.run_dir}')


def make_builder(run_config: config_lib.RunConfig,
                 offline_sizes: Optional[Dict[str, int]]
                 ) -> builder_lib.PACBuilder:
  """The agent builder for this run's nodes, with run-directory loggers.

  `offline_sizes`: transitions of each offline table (`config.preflight`);
  in a multi-task run each table's sampling weight is its task's share
  (`RunConfig.task_mixing`).
  """
  offline_tables = None
  if offline_sizes:
    by_task = {task: offline_sizes[tasks_lib.offline_table(run_config, task)]
               for task in run_config.tasks}
    weights = run_config.task_weights(by_task)
    offline_tables = {tasks_lib.offline_table(run_config, task):
                      (size, weights[task]) for task, size in by_task.items()}
  return builder_lib.PACBuilder(
      run_config.agent,
      logger_factory=lambda label: logs.make_logger(
          run_config.run_dir, label, steps_key=f'{label}_steps'),
      offline_tables=offline_tables,
      rate_limit_online=run_config.mode == 'finetune')


def _replay_stats(client: reverb.Client) -> Dict[str, int]:
  """Size and completed samples of each table, as Reverb reports them."""
  stats = {}
  for name, info in client.server_info().items():
    stats[f'{name}_size'] = int(info.current_size)
    stats[f'{name}_sampled'] = int(
        info.rate_limiter_info.sample_stats.completed)
    stats[f'{name}_inserted'] = int(
        info.rate_limiter_info.insert_stats.completed)
  return stats


def _status(run_config: config_lib.RunConfig, line: str):
  """One readable line: printed, and appended to `<run_dir>/status.log`."""
  print(line, flush=True)
  with open(run_config.path(STATUS_FILE), 'a') as f:
    f.write(line + '\n')


def _write_atomic(path: str, text: str) -> None:
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def _read_jsonl(path: str) -> List[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
