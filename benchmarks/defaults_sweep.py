r"""Which PAC settings matter offline: one dataset, named variants, seeds.

  .venv/bin/python -m benchmarks.defaults_sweep \
      --dataset=data/cartpole_swingup_mixed [--variants=main,alpha0.25]
      [--seeds=0,1,2] [--steps=10000]

Every variant is the main job's agent settings
(`launchers.main_job.agent_config`) with the overrides in `VARIANTS`. Each
run trains offline in this process (`agents.pac.offline`: uniform batches of
the in-memory n-step transitions, no Reverb), evaluates the sampled policy
every --eval_every steps, and at the end acts by each policy mode ('sample',
'mode', 'q_filter'), samples it at each of TEMPERATURES on the same
episodes' seeds (--temperature_episodes), and compares the critic's Q(s, a)
on the data with the data's discounted returns (rank correlation and bias).

Resumable: each run's record goes to
`<results_dir>/defaults_sweep_runs/<variant>_seed<s>_<steps>steps.json` as
it finishes and a rerun skips it (an interrupted run starts again);
--report_only trains nothing and reports what is recorded. Writes
`<results_dir>/defaults_sweep.json` (records, the per-variant summary, what
is missing) and `defaults_sweep.png`.
"""

import dataclasses
import os
import time
from typing import Any, Dict, List

from absl import app
from absl import flags
from absl import logging

import agents  # noqa: F401  pylint: disable=unused-import  (before TF; JAX cache)
from benchmarks import common
from launchers import config as config_lib
from launchers import launching
from launchers import main_job

# name -> overrides of main_job.agent_config. 'main' is the main job itself
# (learning rate 1e-3, Polyak targets, alpha 0.5, evaluations sampled at
# temperature 0.5: what the sweeps chose); 'eval_t1' evaluates the same
# training at temperature 1 (the main job until 2026-12-07).
_MAIN: Dict[str, Dict[str, Any]] = {
    'main': {},
    'eval_t1': {'eval_temperature': 1.0},
    # Four times the data per step (and ~2.5x the step's time on a CPU).
    'batch256': {'batch_size': 256},
}
# Variants of the main job's settings while its alpha was 0.25 ('alpha0.25'
# is that main job; until 2026-11-29; evaluations at temperature 1), kept so
# that their records stay reproducible.
_ALPHA_025: Dict[str, Dict[str, Any]] = {
    'alpha0.25': {},
    # Short returns: an n-step target sums n rewards of the data's own
    # policy, so with n = 30 Q(s, a) is mostly the behaviour's value.
    'nstep3': {'n_step': 3},
    'nstep1': {'n_step': 1},
    'alpha0.1_anneal': {'alpha': 0.1, 'alpha_schedule_steps': 5000},
    'eta0.1': {'eta': 0.1},
    'eta3': {'eta': 3.0},
    'M20': {'num_sampled_actions': 20},
    'sharp': {'num_sampled_actions': 20, 'eta': 0.1},
    'bins51': {'num_bins': 51},
}
# Variants of the main job's settings before this sweep (learning rate 3e-3,
# targets copied every 100 steps, alpha 0.25; 'previous' is that main job),
# kept so that their records stay reproducible.
_PREVIOUS: Dict[str, Dict[str, Any]] = {
    'previous': {},
    'bc': {'alpha': 1.0},
    'alpha0': {'alpha': 0.0},
    'alpha0.1': {'alpha': 0.1},
    'eta0.3': {'eta': 0.3},
    'nstep10': {'n_step': 10},
    'lr1e-3': {'learning_rate': 1e-3},
    'lr3e-4': {'learning_rate': 3e-4},
    'lr1e-3_nstep10': {'learning_rate': 1e-3, 'n_step': 10},
    'lr1e-3_nstep3': {'learning_rate': 1e-3, 'n_step': 3},
    'lr1e-3_nstep1': {'learning_rate': 1e-3, 'n_step': 1},
    'lr1e-3_alpha0.1': {'learning_rate': 1e-3, 'alpha': 0.1},
    'lr1e-3_eta0.3': {'learning_rate': 1e-3, 'eta': 0.3},
    # Q standardised over each state's samples (eta in those units).
    'advnorm': {'learning_rate': 1e-3, 'normalize_advantages': True},
    'advnorm_eta0.3': {'learning_rate': 1e-3, 'normalize_advantages': True,
                       'eta': 0.3},
    'lr1e-3_sharp': {'learning_rate': 1e-3, 'num_sampled_actions': 20,
                     'eta': 0.1},
    'net_test': {'network': None},  # The 'test' preset: 4x the compute.
}
VARIANTS: Dict[str, Dict[str, Any]] = {
    **_MAIN,
    **{name: {'alpha': 0.25, 'eval_temperature': 1.0, **overrides}
       for name, overrides in _ALPHA_025.items()},
    **{name: {**main_job.PREVIOUS_SETTINGS, **overrides}
       for name, overrides in _PREVIOUS.items()}}
