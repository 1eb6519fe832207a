"""Several suite tasks behind one dm-env interface with one fixed spec.

A single network serving several tasks needs inputs and outputs of one shape. On
every reset this environment picks a task (in order, or uniformly at random) and
from then on presents it padded to the largest task:

  observation = {
    'proprio':      float32 [P_max]  the task's observation dict flattened in
                                     sorted-key order, zero-padded,
    'proprio_mask': float32 [P_max]  1 for real entries, 0 for padding,
    'action_mask':  float32 [A_max]  1 for the task's real action dims,
    'task_id':      int32   []       index of the current task in `tasks`,
  }
  action: float32 [A_max] in [-1, 1]; only the first A_task dims are used.

The agent's network relies on these key names: `proprio_mask` masks input tokens,
`action_mask` masks policy dims, `task_id` is embedded.
"""

from typing import Dict, List, Optional, Sequence

from acme import types
import dm_env
from dm_env import specs
import numpy as np

from environments import suite

_MODES = ('cycle', 'sample')


def _flat_size(observation_spec: Dict[str, specs.Array]) -> int:
  return sum(int(np.prod(spec.shape)) for spec in observation_spec.values())


class MultiTaskEnvironment(dm_env.Environment):
  """Switches between suite tasks on reset; pads to one shared spec."""

  def __init__(self, tasks: Sequence[str], seed: int, mode: str = 'cycle',
               visit: Optional[Sequence[str]] = None):
    """Builds one environment per task.

    Args:
      tasks: distinct task names (see `suite.list_tasks()`); `task_id` indexes
        it, and the spec covers all of them.
      seed: seeds every task (each gets its own derived seed) and, in 'sample'
        mode, the task choice.
      mode: 'cycle' visits the tasks in order starting with the first;
        'sample' draws one uniformly at every reset.
      visit: the tasks episodes are played in, in order (default: `tasks`),
        e.g. one actor of a multi-task run that plays one task, or starts the
        cycle at another.

    Raises:
      ValueError: for an empty or repeated task list, an unknown mode, or a
        `visit` task not in `tasks`.
      UnknownTaskError: for a task name that does not exist.
    """
    if not tasks:
      raise ValueError('MultiTaskEnvironment needs at least one task.')
    if len(set(tasks)) != len(tasks):
      raise ValueError(f'Tasks must be distinct, got {list(tasks)}.')
    if mode not in _MODES:
      raise ValueError(f'Unknown mode {mode!r}; expected one of {_MODES}.')
    visit = tuple(tasks if visit is None else visit)
    if not visit or not set(visit) <= set(tasks):
      raise ValueError(f'visit={list(visit)} must be a non-empty subset of '
                       f'the tasks {list(tasks)}.')
    self._tasks = tuple(tasks)
    self._visit = [self._tasks.index(task) for task in visit]
    self._visited = -1  # Position in `_visit` of the current episode.
    self._mode = mode
    task_seeds, choice_seed = np.random.SeedSequence(seed).spawn(2)
    env_seeds = task_seeds.generate_state(len(tasks))
    self._envs = [suite.make_environment(task, int(s))
                  for task, s in zip(self._tasks, env_seeds)]
    self._rng = np.random.default_rng(choice_seed)
    self._specs = [env.observation_spec() for env in self._envs]
    for task, spec in zip(self._tasks, self._specs):
      if any(len(entry.shape) == 3 for entry in spec.values()):
        raise ValueError(f'{task} observes images; MultiTaskEnvironment pads '
                         'flat observations only.')
    self._keys = [sorted(spec) for spec in self._specs]
    self._proprio_sizes = [_flat_size(spec) for spec in self._specs]
    self._action_sizes = [env.action_spec().shape[0] for env in self._envs]
    self._proprio_max = max(self._proprio_sizes)
    self._action_max = max(self._action_sizes)
    self._task_id = -1  # No task until the first reset.
    self._reset_next_step = True

  @property
  def tasks(self) -> List[str]:
    return list(self._tasks)

  @property
  def task_id(self) -> int:
    """Index of the current task in `tasks`; -1 before the first reset."""
    return self._task_id

  @property
  def current_task(self) -> str:
    if self._task_id < 0:
      raise RuntimeError('No current task before the first reset().')
    return self._tasks[self._task_id]

  def _next_task_id(self) -> int:
    if self._mode == 'cycle':
      self._visited = (self._visited + 1) % len(self._visit)
    else:
      self._visited = int(self._rng.integers(len(self._visit)))
    return self._visit[self._visited]

  def _pad_observation(self, task_id: int,
                       observation: Dict[str, np.ndarray]
                       ) -> Dict[str, np.ndarray]:
    """Task `task_id`'s observation [..., own shapes] in the shared spec
    [..., P_max] etc.; any leading (batch) dims are kept."""
    keys = self._keys[task_id]
    first = np.shape(observation[keys[0]])  # [..., own shape]
    lead = first[:len(first) - len(self._specs[task_id][keys[0]].shape)]
    flat = np.concatenate([np.reshape(observation[key], lead + (-1,))
                           for key in keys], axis=-1)  # [..., P_i]
    size = flat.shape[-1]
    proprio = np.zeros(lead + (self._proprio_max,), np.float32)  # [..., P]
    proprio[..., :size] = flat
    proprio_mask = np.zeros(lead + (self._proprio_max,), np.float32)
    proprio_mask[..., :size] = 1.0
    action_mask = np.zeros(lead + (self._action_max,), np.float32)  # [..., A]
    action_mask[..., :self._action_sizes[task_id]] = 1.0
    return {
        'proprio': proprio,
        'proprio_mask': proprio_mask,
        'action_mask': action_mask,
        'task_id': np.full(lead, task_id, np.int32),
    }

  def _pad(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    return timestep._replace(observation=self._pad_observation(
        self._task_id, timestep.observation))

  def pad_transitions(self, task: str, transitions: types.Transition
                      ) -> types.Transition:
    """A dataset's transitions of `task` [N, ...] as this environment
    presents that task: observations padded with masks and the task id,
    actions zero-padded to [N, A_max]; rewards, discounts, extras as they
    are. Transitions of several tasks padded so share one spec (and batch).
    """
    if task not in self._tasks:
      raise ValueError(f'{task!r} is not one of this environment\'s tasks '
                       f'{list(self._tasks)}')
    i = self._tasks.index(task)
    action = np.asarray(transitions.action, np.float32)  # [N, A_i]
    if action.shape[-1] != self._action_sizes[i]:
      raise ValueError(f'{task} has {self._action_sizes[i]} action dims, the '
                       f'transitions {action.shape[-1]}')
    padded = np.zeros(action.shape[:-1] + (self._action_max,), np.float32)
    padded[..., :action.shape[-1]] = action
    return transitions._replace(
        observation=self._pad_observation(i, transitions.observation),
        action=padded,
        next_observation=self._pad_observation(i,
                                               transitions.next_observation))

  def unpad_observation(self, task: str, observation: Dict[str, np.ndarray]
                        ) -> Dict[str, np.ndarray]:
    """A padded observation of `task` back in the task's own spec (the
    inverse of the padding, for recording episodes as the task's data)."""
    i = self._tasks.index(task)
    flat = np.asarray(observation['proprio'])  # [P_max]
    unpadded, start = {}, 0
    for key in self._keys[i]:
      spec = self._specs[i][key]
      size = int(np.prod(spec.shape))
      unpadded[key] = flat[start:start + size].reshape(spec.shape).astype(
          spec.dtype)
      start += size
    return unpadded

  def task_action(self, task: str, action: np.ndarray) -> np.ndarray:
    """A padded action [A_max] as `task` takes it: its first A_task dims."""
    return np.asarray(action)[:self._action_sizes[self._tasks.index(task)]]

  def task_environment(self, task: str) -> dm_env.Environment:
    """The environment of `task` inside this one (for its specs)."""
    return self._envs[self._tasks.index(task)]

  def reset(self) -> dm_env.TimeStep:
    self._task_id = self._next_task_id()
    self._reset_next_step = False
    return self._pad(self._envs[self._task_id].reset())

  def step(self, action) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    action = np.asarray(action, dtype=np.float32)
    if action.shape != (self._action_max,):
      raise ValueError(f'Expected an action of shape ({self._action_max},), '
                       f'got {action.shape}.')
    timestep = self._envs[self._task_id].step(
        action[:self._action_sizes[self._task_id]])
    self._reset_next_step = timestep.last()
    return self._pad(timestep)

  def observation_spec(self) -> Dict[str, specs.Array]:
    return {
        'proprio': specs.Array((self._proprio_max,), np.float32, 'proprio'),
        'proprio_mask': specs.Array((self._proprio_max,), np.float32,
                                    'proprio_mask'),
        'action_mask': specs.Array((self._action_max,), np.float32,
                                   'action_mask'),
        'task_id': specs.DiscreteArray(len(self._tasks), np.int32, 'task_id'),
    }

  def action_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((self._action_max,), np.float32, -1.0, 1.0,
                              'action')

  def reward_spec(self) -> specs.Array:
    return specs.Array((), np.float32, 'reward')

  def discount_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((), np.float32, 0.0, 1.0, 'discount')

  def close(self):
    for env in self._envs:
      env.close()
