"""PAC learner: one jitted SGD step on the combined BC/RL/critic loss.

The learner owns a `TrainingState` (online and target parameters, optimiser state,
step count and RNG), advances it with a single jitted `sgd_step`, and serves the
online parameters to actors and evaluators as an Acme `VariableSource`. Its
`save`/`restore` make Acme's checkpointers (and ours) resume it exactly.
"""

import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import acme
from acme import types as acme_types
from acme.jax import networks as networks_lib
from acme.utils import counting
from acme.utils import loggers
import jax
import jax.numpy as jnp
import numpy as np
import optax
import reverb

from agents.pac import config as config_lib
from agents.pac import losses
from agents.pac import networks as networks_module


class TrainingState(NamedTuple):
  """Everything the learner needs to continue exactly where it stopped."""
  params: networks_lib.Params
  target_params: networks_lib.Params
  opt_state: optax.OptState
  steps: jnp.ndarray  # [] int32, number of SGD steps taken.
  key: networks_lib.PRNGKey


class NonFiniteError(FloatingPointError):
  """A batch or the loss contained NaN/Inf; the update was not applied."""


Batch = Union[reverb.ReplaySample, acme_types.Transition]
Metrics = Dict[str, jnp.ndarray]


def make_optimizer(config: config_lib.PACConfig) -> optax.GradientTransformation:
  """Global-norm clipping then AdamW (decoupled weight decay), one for all terms.

  One optimiser over the shared parameters is what DESIGN.md §1 prescribes: the
  policy, critic and encoder are one network trained on one summed loss.
  """
  return optax.chain(
      optax.clip_by_global_norm(config.max_grad_norm),
      optax.adamw(
          learning_rate=config.learning_rate,
          b1=config.adam_b1,
          b2=config.adam_b2,
          weight_decay=config.weight_decay),
  )


