"""PAC learner: the jitted SGD step, target updates, the alpha schedule,
non-finite guards, checkpoint round trips and the Acme learner interface.

Every test uses one tiny network and one batch size, so the compiled step is
shared (and cached across runs by the persistent JAX compile cache).
"""

import dataclasses
from typing import Any, Dict, Iterator, List

from acme import specs
from acme import types
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reverb

from agents.pac import config as config_lib
from agents.pac import learning
from agents.pac import networks as networks_lib
from agents.pac import replay

_TINY_NETWORK = config_lib.NetworkConfig(
    embed_dim=32, num_latents=4, num_self_attention_blocks=1, num_heads=2,
    mlp_multiplier=2, critic_hidden=(32,))
# Hard target copies every 3 steps, so a few steps cover copies and gaps.
_CONFIG = config_lib.PACConfig(
    network=_TINY_NETWORK, num_bins=11, num_atoms=21, v_min=0.0, v_max=10.0,
    num_sampled_actions=4, alpha=0.5, eta=0.5, learning_rate=1e-3,
    target_update_period=3, batch_size=16)
_BATCH = 16
# Cartpole-like: 5 proprioceptive scalars, 2 action dims.
_SPEC = specs.EnvironmentSpec(
    observations={'position': specs.Array((3,), np.float32),
                  'velocity': specs.Array((2,), np.float32)},
    actions=specs.BoundedArray((2,), np.float32, -1.0, 1.0),
    rewards=specs.Array((), np.float32),
    discounts=specs.BoundedArray((), np.float32, 0.0, 1.0))

# Every key sgd_step must report (namespaced, so loggers group them).
_EXPECTED_METRICS = (
    'loss/total', 'loss/bc', 'loss/rl', 'loss/critic', 'loss/kl', 'q/mean',
    'q/sampled_mean', 'q/target_mean', 'policy/entropy', 'policy/weights_ess',
    'alpha', 'opt/grad_norm', 'data/nonfinite_batch', 'opt/nonfinite_update')


def _transitions(seed: int, batch: int = _BATCH) -> types.Transition:
  """A random batch of float32 numpy transitions (rewards in [0, 1])."""
  rng = np.random.default_rng(seed)

  def obs():
    return {'position': rng.normal(size=(batch, 3)).astype(np.float32),
            'velocity': rng.normal(size=(batch, 2)).astype(np.float32)}

  return types.Transition(
      observation=obs(),
      action=rng.uniform(-1, 1, (batch, 2)).astype(np.float32),
      reward=rng.uniform(0, 1, batch).astype(np.float32),
      discount=np.full((batch,), 0.99, np.float32),
      next_observation=obs())


def _replay_sample(transitions: types.Transition) -> reverb.ReplaySample:
  batch = transitions.reward.shape[0]
  info = reverb.SampleInfo(
      key=np.arange(batch, dtype=np.uint64),
      probability=np.full((batch,), 1.0 / batch, np.float64),
      table_size=np.full((batch,), batch, np.int64),
      priority=np.ones((batch,), np.float64))
  return reverb.ReplaySample(info=info, data=transitions)


