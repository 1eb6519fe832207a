"""The tasks of a run: its environment, its datasets by task, its references.

A run has one task (`--task=cartpole_swingup`) or several
(`--task=cartpole_swingup,walker_walk`, or a task set such as
`control_small`). With several, every node sees one environment,
`environments.MultiTaskEnvironment`, whose spec pads all tasks to one shape
(with masks and a task id), and each task's datasets fill the task's own
offline table (`replay.offline_table(task)`); with one, nothing is padded and
the one table is `offline`, as in a single-task run of any version.
"""

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import dm_env

if TYPE_CHECKING:  # config.py imports this module for its preflight.
  from launchers import config as config_lib  # pylint: disable=g-bad-import-order


def make_environment(config: 'config_lib.RunConfig', seed: int,
                     visit: Optional[Sequence[str]] = None
                     ) -> dm_env.Environment:
  """The run's environment; in a multi-task run, playing the tasks of
  `visit` in turn (default: all, in the run's order)."""
  import environments  # pylint: disable=g-import-not-at-top
  if config.multitask:
    return environments.MultiTaskEnvironment(config.tasks, seed, mode='cycle',
                                             visit=visit)
  return environments.make_environment(config.task, seed=seed)


def datasets_by_task(config: 'config_lib.RunConfig') -> Dict[str, List[object]]:
  """The run's datasets (opened, nothing decoded), by the task they hold.

  In a single-task run every dataset counts as the run's task (its spec is
  what `config.preflight` checks); in a multi-task run each dataset's own
  metadata says its task.

  Raises:
    environments.DatasetError: a dataset that cannot be opened.
  """
  import environments  # pylint: disable=g-import-not-at-top
  by_task: Dict[str, List[object]] = {task: [] for task in config.tasks}
  if config.dataset is None:
    return by_task
  for path in environments.dataset_paths(config.dataset):
    dataset = environments.load_dataset(path)
    task = dataset.task if config.multitask else config.task
    by_task.setdefault(task, []).append(dataset)
  return by_task


def offline_table(config: 'config_lib.RunConfig', task: str) -> str:
  """The Reverb table that holds `task`'s offline data in this run."""
  # Imported here: Reverb and TensorFlow load only in the nodes that use them.
  from agents.pac import replay  # pylint: disable=g-import-not-at-top
  return replay.offline_table(task if config.multitask else None)


def reference_returns(config: 'config_lib.RunConfig'
                      ) -> Dict[str, Dict[str, float]]:
  """{task: {'random': R, 'expert': R}} for the tasks whose datasets hold
  episodes of both policies: the ends of a normalised return (0 = random,
  100 = expert)."""
  import environments  # pylint: disable=g-import-not-at-top
  references = {}
  for task, datasets in datasets_by_task(config).items():
    returns = environments.policy_returns(datasets)
    if 'random' in returns and 'expert' in returns:
      references[task] = {'random': returns['random'],
                          'expert': returns['expert']}
  return references


def normalized(value: float, references: Dict[str, float]) -> float:
  """`value` on the scale 0 = random, 100 = expert."""
  span = references['expert'] - references['random']
  return 100.0 * (value - references['random']) / span if span else 0.0