MODES = ('sample', 'mode', 'q_filter')
# Sampling temperatures the final model is also evaluated at, on the same
# episodes' seeds: what the evaluation temperature alone changes.
TEMPERATURES = (1.0, 0.5, 0.25)

_DATASET = flags.DEFINE_string(
    'dataset', 'data/cartpole_swingup_mixed',
    "An RLDS dataset (the main job's: make run, or environments.generate).")
_VARIANTS = flags.DEFINE_list('variants', list(VARIANTS), 'Variants to run.')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds.')
_STEPS = flags.DEFINE_integer('steps', 10_000, 'Learner steps of every run.')
_EVAL_EVERY = flags.DEFINE_integer('eval_every', 2500,
                                   'Learner steps between evaluations.')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 3,
                                      'Episodes of each evaluation.')
_FINAL_EPISODES = flags.DEFINE_integer(
    'final_episodes', 5, 'Episodes of the final evaluation of each mode.')
_TEMPERATURE_EPISODES = flags.DEFINE_integer(
    'temperature_episodes', 10, 'Episodes of the final evaluation at each '
    'sampling temperature (TEMPERATURES).')
_REPORT_ONLY = flags.DEFINE_bool(
    'report_only', False, 'Train nothing: write the results of the runs '
    'recorded so far (the rest listed as missing).')
_MARGIN = 300  # Steps left out at each episode's end in the Q-vs-G check.


def _check_flags() -> List[int]:
  unknown = sorted(set(_VARIANTS.value) - set(VARIANTS))
  if unknown:
    raise config_lib.RunConfigError(
        f'--variants: unknown {", ".join(unknown)}; choose from '
        f'{", ".join(VARIANTS)}')
  if not os.path.isdir(_DATASET.value):
    raise config_lib.RunConfigError(
        f'--dataset={_DATASET.value} does not exist; make it with '
        'python -m environments.generate --task cartpole_swingup --policy '
        f'mixed --episodes 30 --seed 0 --out {_DATASET.value}')
  try:
    return [int(seed) for seed in _SEEDS.value]
  except ValueError:
    raise config_lib.RunConfigError(
        f'--seeds={",".join(_SEEDS.value)}: give integers') from None


def _run(dataset, variant: str, seed: int) -> Dict[str, Any]:
  """Trains one variant on `dataset` and returns its record."""
  import environments  # pylint: disable=g-import-not-at-top
  from agents.pac import networks as networks_lib  # pylint: disable=g-import-not-at-top
  from agents.pac import offline  # pylint: disable=g-import-not-at-top
  from environments import cartpole_controller  # pylint: disable=g-import-not-at-top
  start = time.time()
  config = main_job.agent_config(seed, **VARIANTS[variant])
  make_environment = lambda s: environments.make_environment(dataset.task, s)
  networks = networks_lib.make_networks(dataset.spec, config)
  learner = offline.make_learner(
      networks, config, dataset.transitions(config.n_step, config.discount))
  curve = []
  while learner.num_steps < _STEPS.value:
    offline.train(learner, min(learner.num_steps + _EVAL_EVERY.value,
                               _STEPS.value))
    params = learner.get_variables(['policy'])[0]
    returns = offline.evaluate(networks, config, params, make_environment,
                               'sample', _EVAL_EPISODES.value,
                               seed=1000 + seed)
    curve.append({'learner_steps': learner.num_steps,
                  'return_mean': float(returns.mean())})
    print(f'[defaults_sweep] {variant} seed {seed}: {learner.num_steps} '
          f'steps, return {returns.mean():.1f}', flush=True)
  seen = []  # What the sampled policy does (on cartpole: the pole).
  final = {mode: float(offline.evaluate(
      networks, config, params, make_environment, mode,
      _FINAL_EPISODES.value, seed=2000 + seed,
      on_step=seen.append if mode == 'sample' else None).mean())
           for mode in MODES}
  by_temperature = {str(t): float(offline.evaluate(
      networks, dataclasses.replace(config, eval_temperature=t), params,
      make_environment, 'sample', _TEMPERATURE_EPISODES.value,
      seed=3000 + seed).mean()) for t in TEMPERATURES}
  return {'variant': variant, 'overrides': VARIANTS[variant],
          'task': dataset.task, 'dataset': _DATASET.value, 'seed': seed,
          'learner_steps': learner.num_steps,
          'return': curve[-1]['return_mean'],
          'best_return': max(point['return_mean'] for point in curve),
          'curve': curve, 'final': final,
          'final_by_temperature': by_temperature,
          'pole': (cartpole_controller.pole_summary(seen)
                   if dataset.task.startswith('cartpole') else None),
          'critic': offline.critic_vs_returns(
              networks, params, dataset.episodes(), config.discount,
              _MARGIN),
          'action_gap': offline.critic_action_gap(
              networks, params, dataset.episodes(),
              dataset.spec.actions.minimum, dataset.spec.actions.maximum,
              seed=seed),
          'run_wall_s': round(time.time() - start, 1)}