def _assert_trees_equal(a: Any, b: Any) -> None:
  """Bitwise equality of two pytrees of arrays (same structure)."""
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _trees_equal(a: Any, b: Any) -> bool:
  return all(np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


class _RecordingLogger:
  """Keeps every write in memory (the learner logs its metrics each step)."""

  def __init__(self):
    self.data: List[Dict[str, Any]] = []

  def write(self, data: Dict[str, Any]) -> None:
    self.data.append(dict(data))

  def close(self) -> None:
    pass


@pytest.fixture(scope='module')
def networks() -> networks_lib.PACNetworks:
  return networks_lib.make_networks(_SPEC, _CONFIG)


@pytest.fixture(scope='module')
def sgd_setup(networks):
  """config -> (jitted sgd_step, initial TrainingState), cached per config."""
  cache = {}

  def get(config: config_lib.PACConfig):
    if config not in cache:
      optimizer = learning.make_optimizer(config)
      step = jax.jit(learning.make_sgd_step(networks, config, optimizer))
      state = learning.init_training_state(networks, optimizer,
                                           jax.random.PRNGKey(0))
      cache[config] = (step, state)
    return cache[config]

  return get


def _make_learner(networks, batches: Iterator[Any], seed: int = 0,
                  config: config_lib.PACConfig = _CONFIG):
  logger = _RecordingLogger()
  learner = learning.PACLearner(networks, config, jax.random.PRNGKey(seed),
                                batches, logger=logger)
  return learner, logger


# ----------------------------------------------------------------------------
# The SGD step.
# ----------------------------------------------------------------------------


def test_sgd_step_decreases_loss_on_a_fixed_batch(sgd_setup):
  """50 steps on one batch fit it: total, BC and critic losses all drop."""
  step, state = sgd_setup(_CONFIG)
  batch = _transitions(seed=1)
  history = []
  for _ in range(50):
    state, metrics = step(state, batch)
    history.append(jax.device_get(metrics))
  first, last = history[0], history[-1]
  assert int(state.steps) == 50
  assert last['loss/total'] < first['loss/total'] - 1.0, (first, last)
  assert last['loss/bc'] < 0.8 * first['loss/bc']
  assert last['loss/critic'] < first['loss/critic']
  # The BC term fits the data actions, so the policy becomes less uniform.
  assert last['policy/entropy'] < first['policy/entropy']


def test_sgd_step_reports_namespaced_finite_metrics(sgd_setup):
  step, state = sgd_setup(_CONFIG)
  _, metrics = step(state, _transitions(seed=2))
  metrics = jax.device_get(metrics)
  assert set(_EXPECTED_METRICS) <= set(metrics), sorted(metrics)
  for name in _EXPECTED_METRICS:
    assert np.ndim(metrics[name]) == 0, name
    assert np.isfinite(metrics[name]), name
  assert not metrics['data/nonfinite_batch']
  assert not metrics['opt/nonfinite_update']
  assert metrics['opt/grad_norm'] > 0.0
  # Fresh heads are zero-initialised: uniform over 11 bins on 2 dims, and the
  # value distribution is uniform over [0, 10] (mean 5).
  np.testing.assert_allclose(metrics['policy/entropy'], 2 * np.log(11),
                             rtol=1e-5)
  np.testing.assert_allclose(metrics['q/mean'], 5.0, rtol=1e-5)
  np.testing.assert_allclose(metrics['alpha'], _CONFIG.alpha)


def test_sgd_step_is_deterministic_given_the_state(sgd_setup):
  step, state = sgd_setup(_CONFIG)
  batch = _transitions(seed=3)
  a, metrics_a = step(state, batch)
  b, metrics_b = step(state, batch)
  _assert_trees_equal(a, b)
  _assert_trees_equal(metrics_a, metrics_b)
  # ...and the RNG advances, so the next step samples new actions.
  assert not np.array_equal(np.asarray(a.key), np.asarray(state.key))


# ----------------------------------------------------------------------------
# Target network.
# ----------------------------------------------------------------------------


def test_hard_target_copy_exactly_every_period(sgd_setup):
  """target == params right after steps 3, 6, 9; frozen in between."""
  step, state = sgd_setup(_CONFIG)
  period = _CONFIG.target_update_period
  _assert_trees_equal(state.target_params, state.params)  # Init: a copy.
  previous_target = state.target_params
  for i in range(1, 3 * period + 1):
    state, _ = step(state, _transitions(seed=10 + i))
    assert int(state.steps) == i
    if i % period == 0:
      _assert_trees_equal(state.target_params, state.params)
    else:
      _assert_trees_equal(state.target_params, previous_target)
      assert not _trees_equal(state.target_params, state.params), i
    previous_target = state.target_params


def test_polyak_target_moves_by_tau(sgd_setup):
  tau = 0.25
  config = dataclasses.replace(_CONFIG, target_polyak_tau=tau)
  step, state = sgd_setup(config)
  for i in range(3):
    old_target = state.target_params
    state, _ = step(state, _transitions(seed=20 + i))
    expected = jax.tree.map(lambda p, t: tau * p + (1.0 - tau) * t,
                            state.params, old_target)
    for got, want in zip(jax.tree.leaves(state.target_params),
                         jax.tree.leaves(expected)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # A strict average: neither a copy nor frozen.
    assert not _trees_equal(state.target_params, state.params)
    assert not _trees_equal(state.target_params, old_target)


# ----------------------------------------------------------------------------
# Alpha schedule.
# ----------------------------------------------------------------------------


def test_alpha_schedule_is_used_by_the_step(sgd_setup):
  """alpha goes 1 -> config.alpha linearly over K steps, then stays."""
  config = dataclasses.replace(_CONFIG, alpha=0.2, alpha_schedule_steps=4)
  step, state = sgd_setup(config)
  alphas = []
  for i in range(6):
    state, metrics = step(state, _transitions(seed=30 + i))
    alphas.append(float(metrics['alpha']))
  # metrics['alpha'] is the weight used at the step count before the update.
  np.testing.assert_allclose(alphas, [1.0, 0.8, 0.6, 0.4, 0.2, 0.2],
                             rtol=1e-6)
  assert alphas[0] == 1.0 and alphas[4] == np.float32(0.2)


def test_alpha_weights_the_loss_terms(sgd_setup):
  """loss/total == (1-a)*rl + a*bc + beta*critic with the scheduled a."""
  config = dataclasses.replace(_CONFIG, alpha=0.2, alpha_schedule_steps=4)
  step, state = sgd_setup(config)
  for i in range(3):
    state, m = step(state, _transitions(seed=40 + i))
    m = jax.device_get(m)
    expected = ((1 - m['alpha']) * m['loss/rl'] + m['alpha'] * m['loss/bc'] +
                config.beta * m['loss/critic'])
    np.testing.assert_allclose(m['loss/total'], expected, rtol=1e-5)


# ----------------------------------------------------------------------------
# Non-finite batches and updates.
# ----------------------------------------------------------------------------


def _poison(transitions: types.Transition, field: str,
            value: float) -> types.Transition:
  """A copy of the batch with one entry of `field` set to `value`."""
  transitions = jax.tree.map(np.copy, transitions)
  if field == 'observation':
    transitions.observation['velocity'][3, 1] = value
  else:
    getattr(transitions, field)[5] = value
  return transitions


@pytest.mark.parametrize('field,value', [('observation', np.nan),
                                         ('reward', np.inf),
                                         ('reward', np.nan)])
def test_sgd_step_skips_nonfinite_batch(sgd_setup, field, value):
  """The pure step leaves params, target, optimiser and count untouched."""
  step, state = sgd_setup(_CONFIG)
  state, _ = step(state, _transitions(seed=50))  # Non-trivial opt state.
  new_state, metrics = step(state, _poison(_transitions(seed=51), field,
                                           value))
  assert bool(metrics['data/nonfinite_batch'])
  _assert_trees_equal(new_state.params, state.params)
  _assert_trees_equal(new_state.target_params, state.target_params)
  _assert_trees_equal(new_state.opt_state, state.opt_state)
  assert int(new_state.steps) == int(state.steps)


@pytest.mark.parametrize('field,value', [('observation', np.nan),
                                         ('reward', np.inf)])
def test_learner_raises_on_nonfinite_batch(networks, field, value):
  good = _transitions(seed=60)
  bad = _poison(_transitions(seed=61), field, value)
  learner, logger = _make_learner(networks, iter([good, bad]))
  learner.step()
  before = learner.save()
  with pytest.raises(learning.NonFiniteError) as error:
    learner.step()
  message = str(error.value)
  assert 'NaN' in message and 'dataset' in message, message
  # Nothing was applied, counted or logged for the bad batch.
  assert learner.num_steps == 1
  assert len(logger.data) == 1
  _assert_trees_equal(learner.state.params, before.params)
  _assert_trees_equal(learner.state.opt_state, before.opt_state)
  assert int(learner.state.steps) == 1


def test_learner_raises_with_guidance_on_nonfinite_update(networks):
  """A finite batch with poisoned parameters: the loss is NaN, no update."""
  learner, _ = _make_learner(networks, iter([_transitions(seed=70)] * 2))
  learner.step()
  state = learner.save()
  # NaN in one weight of the policy head makes the loss non-finite.
  poisoned = jax.tree_util.tree_map_with_path(
      lambda path, x: (np.full_like(x, np.nan)
                       if 'policy_head' in jax.tree_util.keystr(path) and
                       path[-1].key == 'w' else x), state.params)
  learner.restore(state._replace(params=poisoned))
  with pytest.raises(learning.NonFiniteError) as error:
    learner.step()
  message = str(error.value)
  assert 'non-finite' in message and 'learning_rate' in message, message
  assert learner.num_steps == 1
  _assert_trees_equal(learner.state.params, poisoned)  # Not updated further.


# ----------------------------------------------------------------------------
# Checkpointing and the Acme interfaces.
# ----------------------------------------------------------------------------


def test_save_restore_round_trip_resumes_exactly(networks):
  """A fresh learner restored from save() takes the identical next step."""
  batches = [_transitions(seed=80 + i) for i in range(4)]
  original, original_log = _make_learner(networks, iter(batches), seed=0)
  for _ in range(3):
    original.step()
  saved = original.save()
  # Saved arrays are host copies: the original moving on must not change them.
  assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(saved))

  restored, restored_log = _make_learner(networks, iter(batches[3:]), seed=123)
  assert not _trees_equal(restored.state.params, saved.params)
  restored.restore(saved)
  assert restored.num_steps == 3
  _assert_trees_equal(restored.state, saved)

  original.step()
  restored.step()
  assert original.num_steps == restored.num_steps == 4
  _assert_trees_equal(restored.state, original.state)
  metric_names = [k for k in original_log.data[-1]
                  if k.split('/')[0] in ('loss', 'q', 'policy', 'opt')]
  assert 'loss/total' in metric_names
  for name in metric_names:
    assert restored_log.data[-1][name] == original_log.data[-1][name], name


def test_get_variables_returns_online_params(networks):
  learner, _ = _make_learner(networks, iter([_transitions(seed=90)]))
  learner.step()  # Step 1 of a 3-step period: target != online now.
  policy, params = learner.get_variables(['policy', 'params'])
  _assert_trees_equal(policy, learner.state.params)
  _assert_trees_equal(params, learner.state.params)
  assert not _trees_equal(policy, learner.state.target_params)


def test_learner_logs_metrics_and_counts(networks):
  learner, logger = _make_learner(networks,
                                  iter([_transitions(seed=95)] * 2))
  learner.step()
  learner.step()
  assert len(logger.data) == 2
  assert logger.data[-1]['steps'] == 2
  assert set(_EXPECTED_METRICS) <= set(logger.data[-1])
  assert all(isinstance(logger.data[-1][k], (float, int, bool))
             for k in _EXPECTED_METRICS)


def test_learner_accepts_replay_samples(networks):
  """A reverb.ReplaySample batch trains exactly like its Transition data."""
  batches = [_transitions(seed=100 + i) for i in range(2)]
  from_transitions, _ = _make_learner(networks, iter(batches), seed=7)
  from_replay, _ = _make_learner(
      networks, iter([_replay_sample(b) for b in batches]), seed=7)
  for _ in range(2):
    from_transitions.step()
    from_replay.step()
  assert from_replay.num_steps == 2
  _assert_trees_equal(from_replay.state, from_transitions.state)


# ----------------------------------------------------------------------------
# Several steps per call, prefetching, mixed precision.
# ----------------------------------------------------------------------------


def _fast(k: int, prefetch: int = 0) -> config_lib.PACConfig:
  return dataclasses.replace(_CONFIG, learner_steps_per_call=k,
                             prefetch_batches=prefetch)


@pytest.mark.parametrize('prefetch', [0, 2])
def test_k_steps_per_call_equal_k_single_steps(networks, prefetch):
  """Same seed, same batches: 2 calls of 4 steps == 8 calls of 1 step."""
  batches = [_transitions(seed=200 + i) for i in range(8)]
  single, single_log = _make_learner(networks, iter(batches), seed=3)
  for _ in range(8):
    single.step()
  multi, multi_log = _make_learner(networks, iter(batches), seed=3,
                                   config=_fast(4, prefetch))
  multi.step()
  assert multi.num_steps == 4 and multi_log.data[-1]['steps'] == 4
  multi.step()
  assert multi.num_steps == single.num_steps == 8
  assert int(multi.state.steps) == 8
  _assert_trees_equal(multi.state, single.state)
  # One log line per call, with the metrics of its last step.
  assert len(multi_log.data) == 2 and len(single_log.data) == 8
  assert multi_log.data[-1]['loss/total'] == single_log.data[-1]['loss/total']


@pytest.mark.parametrize('prefetch', [0, 2])
def test_compile_changes_nothing_and_spares_the_first_call_a_compile(
    networks, prefetch):
  """What the builder does before serving parameters (`PACLearner.compile`)."""
  batches = [_transitions(seed=220 + i) for i in range(4)]
  plain, _ = _make_learner(networks, iter(batches), seed=5,
                           config=_fast(2, prefetch))
  compiled, _ = _make_learner(networks, iter(batches), seed=5,
                              config=_fast(2, prefetch))
  compiled.compile(replay.example_batch(_SPEC, _BATCH))
  assert compiled.num_steps == 0
  _assert_trees_equal(compiled.state, plain.state)
  for learner in (plain, compiled):
    learner.step()
    learner.step()
  _assert_trees_equal(compiled.state, plain.state)
  # The example's shapes and dtypes are the data's: no extra compile.
  sizes = [learner._multi_step._cache_size()  # pylint: disable=protected-access
           for learner in (plain, compiled)]
  assert sizes[0] == sizes[1], sizes


def test_a_short_last_call_runs_only_the_steps_asked_for(networks):
  batches = [_transitions(seed=210 + i) for i in range(4)]
  single, _ = _make_learner(networks, iter(batches), seed=4)
  for _ in range(3):
    single.step()
  multi, log = _make_learner(networks, iter(batches), seed=4,
                             config=_fast(4))
  multi.step(max_steps=3)
  assert multi.num_steps == 3 and log.data[-1]['steps'] == 3
  _assert_trees_equal(multi.state, single.state)


@pytest.mark.parametrize('prefetch', [0, 2])
def test_nan_guard_holds_with_k_steps_per_call(networks, prefetch):
  """A bad batch mid-call: the state is the one after the good steps before
  it, nothing after it is applied, and the error names the step."""
  good = [_transitions(seed=220 + i) for i in range(4)]
  bad = _poison(_transitions(seed=230), 'reward', np.nan)
  batches = [good[0], good[1], bad, good[2]]
  reference, _ = _make_learner(networks, iter(batches), seed=5)
  reference.step()
  reference.step()
  with pytest.raises(learning.NonFiniteError):
    reference.step()
  learner, log = _make_learner(networks, iter(batches), seed=5,
                               config=_fast(4, prefetch))
  with pytest.raises(learning.NonFiniteError) as error:
    learner.step()
  assert 'step 3' in str(error.value) and 'NaN' in str(error.value)
  assert learner.num_steps == 2
  _assert_trees_equal(learner.state, reference.state)
  assert int(learner.state.steps) == 2
  assert not log.data  # A failed call logs nothing.


def test_nan_update_guard_holds_with_k_steps_per_call(networks):
  learner, _ = _make_learner(networks, iter([_transitions(seed=240)] * 8),
                             config=_fast(4))
  learner.step()
  state = learner.save()
  poisoned = jax.tree_util.tree_map_with_path(
      lambda path, x: (np.full_like(x, np.nan)
                       if 'policy_head' in jax.tree_util.keystr(path) and
                       path[-1].key == 'w' else x), state.params)
  learner.restore(state._replace(params=poisoned))
  with pytest.raises(learning.NonFiniteError, match='step 5'):
    learner.step()
  assert learner.num_steps == 4
  _assert_trees_equal(learner.state.params, poisoned)
  _assert_trees_equal(learner.state.opt_state, state.opt_state)


def test_variables_stay_readable_while_the_state_is_donated(networks):
  learner, _ = _make_learner(networks, iter([_transitions(seed=250)] * 8),
                             config=_fast(4, prefetch=2))
  (before,) = learner.get_variables(['params'])
  learner.step()
  learner.step()
  (after,) = learner.get_variables(['params'])
  # Host copies: still readable after the buffers they came from were donated.
  assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(before))
  assert not _trees_equal(before, after)
  _assert_trees_equal(after, learner.save().params)


