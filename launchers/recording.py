"""Actors record the episodes they play, as datasets a later run can train on.

Self-improvement is collecting episodes with the current policy, adding them
to the data and training again; across runs that needs the episodes on disk.
`EpisodeRecorder` is an Acme `EnvLoopObserver` on an actor's loop: each whole
episode goes to an `environments.EpisodeWriter` (the format and metadata of
`python -m environments.generate`, policy name 'pac', each episode with the
learner's step when it ended), and every `record_every_episodes` episodes
that dataset is closed and the next one begun, under
`<run_dir>/episodes/actor_<i>_<start time>_<pid>_<k>`. `--dataset` accepts
that `episodes/` directory (all of its datasets), alone or after others.

In a multi-task run each task's episodes go to datasets of that task, in the
task's own spec (`..._<task>_<k>`), so a later run, with one task or
several, can use them like any dataset of the task.

What a fault can lose: a stop (Ctrl-C, SIGTERM, the run's end) closes the
open dataset, so only the unfinished episode is dropped; a killed actor also
loses the episodes of its open dataset (fewer than `record_every_episodes`).
"""

import os
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

from acme import specs
from acme.utils import observers
import dm_env
import numpy as np

from launchers import config as config_lib

EPISODES_DIR = 'episodes'


class EpisodeRecorder(observers.EnvLoopObserver):
  """Writes each finished episode of one actor's loop to its datasets.

  Args:
    run_config: the run (its directory, task and `record_every_episodes`).
    actor_id: which actor (in the dataset names and metadata).
    spec: the actor environment's spec.
    learner_step: returns the learner's current step (stored per episode).
  """

  def __init__(self, run_config: config_lib.RunConfig, actor_id: int,
               spec: specs.EnvironmentSpec, learner_step: Callable[[], int]):
    self._config = run_config
    self._actor_id = actor_id
    self._spec = spec
    self._learner_step = learner_step
    self._prefix = os.path.join(
        run_config.path(EPISODES_DIR),
        f'actor_{actor_id}_{time.strftime("%Y%m%dT%H%M%S")}_{os.getpid()}')
    self._lock = threading.Lock()  # `collect` calls and `close` may overlap.
    self._writers: Dict[str, Tuple[Any, str]] = {}  # task: (writer, path)
    self._opened: Dict[str, int] = {}  # task: datasets begun
    self._closed = False
    self.datasets: List[str] = []  # Closed ones.
    self.episodes = 0  # In closed datasets.
    self._timesteps: List[dm_env.TimeStep] = []
    self._actions: List[np.ndarray] = []

  def observe_first(self, env: dm_env.Environment, timestep: dm_env.TimeStep):
    del env
    self._timesteps, self._actions = [timestep], []

  def observe(self, env: dm_env.Environment, timestep: dm_env.TimeStep,
              action: np.ndarray):
    self._timesteps.append(timestep)
    self._actions.append(np.array(action))
    if timestep.last():
      self._write(env)

  def get_metrics(self):
    return {}

  def _write(self, env: dm_env.Environment):
    import environments  # pylint: disable=g-import-not-at-top
    step = self._learner_step()
    task, spec = self._config.task, self._spec
    timesteps, actions = self._timesteps, self._actions
    if self._config.multitask:  # Back to the task's own spec.
      task = env.current_task
      spec = specs.make_environment_spec(env.task_environment(task))
      timesteps = [t._replace(observation=env.unpad_observation(
          task, t.observation)) for t in timesteps]
      actions = [env.task_action(task, a) for a in actions]
    with self._lock:
      if self._closed:
        return
      if task not in self._writers:
        count = self._opened.get(task, 0)
        self._opened[task] = count + 1
        path = (f'{self._prefix}_{task}_{count:03d}' if self._config.multitask
                else f'{self._prefix}_{count:03d}')
        self._writers[task] = (environments.EpisodeWriter(
            path, task, spec, policy='pac',
            description=f'PAC actor {self._actor_id} sampling its policy '
            '(the learner step when each episode ended: learner_step)',
            seed=self._config.seed, run_dir=os.path.abspath(
                self._config.run_dir), actor=self._actor_id), path)
      writer, _ = self._writers[task]
      writer.add(timesteps, actions, learner_step=step)
      if writer.num_episodes >= self._config.record_every_episodes:
        self._close_writer(task)

  def _close_writer(self, task: str):
    writer, path = self._writers.pop(task)
    count = writer.num_episodes
    if writer.close() is not None:
      self.datasets.append(path)
      self.episodes += count

  def close(self):
    """Closes the open datasets; episodes ending later are not recorded."""
    with self._lock:
      self._closed = True
      for task in list(self._writers):
        self._close_writer(task)
