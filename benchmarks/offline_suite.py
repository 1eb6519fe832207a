r"""PAC vs BC (and Acme's offline D4PG) on every dataset of the suite.

  .venv/bin/python -m benchmarks.offline_suite --suite_dir=data/suite \
      [--tasks=cartpole_swingup] [--datasets=medium,expert] [--seeds=0,1,2]
      [--methods=pac,bc,d4pg,pac_alpha0.25,pac_alpha0.75] [--steps=10000]

For each task of the suite (`environments.build_suite`), each dataset kind
and each seed, it trains offline with Launchpad's `local_mp` and the main
job's agent settings (`launchers.main_job.agent_config`): `pac` (the
defaults: alpha 0.5, evaluations sampled at temperature 0.5), `bc` (the
same model, data, steps and evaluations with alpha = 1) and
`pac_alpha0.25`, `pac_alpha0.75` (the defaults at another BC weight; the
summary's alpha-PAC row takes the best PAC alpha per dataset); any of
them with a `_t<T>` suffix evaluates at temperature T instead (`pac_t1`,
`bc_t1`: the defaults until 2026-12-07); and the
peer `d4pg`: Acme's own D4PG learner on the same transitions for the same
steps (`benchmarks.offline_d4pg`, in a process of its own; an interrupted
one starts again). Every run evaluates at every third of
its steps (--eval_episodes); a record has its last evaluation's return and
its best, normalised by the suite's constants (`suite.json`: 0 = the task's
random dataset, 100 = its expert dataset).

Resumable: each run's record goes to `<results_dir>/offline_suite_runs/`
(`<method>_<task>_<dataset>_<steps>steps_seed<s>.json`) as it finishes and a
rerun skips it; an interrupted run resumes from its checkpoints (under
--work_dir). --report_only trains nothing and reports what is recorded (so
sweeps over different --tasks may run side by side, then one report).
Writes `<results_dir>/offline_suite.json` (records `{task, dataset, method,
seed, normalized_return, return, learner_steps, ...}`, with the learner's
last BC loss, policy entropy and weights' ESS where the run's directory is
here; the summary and aims, what is missing), `offline_suite.md` (the
table) and `offline_suite.png`.
"""

import json
import os
import time
from typing import Any, Dict, List, Tuple

from absl import app
from absl import flags
from absl import logging

import agents  # noqa: F401  pylint: disable=unused-import  (before TF; JAX cache)
from benchmarks import common
from benchmarks import offline_d4pg
from benchmarks import offline_suite_analysis as analysis
from launchers import config as config_lib
from launchers import launching
from launchers import main_job

_SUITE_DIR = flags.DEFINE_string('suite_dir', 'data/suite',
                                 'The suite (python -m environments.'
                                 'build_suite).')
_TASKS = flags.DEFINE_list('tasks', [], 'Tasks (default: every task the '
                           'suite has datasets for).')
_DATASETS = flags.DEFINE_list('datasets', list(analysis.DATASETS),
                              'Dataset kinds.')
_METHODS = flags.DEFINE_list(
    'methods', list(analysis.METHODS + analysis.ALPHA_VARIANTS),
    'Methods: pac, bc, d4pg, pac_alpha<x> (PAC at BC weight x); a _t<T> '
    'suffix evaluates a PAC or BC method at temperature T (pac_t1).')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds.')
_STEPS = flags.DEFINE_integer('steps', 10_000, 'Learner steps of every run.')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 5,
                                      'Evaluation episodes.')
_WORK_DIR = flags.DEFINE_string('work_dir', 'runs/offline_suite',
                                'Run directories (checkpoints, logs).')
_REPORT_ONLY = flags.DEFINE_bool(
    'report_only', False, 'Train nothing: write the results of the runs '
    'recorded so far (the rest listed as missing).')


def _suite() -> Tuple[Dict[str, Any], List[str]]:
  """The suite and the tasks to run (RunConfigError: exit 2, one line)."""
  try:
    return analysis.read_complete_suite(_SUITE_DIR.value, _TASKS.value)
  except ValueError as error:
    raise config_lib.RunConfigError(str(error)) from None


