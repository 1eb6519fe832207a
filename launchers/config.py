"""`RunConfig`: what one Launchpad run does, validated before any node starts.

Everything that can be checked from the launching process is checked here: the
mode, the task name, the dataset (exists, is readable, matches the task's
specs), the agent config, and the counts. A bad run therefore fails in a second
with one message, instead of as a traceback from a worker process minutes later.
"""

import dataclasses
import os
from typing import Dict, Mapping, Optional, Tuple

from agents.pac import config as pac_config
from environments import suite
from launchers import placement
from launchers import tasks as tasks_lib

MODES = ('offline', 'finetune', 'selfimprove')
TASK_MIXING = ('uniform', 'proportional')
ACTOR_TASKS = ('cycle', 'split')


class RunConfigError(ValueError):
  """A run configuration that cannot work; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One run of the PAC system.

  Attributes:
    mode: 'offline' (learner on the dataset, no actors), 'finetune' (actors on,
      online data mixed in with `agent.online_fraction` and its schedule) or
      'selfimprove' (rounds of collect, train, evaluate).
    task: dm_control suite task, e.g. 'cartpole_swingup'; or several,
      comma-separated, or a task set (`environments.suite.TASK_SETS`, e.g.
      'control_small'): one model learns them all, on one padded spec with a
      task id (`launchers.tasks`).
    run_dir: holds CSV logs, TensorBoard events, checkpoints, plots. Reusing a
      run directory resumes from its last checkpoint.
    dataset: RLDS dataset directory (from `python -m environments.generate`),
      or several, comma-separated; a directory of datasets (a run's
      `episodes/`) stands for all of them. Required except in selfimprove
      mode, which may start from no data. With several tasks, each dataset
      goes to the task its metadata names, and every task needs one.
    task_mixing: how a multi-task batch's offline rows are shared among
      tasks: 'uniform' (equal rows per task), 'proportional' (to each task's
      transitions), or weights, 'cartpole_swingup=2,walker_walk=1'. Exact
      per batch (each task gets floor or ceil of its share; `replay.apportion`).
    actor_tasks: in a multi-task run with actors, 'cycle' (every actor plays
      the tasks in turn, actor i starting at task i) or 'split' (actor i plays
      task i mod the number of tasks only; needs an actor per task).
    agent: the PAC agent's configuration.
    num_actors: actor processes (finetune and selfimprove).
    max_learner_steps: the run stops when the learner reaches this step
      (offline and finetune; selfimprove runs `rounds * steps_per_round`).
    eval_every_steps: learner steps between evaluations.
    eval_episodes: evaluation episodes per evaluation.
    checkpoint_every_s: seconds between learner and counter checkpoints (a
      final one is always written at stop).
    rounds, episodes_per_round, steps_per_round: the selfimprove schedule;
      episodes are split across actors.
    restore_from: optional run directory of an earlier (e.g. offline) run whose
      learner checkpoint initialises this one (finetune from an offline model).
    seed: the run's seed; each node (loader, learner, evaluator, actors)
      gets its own, one split of it (`program.node_seeds`).
    learner_cpu_threads: XLA compute threads of the learner process when it
      runs on the CPU (local_mp). 1 is fastest for small models on a few
      cores (ops this small lose more to thread hand-offs than they gain);
      raise it for large models on many cores.
    learner_device: 'auto' (the learner takes a GPU if JAX has one), 'cpu',
      or 'gpu' (refused before any node starts unless JAX's CUDA plugin is
      installed). Every other node computes on the CPU and sees no GPU
      (local_mp; `launchers.placement`).
    actor_cpu_threads: XLA compute threads of each actor and the evaluator
      (local_mp); the other CPU nodes get 1.
    actor_niceness: CPU priority offset of actor processes (local_mp; 0-19,
      higher yields more). Where actors and the learner share cores, the
      learner is the bottleneck and actors get the cycles it leaves.
    record_episodes: actors write the episodes they play to
      `<run_dir>/episodes/` as datasets (see `launchers.recording`).
    record_every_episodes: episodes per recorded dataset; a killed actor
      loses at most the ones of its open dataset.
    max_restarts: times a dead actor or evaluator process is restarted
      (local_mp; per node). When every actor, or the evaluator, has died more
      often than this, the run stops with its checkpoints.
  """
  mode: str
  task: str
  run_dir: str
  dataset: Optional[str] = None
  task_mixing: str = 'uniform'
  actor_tasks: str = 'cycle'
  agent: pac_config.PACConfig = dataclasses.field(
      default_factory=pac_config.PACConfig)
  num_actors: int = 1
  max_learner_steps: int = 1000
  eval_every_steps: int = 250
  eval_episodes: int = 2
  checkpoint_every_s: float = 60.0
  rounds: int = 3
  episodes_per_round: int = 4
  steps_per_round: int = 500
  restore_from: Optional[str] = None
  seed: int = 0
  learner_cpu_threads: int = 1
  learner_device: str = 'auto'
  actor_cpu_threads: int = 1
  actor_niceness: int = 10
  max_restarts: int = 3
  record_episodes: bool = True
  record_every_episodes: int = 10

  def __post_init__(self):
    _require(self.mode in MODES, 'mode', self.mode,
             f'one of {", ".join(MODES)}')
    _require(bool(self.run_dir), 'run_dir', self.run_dir, 'a directory path')
    _require(not os.path.exists(self.run_dir) or os.path.isdir(self.run_dir),
             'run_dir', self.run_dir,
             'a directory, but a file has that name; choose another path')
    for name in ('max_learner_steps', 'eval_every_steps', 'eval_episodes',
                 'rounds', 'episodes_per_round', 'steps_per_round',
                 'record_every_episodes'):
      value = getattr(self, name)
      _require(isinstance(value, int) and value >= 1, name, value,
               'an integer >= 1')
    for name in ('learner_cpu_threads', 'actor_cpu_threads'):
      value = getattr(self, name)
      _require(isinstance(value, int) and value >= 1, name, value,
               'an integer >= 1')
    _require(self.learner_device in placement.LEARNER_DEVICES,
             'learner_device', self.learner_device,
             f'one of {", ".join(placement.LEARNER_DEVICES)}')
    _require(isinstance(self.actor_niceness, int) and
             0 <= self.actor_niceness <= 19, 'actor_niceness',
             self.actor_niceness, 'an integer in [0, 19]')
    _require(isinstance(self.max_restarts, int) and self.max_restarts >= 0,
             'max_restarts', self.max_restarts, 'an integer >= 0')
    _require(isinstance(self.num_actors, int) and self.num_actors >= 0,
             'num_actors', self.num_actors, 'an integer >= 0')
    _require(self.checkpoint_every_s > 0, 'checkpoint_every_s',
             self.checkpoint_every_s, 'a positive number of seconds')
    _require(self.task_mixing in TASK_MIXING or self.multitask and
             self._mixing_weights() is not None, 'task_mixing',
             self.task_mixing, f'one of {", ".join(TASK_MIXING)}, or a weight '
             'above 0 for each task: ' + ','.join(f'{t}=1' for t in self.tasks))
    pixels = [t for t in self.tasks if suite.is_pixel_task(t)]
    # dm_control binds a task's EGL context to the thread that first
    # rendered it, and the evaluator (and selfimprove's actors) play in
    # Courier's threads; the agent itself takes pixels (tests/agents/pac/
    # test_pixels.py).
    _require(not pixels, 'task', self.task,
             'tasks without `_pixels` in a Launchpad run (pixel tasks work '
             'with the agent and in your own loop, not yet in this program: '
             f'{", ".join(pixels)})')
    _require(self.actor_tasks in ACTOR_TASKS, 'actor_tasks', self.actor_tasks,
             f'one of {", ".join(ACTOR_TASKS)}')
    if self.multitask and self.actor_tasks == 'split' and self.uses_actors:
      _require(self.num_actors >= len(self.tasks), 'num_actors',
               self.num_actors, f'>= {len(self.tasks)} with actor_tasks=split '
               '(one actor per task at least), or actor_tasks=cycle')
    if self.mode in ('finetune', 'selfimprove'):
      _require(self.num_actors >= 1, 'num_actors', self.num_actors,
               f'>= 1 in {self.mode} mode (actors collect the online data)')
    if self.mode in ('offline', 'finetune'):
      _require(self.dataset is not None, 'dataset', self.dataset,
               f'a dataset directory in {self.mode} mode; make one with '
               '`python -m environments.generate --task ... --out ...`')
    if self.mode == 'offline':
      _require(self.agent.online_fraction == 0, 'agent.online_fraction',
               self.agent.online_fraction,
               '0 in offline mode (there are no actors to fill the online '
               'table); use --mode=finetune to mix in online data')
    if self.mode == 'finetune':
      _require(self.agent.online_fraction > 0, 'agent.online_fraction',
               self.agent.online_fraction,
               '> 0 in finetune mode, or the actors\' data is never used')
    if self.mode == 'selfimprove' and self.dataset is None:
      _require(self.agent.online_fraction == 1.0, 'agent.online_fraction',
               self.agent.online_fraction,
               '1.0 in selfimprove mode without a dataset (all data is '
               'collected online)')

  @property
  def tasks(self) -> Tuple[str, ...]:
    """The run's task names, as given (`preflight` checks they exist)."""
    if self.task in suite.TASK_SETS:
      return suite.TASK_SETS[self.task]
    return tuple(name.strip() for name in self.task.split(','))

  @property
  def multitask(self) -> bool:
    return len(self.tasks) > 1

  def _mixing_weights(self) -> Optional[Dict[str, float]]:
    """The weights of a 'task=w,...' `task_mixing`; None if it is not one."""
    weights = {}
    for entry in self.task_mixing.split(','):
      name, _, value = entry.partition('=')
      try:
        weights[name.strip()] = float(value)
      except ValueError:
        return None
    if set(weights) != set(self.tasks) or min(weights.values()) <= 0:
      return None
    return weights

  def task_weights(self, transitions: Mapping[str, int]) -> Dict[str, float]:
    """Each task's share of a batch's offline rows (summing to 1), given
    each task's offline transitions."""
    if self.task_mixing == 'uniform':
      weights = {task: 1.0 for task in self.tasks}
    elif self.task_mixing == 'proportional':
      weights = {task: float(transitions[task]) for task in self.tasks}
    else:
      weights = self._mixing_weights()
    total = sum(weights.values())
    return {task: weights[task] / total for task in self.tasks}

  def actor_visit(self, actor_id: int) -> Tuple[str, ...]:
    """The tasks actor `actor_id` plays, in order (see `actor_tasks`)."""
    tasks = self.tasks
    first = actor_id % len(tasks)
    if self.actor_tasks == 'split':
      return (tasks[first],)
    return tasks[first:] + tasks[:first]

  @property
  def total_learner_steps(self) -> int:
    if self.mode == 'selfimprove':
      return self.rounds * self.steps_per_round
    return self.max_learner_steps

  @property
  def uses_offline_data(self) -> bool:
    return self.dataset is not None

  @property
  def uses_actors(self) -> bool:
    return self.mode != 'offline'

  def path(self, *parts: str) -> str:
    return os.path.join(self.run_dir, *parts)