def summarise(records: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
  """Per variant: mean and std over seeds of the last sampled-policy return,
  the mean final return of each mode, the critic's rank correlation and, on
  cartpole, what the sampled policy does with the pole."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  summary = {}
  for variant in dict.fromkeys(r['variant'] for r in records):
    chosen = [r for r in records if r['variant'] == variant]
    summary[variant] = {
        'seeds': len(chosen),
        'return_mean': float(np.mean([r['return'] for r in chosen])),
        'return_std': float(np.std([r['return'] for r in chosen])),
        'final': {mode: float(np.mean([r['final'][mode] for r in chosen]))
                  for mode in MODES},
        'rank_correlation': float(np.mean(
            [r['critic']['rank_correlation'] for r in chosen]))}
    # Fields older records lack (added with later checks), and the pole's
    # (cartpole only): averaged over the records that have them.
    for field, keys in (('final_by_temperature', None),
                        ('action_gap', ('data_above_random', 'action_spread',
                                        'state_spread')),
                        ('pole', None)):
      values = [r[field] for r in chosen if r.get(field)]
      if values:
        summary[variant][field] = {
            key: float(np.mean([v[key] for v in values]))
            for key in keys or values[0]}
  return summary


def _sweep():
  seeds = _check_flags()
  import environments  # pylint: disable=g-import-not-at-top
  dataset = environments.load_dataset(_DATASET.value)
  runs = [{'name': f'{variant}_seed{seed}_{_STEPS.value}steps',
           'variant': variant, 'seed': seed}
          for variant in _VARIANTS.value for seed in seeds]
  records, missing, monitor = common.resumable(
      'defaults_sweep', runs,
      lambda run: [_run(dataset, run['variant'], run['seed'])],
      run_missing=not _REPORT_ONLY.value)
  summary = summarise(records)
  results = {'records': records, 'missing': missing, 'summary': summary,
             'settings': {'dataset': _DATASET.value, 'steps': _STEPS.value,
                          'seeds': seeds,
                          'eval_episodes': _EVAL_EPISODES.value,
                          'final_episodes': _FINAL_EPISODES.value,
                          # A report's load readings are its own, not the
                          # runs' (each record has its run's wall time).
                          'report_only': _REPORT_ONLY.value}}
  written = common.write_results('defaults_sweep', results, monitor)
  common.bar_panels(
      [('last return (sampled policy)', 'return',
        {v: s['return_mean'] for v, s in summary.items()}),
       ('final return, Q-filtered acting', 'return',
        {v: s['final']['q_filter'] for v, s in summary.items()}),
       ('critic vs data returns', 'rank correlation',
        {v: s['rank_correlation'] for v, s in summary.items()})],
      os.path.join(common.RESULTS_DIR.value, 'defaults_sweep.png'),
      f'PAC variants on {os.path.basename(_DATASET.value)}, '
      f'{_STEPS.value} steps')
  print(f'[defaults_sweep] {len(records)} records, {len(missing)} runs '
        f'missing; {written}', flush=True)
  for variant, row in summary.items():
    print(f'  {variant:16s} {row["return_mean"]:7.1f} +- '
          f'{row["return_std"]:5.1f}  modes ' + ' '.join(
              f'{m} {row["final"][m]:.0f}' for m in MODES) +
          f'  rho {row["rank_correlation"]:.2f}' + (
              '  data>random {data_above_random:.2f} Q spread: actions '
              '{action_spread:.2f} states {state_spread:.2f}'.format(
                  **row['action_gap']) if 'action_gap' in row else '') + (
              '  upright {upright_fraction:.2f} |w| '
              '{mean_abs_angular_velocity:.1f}'.format(**row['pole'])
              if 'pole' in row else '') + (
              '  sampled at T ' + ' '.join(
                  f'{t}: {r:.0f}'
                  for t, r in row['final_by_temperature'].items())
              if 'final_by_temperature' in row else ''), flush=True)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  launching.exit_on_failure(_sweep)


if __name__ == '__main__':
  app.run(main)
