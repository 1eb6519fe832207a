"""PAC learner: jitted SGD steps on the combined BC/RL/critic loss.

The learner owns a `TrainingState` (online and target parameters, optimiser state,
step count and RNG), advances it with `sgd_step` (one update, a pure function)
run K times per jitted call by `multi_step`, and serves the online parameters
to actors and evaluators as an Acme `VariableSource`. Its `save`/`restore` make
Acme's checkpointers (and ours) resume it exactly.

On small models the time of a learner step is mostly per-call overhead
(dispatch, host syncs, Python around the step), so K steps per call, batches
prefetched onto the device by a background thread, and one host sync per call
(metrics and the NaN flags) are what make it fast; see the agent README.
"""

import threading
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import acme
from acme import types as acme_types
from acme.jax import networks as networks_lib
from acme.jax import utils as acme_jax_utils
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

  One optimiser over the shared parameters, as in the paper: the
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


def make_multi_step(networks: networks_module.PACNetworks,
                    config: config_lib.PACConfig,
                    optimizer: optax.GradientTransformation):
  """Returns `(state, batches, num_active) -> (state, metrics)`: K SGD steps.

  `batches` stacks K batches ([K, B, ...] leaves); the K updates run inside
  one `lax.scan`, so a call costs one dispatch and one host sync instead of K.
  Only the first `num_active` steps update the state (a learner's last call
  before a step budget may need fewer than K). The NaN guard of `sgd_step`
  holds per step, and after the first non-finite batch or update the
  remaining steps of the call change nothing either: the state returned is
  the state just after the last good step, as if the learner had stopped
  there. `metrics` are per step, [K] leaves; 'learner/applied' marks the
  steps that updated the state.
  """
  sgd_step = make_sgd_step(networks, config, optimizer)

  def multi_step(state: TrainingState, batches: acme_types.Transition,
                 num_active: jnp.ndarray) -> Tuple[TrainingState, Metrics]:

    def body(carry, inputs):
      state, halted = carry
      index, batch = inputs
      new_state, metrics = sgd_step(state, batch)
      run = jnp.logical_and(index < num_active, jnp.logical_not(halted))
      state = jax.lax.cond(run, lambda: new_state, lambda: state)
      failed = jnp.logical_or(metrics['data/nonfinite_batch'],
                              metrics['opt/nonfinite_update'])
      metrics['learner/applied'] = jnp.logical_and(run, jnp.logical_not(
          failed))
      metrics['learner/failed'] = jnp.logical_and(run, failed)
      return (state, jnp.logical_or(halted, jnp.logical_and(run, failed))), (
          metrics)

    steps = jax.tree.leaves(batches)[0].shape[0]
    (state, _), metrics = jax.lax.scan(
        body, (state, jnp.asarray(False)), (jnp.arange(steps), batches))
    return state, metrics

  return multi_step


def sgd_step_flops(networks: networks_module.PACNetworks,
                   config: config_lib.PACConfig,
                   example: acme_types.Transition) -> float:
  """FLOPs of one SGD step on batches shaped like `example` [B, ...].

  XLA's cost analysis of the compiled update (`make_sgd_step`), on abstract
  state: the count that scaling sweeps multiply by steps for a training
  budget, and throughput benchmarks by steps/s for achieved FLOP/s.
  """
  optimizer = make_optimizer(config)
  state = jax.eval_shape(
      lambda k: init_training_state(networks, optimizer, k),
      jax.random.PRNGKey(0))
  compiled = jax.jit(make_sgd_step(networks, config, optimizer)).lower(
      state, example).compile()
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # One entry per device in older JAX.
    analysis = analysis[0]
  return float(analysis['flops'])


def init_training_state(networks: networks_module.PACNetworks,
                        optimizer: optax.GradientTransformation,
                        key: networks_lib.PRNGKey) -> TrainingState:
  """Fresh parameters (target = a copy of them), optimiser state, step 0.

  Jitted: run op by op, Haiku's initialisers take seconds on a CPU (one small
  computation each); compiled, this is one computation, cached on disk.
  """

  def init(key):
    init_key, state_key = jax.random.split(key)
    params = networks.init(init_key)
    return TrainingState(
        params=params,
        # A copy, not the same buffers: the learner donates the whole state.
        target_params=jax.tree.map(jnp.copy, params),
        opt_state=optimizer.init(params),
        steps=jnp.zeros((), jnp.int32),
        key=state_key)

  return jax.jit(init)(key)


def _as_transitions(batch: Batch) -> acme_types.Transition:
  """The transitions of a batch, without extras (the loss uses none).

  Replay yields `ReplaySample(info, data)`; in-memory iterators yield data,
  which may carry extras (our datasets' `log_prob`): dropping them keeps one
  compiled step for every source (see `PACLearner.compile`).
  """
  if isinstance(batch, reverb.ReplaySample):
    batch = batch.data
  return batch._replace(extras=())