def _runs(tasks: List[str]) -> List[Dict[str, Any]]:
  bad = sorted(set(_DATASETS.value) - set(analysis.DATASETS))
  if bad:
    raise config_lib.RunConfigError(
        f'--datasets: unknown {", ".join(bad)}; choose from '
        f'{", ".join(analysis.DATASETS)}')
  for method in _METHODS.value:
    try:
      analysis.method_overrides(method)
    except ValueError as error:
      raise config_lib.RunConfigError(f'--methods: {error}') from None
  runs = []
  for seed in (int(s) for s in _SEEDS.value):
    for task in tasks:
      for dataset in _DATASETS.value:
        for method in _METHODS.value:
          runs.append({'name': analysis.run_name(method, task, dataset,
                                                 _STEPS.value, seed),
                       'task': task, 'dataset': dataset, 'method': method,
                       'seed': seed})
  return runs


def _config(run: Dict[str, Any], suite: Dict[str, Any]
            ) -> config_lib.RunConfig:
  overrides = analysis.method_overrides(run['method'])
  return config_lib.RunConfig(
      mode='offline', task=run['task'],
      run_dir=os.path.join(_WORK_DIR.value, run['name']),
      dataset=_dataset_path(run, suite),
      agent=main_job.agent_config(run['seed'], **overrides),
      max_learner_steps=_STEPS.value,
      eval_every_steps=max(_STEPS.value // 3, 1),
      eval_episodes=_EVAL_EPISODES.value, checkpoint_every_s=30.0,
      seed=run['seed'])


def _dataset_path(run: Dict[str, Any], suite: Dict[str, Any]) -> str:
  return suite[run['task']]['datasets'][run['dataset']]['path']


def _run_one(run: Dict[str, Any], suite: Dict[str, Any],
             configs: Dict[str, config_lib.RunConfig]
             ) -> List[Dict[str, Any]]:
  """Trains one run to its end in a process of its own; its record."""
  start = time.time()
  run_dir = os.path.join(_WORK_DIR.value, run['name'])
  if run['method'] == analysis.PEER:
    common.run_in_own_process(
        offline_d4pg.run_to_end,
        (_dataset_path(run, suite), run['seed'], _STEPS.value,
         _EVAL_EPISODES.value, run_dir), 'offline_suite', run_dir)
  else:
    common.launch_in_own_process(configs[run['name']], 'offline_suite')
  return analysis.run_records(run, os.path.join(run_dir, 'eval.jsonl'),
                              suite[run['task']], time.time() - start)


def _sweep():
  suite, tasks = _suite()
  runs = _runs(tasks)
  # Every PAC program's config is checked before the first run starts.
  configs = {run['name']: _config(run, suite) for run in runs
             if run['method'] != analysis.PEER}
  records, missing, monitor = common.resumable(
      'offline_suite', runs, lambda run: _run_one(run, suite, configs),
      run_missing=not _REPORT_ONLY.value)
  for record in records:
    metrics = analysis.final_learner_metrics(os.path.join(
        _WORK_DIR.value, analysis.run_name(
            record['method'], record['task'], record['dataset'],
            _STEPS.value, record['seed'])))
    if metrics:
      record['final_learner'] = metrics
  summary = analysis.summarise(records)
  results = {'records': records, 'missing': missing, **summary,
             'constants': {task: {k: suite[task][k] for k in
                                  ('random_return', 'expert_return')}
                           for task in suite},
             'settings': {'suite_dir': _SUITE_DIR.value,
                          'seeds': _SEEDS.value, 'steps': _STEPS.value,
                          'eval_episodes': _EVAL_EPISODES.value}}
  written = common.write_results('offline_suite', results, monitor)
  common.write_whole(
      os.path.join(common.RESULTS_DIR.value, 'offline_suite.md'),
      analysis.markdown_table(summary))
  analysis.plot(summary,
                os.path.join(common.RESULTS_DIR.value, 'offline_suite.png'),
                f'{" vs ".join(_METHODS.value)}, {_STEPS.value} learner '
                f'steps, seeds recorded: '
                f'{sorted({r["seed"] for r in records}) or "none"} of '
                f'{",".join(_SEEDS.value)} ({len(missing)} runs missing)')
  print(f'[offline_suite] {len(records)} records, {len(missing)} runs '
        f'missing; {written}', flush=True)
  print(json.dumps(summary['aims'], indent=1), flush=True)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  launching.exit_on_failure(_sweep)


if __name__ == '__main__':
  app.run(main)
