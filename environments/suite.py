"""dm_control suite tasks as dm-env environments with one set of conventions.

Tasks are named `<domain>_<task>` (`cartpole_swingup`, `ball_in_cup_catch`,
`humanoid_CMU_stand`), derived from `dm_control.suite.ALL_TASKS`. Names are
matched exactly, never split on `_`: domains themselves contain underscores.
Any task with `_pixels` appended (`cartpole_swingup_pixels`) also observes
`pixels`, uint8 [64, 64, 3], rendered headless (MUJOCO_GL=egl) from camera 0.

Every environment returned by `make_environment` has
  * observations: a dict keeping the suite's names, each a float32 array; scalar
    entries become shape (1,), other shapes are unchanged;
  * actions: float32, shape [A], bounded by [-1, 1]; +-1 maps to the physical
    max/min of the task's actuators, out-of-range values are clipped;
  * rewards: float32 scalars; discounts: float32 scalars in [0, 1] (suite tasks
    end by time limit, so the last discount is 1, not 0).

dm_control is imported inside functions so that `import environments` stays cheap.
"""

import difflib
import functools
from typing import Dict, List, Tuple

from acme import specs as acme_specs
import dm_env

from environments import errors
from environments import wrappers

# Domains left out, and why (reported when someone asks for one of their tasks).
_EXCLUDED_DOMAINS = {
    'lqr': ('its actions are effectively unbounded (+-1e10), so they cannot be '
            'rescaled to [-1, 1], and its episodes never end'),
}


PIXELS_SUFFIX = '_pixels'
# What a pixel task renders: small frames, cheap on a CPU (~20 ms a step).
PIXELS_RENDER = {'height': 64, 'width': 64, 'camera_id': 0}

# Named sets of tasks, usable wherever a list of tasks is (`--task`).
TASK_SETS = {
    # Four tasks of increasing difficulty, 1 to 6 action dimensions.
    'control_small': ('cartpole_swingup', 'finger_spin', 'walker_walk',
                      'cheetah_run'),
}


@functools.lru_cache(maxsize=None)
def _task_table() -> Dict[str, Tuple[str, str]]:
  """Maps every `<domain>_<task>` name (exclusions included) to its pair."""
  from dm_control import suite  # pylint: disable=g-import-not-at-top
  table = {}
  for domain, task in suite.ALL_TASKS:
    name = f'{domain}_{task}'
    if name in table:  # Guards future suite versions against ambiguity.
      raise RuntimeError(f'Task name {name!r} is ambiguous in dm_control.')
    table[name] = (domain, task)
  return table


def list_tasks() -> List[str]:
  """Returns the sorted names of every task `make_environment` accepts."""
  return sorted(name for name, (domain, _) in _task_table().items()
                if domain not in _EXCLUDED_DOMAINS)


def is_pixel_task(task: str) -> bool:
  return task.endswith(PIXELS_SUFFIX)


def parse_task(task: str) -> Tuple[str, str]:
  """Returns `(domain, task)` for a task name (a pixel task's base task's),
  or raises `UnknownTaskError`."""
  if is_pixel_task(task):
    task = task[:-len(PIXELS_SUFFIX)]
  table = _task_table()
  if task in table:
    domain, _ = table[task]
    if domain in _EXCLUDED_DOMAINS:
      raise errors.UnknownTaskError(
          f'Task {task!r} is not supported: {_EXCLUDED_DOMAINS[domain]}.')
    return table[task]
  known = list_tasks()
  close = difflib.get_close_matches(task, known, n=5, cutoff=0.6)
  hint = f' Did you mean: {", ".join(close)}?' if close else ''
  raise errors.UnknownTaskError(
      f'Unknown task {task!r}.{hint} Tasks are named <domain>_<task> after '
      f'dm_control.suite.ALL_TASKS; environments.list_tasks() or '
      f'`python -m environments.generate --list-tasks` lists all {len(known)}.')


def resolve_tasks(tasks: str) -> Tuple[str, ...]:
  """'a,b' or the name of a task set -> its distinct, checked task names.

  Raises:
    UnknownTaskError: for an empty list, a repeated or an unknown task.
  """
  if tasks in TASK_SETS:
    return TASK_SETS[tasks]
  names = tuple(name.strip() for name in tasks.split(','))
  if not all(names):
    raise errors.UnknownTaskError(
        f'Task list {tasks!r} has an empty entry; give task names separated '
        f'by commas, or one of the task sets {sorted(TASK_SETS)}.')
  repeated = sorted({name for name in names if names.count(name) > 1})
  if repeated:
    raise errors.UnknownTaskError(
        f'Task list {tasks!r} repeats {", ".join(repeated)}.')
  for name in names:
    parse_task(name)
  return names


def make_environment(task: str, seed: int) -> dm_env.Environment:
  """Builds the suite task `task` with the conventions in the module docstring.

  Args:
    task: a name from `list_tasks()`, e.g. 'cartpole_swingup', or one with
      `_pixels` appended (adds rendered `pixels`, see the module docstring).
    seed: seeds the task's initial-state randomness; equal seeds and equal
      actions give equal episodes.

  Returns:
    A dm-env environment. Unknown attributes are forwarded to the dm_control
    environment inside, so `env.physics` and `env.task` work.

  Raises:
    UnknownTaskError: for a name that is not a supported task.
  """
  domain, task_name = parse_task(task)
  from dm_control import suite  # pylint: disable=g-import-not-at-top
  environment = suite.load(domain, task_name, task_kwargs={'random': seed})
  if is_pixel_task(task):
    from dm_control.suite.wrappers import pixels  # pylint: disable=g-import-not-at-top
    environment = pixels.Wrapper(environment, pixels_only=False,
                                 render_kwargs=PIXELS_RENDER)
  return wrappers.Float32Wrapper(wrappers.CanonicalActionWrapper(environment))


def environment_spec(env: dm_env.Environment) -> acme_specs.EnvironmentSpec:
  """Returns the Acme `EnvironmentSpec` of `env` (all four specs)."""
  return acme_specs.make_environment_spec(env)
