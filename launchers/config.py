"""`RunConfig`: what one Launchpad run does, validated before any node starts.

Everything that can be checked from the launching process is checked here: the
mode, the task name, the dataset (exists, is readable, matches the task's
specs), the agent config, and the counts. A bad run therefore fails in a second
with one message, instead of as a traceback from a worker process minutes later.
"""

import dataclasses
import os
from typing import Optional, Tuple

from agents.pac import config as pac_config
from launchers import placement

MODES = ('offline', 'finetune', 'selfimprove')


class RunConfigError(ValueError):
  """A run configuration that cannot work; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One run of the PAC system.

  Attributes:
    mode: 'offline' (learner on the dataset, no actors), 'finetune' (actors on,
      online data mixed in with `agent.online_fraction` and its schedule) or
      'selfimprove' (rounds of collect, train, evaluate).
    task: dm_control suite task, e.g. 'cartpole_swingup'.
    run_dir: holds CSV logs, TensorBoard events, checkpoints, plots. Reusing a
      run directory resumes from its last checkpoint.
    dataset: RLDS dataset directory (from `python -m environments.generate`),
      or several, comma-separated; a directory of datasets (a run's
      `episodes/`) stands for all of them. Required except in selfimprove
      mode, which may start from no data.
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


def preflight(config: RunConfig) -> Tuple[object, Optional[int]]:
  """Checks the task and dataset; returns (environment spec, dataset size).

  Builds one environment (to get the task's spec) and opens the dataset (to
  check its spec against it and count its transitions), so that every error a
  worker would hit on its inputs is raised here, in the launching process.
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
    environment = environments.make_environment(config.task, seed=config.seed)
  except environments.UnknownTaskError as e:
    raise RunConfigError(str(e)) from e
  spec = specs.make_environment_spec(environment)
  environment.close()

  num_transitions = None
  if config.dataset is not None:
    num_transitions = 0
    for path in environments.dataset_paths(config.dataset):
      try:
        dataset = environments.load_dataset(path)
        dataset.check_spec(spec)
      except environments.DatasetError as e:
        raise RunConfigError(
            f'Dataset {path!r} cannot be used for task {config.task!r}: '
            f'{e}') from e
      num_transitions += dataset.num_nstep_transitions(config.agent.n_step)
    if num_transitions < config.agent.min_replay_size:
      raise RunConfigError(
          f'Dataset {config.dataset!r} has {num_transitions} transitions, '
          f'fewer than agent.min_replay_size={config.agent.min_replay_size}; '
          'generate more episodes or lower min_replay_size.')
  if config.restore_from is not None and not os.path.isdir(
      os.path.join(config.restore_from, 'checkpoints', 'learner')):
    raise RunConfigError(
        f'restore_from={config.restore_from!r} holds no learner checkpoint '
        f'(expected {config.restore_from}/checkpoints/learner).')
  return spec, num_transitions
