r"""Offline-to-online: fine-tunes the offline suite's PAC models with actors.

  .venv/bin/python -m benchmarks.finetune --suite_dir=data/suite \
      [--tasks=cartpole_swingup] [--datasets=medium] [--seeds=0,1,2] \
      [--suite_steps=10000] [--steps=5000] [--actors=2] [--alpha=0.25]
      [--method=pac]

Each run starts from the PAC model the offline suite trained on the same
task, dataset and seed (`benchmarks.offline_suite --methods=pac`, or the
--method given, the same --work_dir, and --suite_steps for its --steps;
its run directory's learner checkpoint) and fine-tunes it with that
method's settings (its BC weight and evaluation temperature) as the main
job's second phase does: `--actors` actors
feed the online table, half of each batch comes from it, the other half from
the dataset, for `--steps` learner steps, evaluated 4 times on the
way after a first evaluation of the restored model, at the main job's
alpha or at `--alpha` (a run of its own, named with it). A record
(`finetune_analysis.run_record`) has the normalised return before (that
first evaluation), after, the lowest evaluation during, and the actors'
environment steps.

Resumable: each run's record goes to `<results_dir>/finetune_runs/` as it
finishes and a rerun skips it; an interrupted run resumes from its
checkpoints. Writes `<results_dir>/finetune.json` (records `{task, dataset,
seed, before, after, min_during, env_steps, ...}`, the summary and aims, the
runs still missing) and `finetune.png` (the learning curves).
"""

import json
import os
from typing import Any, Dict, List, Tuple

from absl import app
from absl import flags
from absl import logging

import agents  # noqa: F401  pylint: disable=unused-import  (before TF; JAX cache)
from benchmarks import common
from benchmarks import finetune_analysis as analysis
from benchmarks import offline_suite_analysis
from launchers import config as config_lib
from launchers import launching
from launchers import main_job

_SUITE_DIR = flags.DEFINE_string('suite_dir', 'data/suite',
                                 'The suite (python -m environments.'
                                 'build_suite).')
_TASKS = flags.DEFINE_list('tasks', [], 'Tasks (default: every task the '
                           'suite has datasets for).')
_DATASETS = flags.DEFINE_list('datasets', ['medium'], 'Dataset kinds.')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds.')
_SUITE_STEPS = flags.DEFINE_integer(
    'suite_steps', 10_000, 'Learner steps of the offline suite runs to start '
    'from (their --steps).')
_STEPS = flags.DEFINE_integer('steps', 5_000,
                              'Learner steps of fine-tuning.')
_ACTORS = flags.DEFINE_integer('actors', 2, 'Actor processes.')
_ALPHA = flags.DEFINE_float(
    'alpha', None, "BC weight while fine-tuning (default: the main job's, "
    'the offline models\' own).')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 5,
                                      'Evaluation episodes.')
_METHOD = flags.DEFINE_string(
    'method', 'pac', "The offline suite's PAC method whose models to "
    'fine-tune (pac, pac_alpha<x>, either with _t<T>: evaluated at '
    'temperature T); its settings carry over.')
_WORK_DIR = flags.DEFINE_string('work_dir', 'runs/offline_suite',
                                'Run directories of the offline suite; the '
                                'fine-tuning runs go beside them.')


def _suite() -> Tuple[Dict[str, Any], List[str]]:
  """The suite and the tasks to run (RunConfigError: exit 2, one line)."""
  try:
    return offline_suite_analysis.read_complete_suite(_SUITE_DIR.value,
                                                      _TASKS.value)
  except ValueError as error:
    raise config_lib.RunConfigError(str(error)) from None


def _overrides() -> Dict[str, float]:
  """The agent settings of --method, at --alpha if given."""
  overrides = offline_suite_analysis.method_overrides(_METHOD.value)
  if _ALPHA.value is not None:
    overrides['alpha'] = _ALPHA.value
  return overrides