def _require(ok: bool, field: str, value, allowed: str) -> None:
  if not ok:
    raise RunConfigError(f'Invalid run config: {field}={value!r}; expected '
                         f'{allowed}.')


def preflight(config: RunConfig
              ) -> Tuple[object, Optional[Dict[str, int]]]:
  """Checks the tasks and datasets; returns (environment spec, transitions
  of each offline table).

  Builds the run's environment (to get its spec) and opens each dataset (to
  check its spec against its task's and count its transitions), so that every
  error a worker would hit on its inputs is raised here, in the launching
  process. The offline tables are `offline`, or one per task in a
  multi-task run (`launchers.tasks.offline_table`); None without a dataset.
  """
  # Imported here: environments pulls in dm_control only when used.
  import environments  # pylint: disable=g-import-not-at-top
  from acme import specs  # pylint: disable=g-import-not-at-top

  if config.learner_device == 'gpu' and not placement.cuda_available():
    raise RunConfigError(
        'learner_device=gpu, but JAX here has no CUDA support; install it '
        '(pip install "jax[cuda12]==<the pinned jax version>") or use '
        '--learner_device=auto or cpu.')
  try:
    environments.resolve_tasks(config.task)
    environment = tasks_lib.make_environment(config, seed=config.seed)
  except environments.UnknownTaskError as e:
    raise RunConfigError(str(e)) from e
  spec = specs.make_environment_spec(environment)
  # Each task's own spec, which its datasets are checked against.
  task_specs = ({task: specs.make_environment_spec(
      environment.task_environment(task)) for task in config.tasks}
                if config.multitask else {config.task: spec})
  environment.close()

  sizes = None
  if config.dataset is not None:
    try:
      by_task = tasks_lib.datasets_by_task(config)
    except environments.DatasetError as e:
      raise RunConfigError(f'Dataset cannot be used: {e}') from e
    for task, datasets in by_task.items():
      if task not in task_specs:
        raise RunConfigError(
            f'Dataset {datasets[0].path!r} holds task {task!r}, which is not '
            f'one of this run\'s tasks ({", ".join(config.tasks)}); drop it '
            'from --dataset or add the task to --task.')
    sizes = {}
    for task, datasets in by_task.items():
      for dataset in datasets:
        try:
          dataset.check_spec(task_specs[task])
        except environments.DatasetError as e:
          raise RunConfigError(
              f'Dataset {dataset.path!r} cannot be used for task {task!r}: '
              f'{e}') from e
      if not datasets:
        raise RunConfigError(
            f'Task {task!r} has no dataset among --dataset={config.dataset}; '
            f'every task of a multi-task run needs one (make it with '
            f'`python -m environments.generate --task {task} ...`).')
      sizes[tasks_lib.offline_table(config, task)] = sum(
          d.num_nstep_transitions(config.agent.n_step) for d in datasets)
    total = sum(sizes.values())
    if total < config.agent.min_replay_size:
      raise RunConfigError(
          f'Dataset {config.dataset!r} has {total} transitions, '
          f'fewer than agent.min_replay_size={config.agent.min_replay_size}; '
          'generate more episodes or lower min_replay_size.')
  if config.restore_from is not None and not os.path.isdir(
      os.path.join(config.restore_from, 'checkpoints', 'learner')):
    raise RunConfigError(
        f'restore_from={config.restore_from!r} holds no learner checkpoint '
        f'(expected {config.restore_from}/checkpoints/learner).')
  return spec, sizes