class PACLearner(acme.Learner):
  """Acme learner (and `VariableSource`) for PAC.

  Variables served: `'policy'` and `'params'` both name the online parameters,
  which carry the policy and the critic (one network); actors use the critic
  too for Q-filtered acting.

  Each `step()` runs `config.learner_steps_per_call` SGD steps in one jitted
  call (`make_multi_step`) on that many batches from `iterator` (one batch per
  SGD step, Acme's convention), stacked and put on the device by a background
  thread `config.prefetch_batches` calls ahead. The training state is donated
  to the call (updated in place), and the host reads metrics and the NaN flags
  once per call. With 1 step per call and no prefetch it behaves exactly like
  a one-step-per-call learner.
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
    self._steps_per_call = config.learner_steps_per_call
    self._multi_step = jax.jit(
        make_multi_step(networks, config, self._optimizer), donate_argnums=0)
    self._state = init_training_state(networks, self._optimizer, random_key)
    self._num_steps = 0
    self._timestamp: Optional[float] = None
    self._batches: Optional[Iterator[acme_types.Transition]] = None
    # Held while the state is replaced or read: a donated state is gone.
    self._lock = threading.Lock()
    self._publish()

  def _publish(self):
    """Keeps a copy of the parameters that no call donates, for serving.

    Actors and evaluators fetch parameters from other threads at any time;
    the copy is taken once per call, after its results are in, so a fetch
    never waits for a call in progress (or finds its buffers donated).
    """
    self._served_params = jax.tree.map(jnp.copy, self._state.params)

  @property
  def state(self) -> TrainingState:
    return self._state

  @property
  def num_steps(self) -> int:
    """SGD steps taken, on the host (no device sync to read it)."""
    return self._num_steps

  @property
  def steps_per_call(self) -> int:
    return self._steps_per_call

  def _stacked_batches(self) -> Iterator[acme_types.Transition]:
    """K batches from the iterator as one [K, B, ...] batch."""
    while True:
      try:
        batches = [_as_transitions(next(self._iterator))
                   for _ in range(self._steps_per_call)]
      except StopIteration:  # The data ended: so do the batches.
        return
      yield jax.tree.map(lambda *xs: np.stack(xs), *batches)

  def _next_batches(self) -> Any:
    if self._batches is None:  # Started lazily: after any restore.
      self._batches = self._stacked_batches()
      if self._config.prefetch_batches:
        self._batches = acme_jax_utils.prefetch(
            self._batches, buffer_size=self._config.prefetch_batches + 1,
            device=jax.devices()[0])
    return next(self._batches)

  def compile(self, example: acme_types.Transition) -> None:
    """Compiles the learner's call for batches shaped like `example` [B, ...].

    Runs one call with no step active: the state comes back unchanged, and
    the first call on real data starts training at once. The
    builder calls it before the learner serves parameters, so actors (which
    wait for the first parameters) never run ahead of a learner that is still
    compiling (up to a minute on a CPU), and a step limit cannot stop the
    program in the middle of a compile, which Launchpad answers by killing
    every process.
    """
    batches = jax.tree.map(
        lambda x: np.broadcast_to(x, (self._steps_per_call, *x.shape)),
        example)
    if self._config.prefetch_batches:  # As the prefetch thread places them.
      batches = jax.device_put(batches, jax.devices()[0])
    with self._lock:
      self._state, _ = self._multi_step(self._state, batches, np.int32(0))
      jax.block_until_ready(self._state)

  def step(self, max_steps: Optional[int] = None):
    """Runs `steps_per_call` SGD steps, or `max_steps` if that is fewer."""
    active = self._steps_per_call
    if max_steps is not None:
      active = max(0, min(active, max_steps))
    batches = self._next_batches()
    if not active:
      return
    with self._lock:
      self._state, metrics = self._multi_step(self._state, batches,
                                              np.int32(active))
    metrics = jax.device_get(metrics)  # The one host sync of the call.
    applied = int(metrics['learner/applied'].sum())
    now = time.time()
    elapsed = 0. if self._timestamp is None else now - self._timestamp
    self._timestamp = now
    # The shared counter first: whoever sees `num_steps` reach N can rely on
    # the counter having counted N steps too.
    counts = self._counter.increment(steps=applied, walltime=elapsed)
    self._num_steps += applied
    self._publish()
    failed = np.flatnonzero(metrics['learner/failed'])
    if failed.size:
      self._raise_non_finite(metrics, int(failed[0]))
    last = {k: _scalar(v[active - 1]) for k, v in metrics.items()
            if not k.startswith('learner/')}
    self._logger.write({**last, **counts})

  def _raise_non_finite(self, metrics: Dict[str, np.ndarray], index: int):
    if metrics['data/nonfinite_batch'][index]:
      raise NonFiniteError(
          f'A training batch (for step {self._num_steps + 1}) contains NaN or '
          'Inf values; the update was skipped and training stopped. Check the '
          'dataset (e.g. regenerate it) or the environment producing online '
          'data.')
    raise NonFiniteError(
        f'The loss or parameters became non-finite at step '
        f'{self._num_steps + 1} (loss/total={metrics["loss/total"][index]}); '
        'the update was skipped. Lower `learning_rate`, lower '
        '`max_grad_norm`, or widen [v_min, v_max] if returns exceed the '
        'critic range.')

  def get_variables(self, names: List[str]) -> List[networks_lib.Params]:
    params = jax.device_get(self._served_params)
    variables = {'policy': params, 'params': params}
    return [variables[name] for name in names]

  def save(self) -> TrainingState:
    with self._lock:
      return jax.device_get(self._state)

  def restore(self, state: TrainingState):
    with self._lock:
      self._state = jax.tree.map(jnp.asarray, TrainingState(*state))
      self._publish()
    self._num_steps = int(self._state.steps)


def _scalar(value: np.ndarray) -> Any:
  return value.item() if np.ndim(value) == 0 else value