def _runs(suite: Dict[str, Any], tasks: List[str]) -> List[Dict[str, Any]]:
  try:
    offline_suite_analysis.method_overrides(_METHOD.value)
  except ValueError as error:
    raise config_lib.RunConfigError(f'--method: {error}') from None
  if not offline_suite_analysis.is_pac(_METHOD.value):
    raise config_lib.RunConfigError(
        f'--method={_METHOD.value} is not a PAC method; fine-tuning starts '
        'from pac or pac_alpha<x> models (with an optional _t<T>)')
  bad = sorted(set(_DATASETS.value) - set(offline_suite_analysis.SUBOPTIMAL))
  if bad:
    raise config_lib.RunConfigError(
        f'--datasets: unknown {", ".join(bad)}; choose from '
        f'{", ".join(offline_suite_analysis.SUBOPTIMAL)}')
  unbuilt = sorted(f'{task} {dataset}' for task in tasks
                   for dataset in _DATASETS.value
                   if dataset not in suite[task]['datasets'])
  if unbuilt:
    raise config_lib.RunConfigError(
        f'{_SUITE_DIR.value} has no {", ".join(unbuilt)} dataset; build it: '
        f'python -m environments.build_suite --out={_SUITE_DIR.value}')
  runs, absent = [], []
  for seed in (int(s) for s in _SEEDS.value):
    for task in tasks:
      for dataset in _DATASETS.value:
        offline = offline_suite_analysis.run_name(
            _METHOD.value, task, dataset, _SUITE_STEPS.value, seed)
        offline_dir = os.path.join(_WORK_DIR.value, offline)
        if not os.path.exists(os.path.join(offline_dir, 'eval.jsonl')):
          absent.append((task, dataset, seed))
        alpha = '' if _ALPHA.value is None else f'_alpha{_ALPHA.value:g}'
        runs.append({'name': f'finetune_{offline}_{_STEPS.value}'
                             f'steps_{_ACTORS.value}actors{alpha}',
                     'task': task, 'dataset': dataset, 'seed': seed,
                     'offline_dir': offline_dir})
  if absent:
    raise config_lib.RunConfigError(
        f'no offline PAC model under {_WORK_DIR.value} for '
        f'{", ".join(f"{t} {d} seed {s}" for t, d, s in absent)}; train them '
        f'first: python -m benchmarks.offline_suite --suite_dir='
        f'{_SUITE_DIR.value} --work_dir={_WORK_DIR.value} '
        f'--methods={_METHOD.value} '
        f'--tasks={",".join(sorted({t for t, _, _ in absent}))} '
        f'--datasets={",".join(sorted({d for _, d, _ in absent}))} '
        f'--seeds={",".join(sorted({str(s) for _, _, s in absent}))} '
        f'--steps={_SUITE_STEPS.value}')
  return runs


def _config(run: Dict[str, Any], suite: Dict[str, Any]
            ) -> config_lib.RunConfig:
  """The main job's fine-tuning phase, from the offline suite's model."""
  return config_lib.RunConfig(
      mode='finetune', task=run['task'],
      run_dir=os.path.join(_WORK_DIR.value, run['name']),
      dataset=suite[run['task']]['datasets'][run['dataset']]['path'],
      agent=main_job.agent_config(
          run['seed'], online_fraction=0.5, samples_per_insert=32.0,
          **_overrides()),
      num_actors=_ACTORS.value,
      max_learner_steps=_SUITE_STEPS.value + _STEPS.value,
      eval_every_steps=max(_STEPS.value // 4, 1),
      eval_episodes=_EVAL_EPISODES.value, checkpoint_every_s=30.0,
      restore_from=run['offline_dir'], seed=run['seed'])


def _sweep():
  suite, tasks = _suite()
  runs = _runs(suite, tasks)
  configs = {run['name']: _config(run, suite) for run in runs}
  records, missing, monitor = common.run_grid(
      'finetune', runs, configs,
      lambda run, config, seconds: [analysis.run_record(
          run, os.path.join(run['offline_dir'], 'eval.jsonl'),
          config.path('eval.jsonl'), suite[run['task']], seconds)])
  summary = analysis.summarise(records)
  results = {'records': records, 'missing': missing, **summary,
             'settings': {'suite_dir': _SUITE_DIR.value,
                          'seeds': _SEEDS.value,
                          'suite_steps': _SUITE_STEPS.value,
                          'steps': _STEPS.value,
                          'actors': _ACTORS.value,
                          'method': _METHOD.value,
                          'alpha': main_job.agent_config(
                              **_overrides()).alpha,
                          'eval_temperature': main_job.agent_config(
                              **_overrides()).eval_temperature,
                          'eval_episodes': _EVAL_EPISODES.value}}
  written = common.write_results('finetune', results, monitor)
  analysis.plot(records,
                os.path.join(common.RESULTS_DIR.value, 'finetune.png'),
                f'PAC fine-tuned online: {_STEPS.value} learner '
                f'steps, {_ACTORS.value} actors, '
                f'{len(_SEEDS.value)} seeds')
  print(f'[finetune] {len(records)} records, {len(missing)} runs missing; '
        f'{written}', flush=True)
  print(json.dumps(summary['aims'], indent=1), flush=True)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  launching.exit_on_failure(_sweep)


if __name__ == '__main__':
  app.run(main)