def _all_finite(tree: Any) -> jnp.ndarray:
  """[] bool: True iff every floating leaf of `tree` is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _update_target(config: config_lib.PACConfig, params, target_params,
                   steps: jnp.ndarray):
  """Hard copy every `target_update_period` steps, or Polyak averaging."""
  if config.target_polyak_tau is not None:
    return optax.incremental_update(params, target_params,
                                    config.target_polyak_tau)
  return optax.periodic_update(params, target_params, steps,
                               config.target_update_period)


def make_sgd_step(networks: networks_module.PACNetworks,
                  config: config_lib.PACConfig,
                  optimizer: optax.GradientTransformation):
  """Returns the pure update `(state, transitions) -> (state, metrics)`.

  A batch holding NaN/Inf, or a step whose loss or gradients are not finite,
  leaves the state untouched (one `lax.cond`, not a select per parameter) and
  sets `data/nonfinite_batch` or `opt/nonfinite_update`, so the host can stop
  with a clear message instead of silently corrupting the parameters.
  """

  def loss_fn(params, target_params, transitions, key, alpha):
    return losses.pac_loss(params, target_params, transitions, key,
                           networks=networks, config=config, alpha=alpha)

  def sgd_step(state: TrainingState,
               transitions: acme_types.Transition) -> Tuple[TrainingState,
                                                            Metrics]:
    key, loss_key = jax.random.split(state.key)
    alpha = config.alpha_at(state.steps)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.target_params, transitions, loss_key, alpha)
    grad_norm = optax.global_norm(grads)
    batch_ok = _all_finite(transitions)
    update_ok = jnp.logical_and(jnp.isfinite(metrics['loss/total']),
                                jnp.isfinite(grad_norm))

    def apply(_):
      updates, opt_state = optimizer.update(grads, state.opt_state,
                                            state.params)
      params = optax.apply_updates(state.params, updates)
      steps = state.steps + 1
      target_params = _update_target(config, params, state.target_params,
                                     steps)
      return TrainingState(params, target_params, opt_state, steps, key)

    def skip(_):
      return state._replace(key=key)

    new_state = jax.lax.cond(jnp.logical_and(batch_ok, update_ok), apply, skip,
                             None)
    metrics = dict(metrics)
    metrics['opt/grad_norm'] = grad_norm
    metrics['data/nonfinite_batch'] = jnp.logical_not(batch_ok)
    metrics['opt/nonfinite_update'] = jnp.logical_not(update_ok)
    return new_state, metrics

  return sgd_step


def init_training_state(networks: networks_module.PACNetworks,
                        optimizer: optax.GradientTransformation,
                        key: networks_lib.PRNGKey) -> TrainingState:
  init_key, state_key = jax.random.split(key)
  params = networks.init(init_key)
  return TrainingState(
      params=params,
      target_params=params,
      opt_state=optimizer.init(params),
      steps=jnp.zeros((), jnp.int32),
      key=state_key)


def _as_transitions(batch: Batch) -> acme_types.Transition:
  """Replay yields `ReplaySample(info, data)`; in-memory iterators yield data."""
  if isinstance(batch, reverb.ReplaySample):
    return batch.data
  return batch


class PACLearner(acme.Learner):
  """Acme learner (and `VariableSource`) for PAC.

  Variables served: `'policy'` and `'params'` both name the online parameters,
  which carry the policy and the critic (one network, DESIGN.md §2); actors use the
  critic too for Q-filtered acting.
  """

  def __init__(self,
               networks: networks_module.PACNetworks,
               config: config_lib.PACConfig,
               random_key: networks_lib.PRNGKey,
               iterator: Iterator[Batch],
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None):
    self._config = config
    self._iterator = iterator
    self._counter = counter or counting.Counter()
    # Without a logger from the caller, print only (Acme's default would also
    # write CSV files under ~/acme).
    self._logger = logger or loggers.make_default_logger(
        'learner', save_data=False, asynchronous=True)
    self._optimizer = make_optimizer(config)
    self._sgd_step = jax.jit(make_sgd_step(networks, config, self._optimizer))
    self._state = init_training_state(networks, self._optimizer, random_key)
    self._num_steps = 0
    self._timestamp: Optional[float] = None

  @property
  def state(self) -> TrainingState:
    return self._state

  @property
  def num_steps(self) -> int:
    """SGD steps taken, on the host (no device sync to read it)."""
    return self._num_steps

  def step(self):
    batch = _as_transitions(next(self._iterator))
    self._state, metrics = self._sgd_step(self._state, batch)
    metrics = _to_numpy_scalars(metrics)
    if metrics['data/nonfinite_batch']:
      raise NonFiniteError(
          'A training batch contains NaN or Inf values; the update was skipped '
          'and training stopped. Check the dataset (e.g. regenerate it) or the '
          'environment producing online data.')
    if metrics['opt/nonfinite_update']:
      raise NonFiniteError(
          f'The loss or parameters became non-finite at step '
          f'{int(self._state.steps)} (loss/total={metrics["loss/total"]}). '
          'Lower `learning_rate`, lower `max_grad_norm`, or widen '
          '[v_min, v_max] if returns exceed the critic range.')
    now = time.time()
    elapsed = 0. if self._timestamp is None else now - self._timestamp
    self._timestamp = now
    # The shared counter first: whoever sees `num_steps` reach N can rely on
    # the counter having counted N steps too.
    counts = self._counter.increment(steps=1, walltime=elapsed)
    self._num_steps += 1
    self._logger.write({**metrics, **counts})

  def get_variables(self, names: List[str]) -> List[networks_lib.Params]:
    variables = {'policy': self._state.params, 'params': self._state.params}
    return [variables[name] for name in names]

  def save(self) -> TrainingState:
    return jax.device_get(self._state)

  def restore(self, state: TrainingState):
    self._state = jax.tree.map(jnp.asarray, TrainingState(*state))
    self._num_steps = int(self._state.steps)


def _to_numpy_scalars(metrics: Dict[str, Any]) -> Dict[str, Any]:
  """One device-to-host transfer for all metrics, then Python scalars."""
  return {k: np.asarray(v).item() if np.ndim(v) == 0 else np.asarray(v)
          for k, v in jax.device_get(metrics).items()}