def test_bfloat16_compute_keeps_float32_params_and_tracks_float32(sgd_setup):
  config = dataclasses.replace(_CONFIG, compute_dtype='bfloat16')
  low = networks_lib.make_networks(_SPEC, config)
  full = networks_lib.make_networks(_SPEC, _CONFIG)
  _, state = sgd_setup(_CONFIG)
  batch = _transitions(seed=260)
  latents_low = jax.jit(low.encode)(state.params, batch.observation)
  latents_full = jax.jit(full.encode)(state.params, batch.observation)
  assert latents_low.dtype == jnp.float32  # Outputs come back as float32.
  assert not np.array_equal(latents_low, latents_full)  # Really bf16 inside.
  np.testing.assert_allclose(latents_low, latents_full, atol=0.1)
  optimizer = learning.make_optimizer(config)
  step = jax.jit(learning.make_sgd_step(low, config, optimizer))
  new_state, metrics = step(state, batch)
  _, full_metrics = sgd_setup(_CONFIG)[0](state, batch)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new_state.params))
  assert int(new_state.steps) == int(state.steps) + 1
  assert np.isfinite(metrics['loss/total'])
  np.testing.assert_allclose(metrics['loss/total'], full_metrics['loss/total'],
                             rtol=0.05)
  assert not _trees_equal(new_state.params, state.params)
