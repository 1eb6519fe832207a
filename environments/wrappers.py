"""Small dm-env wrappers that give every suite task the same conventions.

Why not `acme.wrappers.{SinglePrecisionWrapper, CanonicalSpecWrapper}`? Importing
anything from `acme.wrappers` imports its package `__init__`, which imports Gym
(printing a deprecation banner) and the Atari wrapper; and `CanonicalSpecWrapper`
neither clips nor checks the action shape, and gives float64 bounds to a float32
spec. These two wrappers do the same jobs in a few lines, with those fixed.
"""

from typing import Any, Dict

import dm_env
from dm_env import specs
import numpy as np


class EnvironmentWrapper(dm_env.Environment):
  """Delegates to an inner environment; unknown attributes are forwarded.

  Forwarding (`env.physics`, `env.task`, ...) lets tests and controllers reach the
  dm_control internals through any number of wrappers.
  """

  def __init__(self, environment: dm_env.Environment):
    self._environment = environment

  @property
  def environment(self) -> dm_env.Environment:
    return self._environment

  def __getattr__(self, name: str) -> Any:
    if name.startswith('__'):
      raise AttributeError(name)
    return getattr(self._environment, name)

  def reset(self) -> dm_env.TimeStep:
    return self._environment.reset()

  def step(self, action) -> dm_env.TimeStep:
    return self._environment.step(action)

  def observation_spec(self):
    return self._environment.observation_spec()

  def action_spec(self):
    return self._environment.action_spec()

  def reward_spec(self):
    return self._environment.reward_spec()

  def discount_spec(self):
    return self._environment.discount_spec()

  def close(self):
    return self._environment.close()


class CanonicalActionWrapper(EnvironmentWrapper):
  """Exposes a float32 action spec bounded by [-1, 1] in every dimension.

  An action `a` in [-1, 1]^A is mapped affinely onto the inner spec's box:
  -1 -> minimum, +1 -> maximum. Actions are clipped to [-1, 1] first, so a noisy
  policy can never leave the physical range; a wrong shape raises `ValueError`.
  """

  def __init__(self, environment: dm_env.Environment):
    super().__init__(environment)
    inner = environment.action_spec()
    if not isinstance(inner, specs.BoundedArray):
      raise ValueError(f'CanonicalActionWrapper needs a BoundedArray action spec,'
                       f' got {inner!r}.')
    shape = inner.shape
    self._low = np.broadcast_to(inner.minimum, shape).astype(np.float64)  # [A]
    self._high = np.broadcast_to(inner.maximum, shape).astype(np.float64)  # [A]
    self._inner_dtype = inner.dtype
    self._spec = specs.BoundedArray(
        shape=shape, dtype=np.float32,
        minimum=-np.ones(shape, np.float32), maximum=np.ones(shape, np.float32),
        name='action')

  def step(self, action) -> dm_env.TimeStep:
    action = np.asarray(action, dtype=np.float64)
    if action.shape != self._spec.shape:
      raise ValueError(f'Expected an action of shape {self._spec.shape} in '
                       f'[-1, 1], got shape {action.shape}.')
    unit = (np.clip(action, -1.0, 1.0) + 1.0) / 2.0  # [A] in [0, 1]
    physical = self._low + unit * (self._high - self._low)  # [A]
    return self._environment.step(physical.astype(self._inner_dtype))

  def action_spec(self) -> specs.BoundedArray:
    return self._spec


class Float32Wrapper(EnvironmentWrapper):
  """Casts observations, rewards and discounts to float32.

  Observations must be a dict of arrays (as every dm_control suite task gives).
  Scalar entries (e.g. walker's `height`) become shape (1,), so that every entry
  is at least 1-D and can be concatenated; other shapes are kept unchanged.
  uint8 entries (rendered pixels) stay uint8: a quarter of the bytes in
  replay, and the network scales them itself.
  Reward and discount stay `None` on the first step, as dm-env specifies.
  """

  def __init__(self, environment: dm_env.Environment):
    super().__init__(environment)
    inner = environment.observation_spec()
    if not isinstance(inner, dict):
      raise ValueError(f'Float32Wrapper needs dict observations, got {inner!r}.')
    self._observation_spec = {
        name: specs.Array(shape=spec.shape or (1,),
                          dtype=np.uint8 if spec.dtype == np.uint8
                          else np.float32, name=name)
        for name, spec in inner.items()}

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    observation = {
        name: np.asarray(timestep.observation[name],
                         dtype=spec.dtype).reshape(spec.shape)
        for name, spec in self._observation_spec.items()}
    reward = timestep.reward
    discount = timestep.discount
    return timestep._replace(
        observation=observation,
        reward=None if reward is None else np.float32(reward),
        discount=None if discount is None else np.float32(discount))

  def reset(self) -> dm_env.TimeStep:
    return self._convert(self._environment.reset())

  def step(self, action) -> dm_env.TimeStep:
    return self._convert(self._environment.step(action))

  def observation_spec(self) -> Dict[str, specs.Array]:
    return self._observation_spec

  def reward_spec(self) -> specs.Array:
    return specs.Array(shape=(), dtype=np.float32, name='reward')

  def discount_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray(shape=(), dtype=np.float32, minimum=0.0,
                              maximum=1.0, name='discount')
