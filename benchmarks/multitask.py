r"""One PAC over several tasks vs multi-task BC vs one PAC per task.

  .venv/bin/python -m benchmarks.multitask [--tasks=a,b] [--seeds=0,1,2]
      [--steps=3000]

For each seed it trains, with Launchpad's `local_mp` and the main job's agent
settings (`launchers.main_job.agent_config`), offline on each task's 'mixed'
dataset (expert, medium and random episodes of the scripted controller):
  pac_multi   one model on all tasks (uniform task mixing), --steps steps;
  bc_multi    the same model, steps and data with alpha = 1 (BC);
  pac_single  one model per task, --steps steps each (so each single-task
              model takes as many steps on its task as the multi-task model
              takes on all of them).
Every run evaluates each task on --eval_episodes episodes at every third of
its steps; a record's return is its last evaluation's (best also kept).
Normalised return: 0 = the task's random episodes, 100 = its expert ones.

Datasets: `<--data_dir>/<task>_mixed`, --episodes episodes, seed 0 (the main
job's flags and dataset: its cartpole_swingup data is shared), generated if
missing.

Resumable: each run's records go to `<results_dir>/multitask_runs/`
(`<method>_<tasks>_<steps>steps_seed<s>.json`) when it finishes and a rerun
skips it; an interrupted run resumes from its checkpoints (its run directory
under --work_dir). Writes
`<results_dir>/multitask.json` (records `{method, task, dataset, seed,
normalized_return, return, learner_steps}`, summaries, what is missing) and
`multitask.png`.
"""

import json
import os
from typing import Any, Dict, List

from absl import app
from absl import flags
from absl import logging

import agents  # noqa: F401  pylint: disable=unused-import  (before TF; JAX cache)
from benchmarks import common
from benchmarks import multitask_analysis as analysis
from launchers import config as config_lib
from launchers import launching
from launchers import main_job

_TASKS = flags.DEFINE_string(
    'tasks', 'cartpole_swingup,cartpole_balance',
    'Tasks (comma-separated, or a task set); each needs a scripted '
    'controller for its mixed dataset (environments.list_policies).')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds.')
_METHODS = flags.DEFINE_list('methods', list(analysis.METHODS), 'Methods.')
_STEPS = flags.DEFINE_integer('steps', 3000, 'Learner steps of every run.')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 5,
                                      'Evaluation episodes per task.')
_WORK_DIR = flags.DEFINE_string('work_dir', 'runs/multitask_bench',
                                'Run directories (checkpoints, logs).')

def _dataset(task: str) -> str:
  from environments import writer  # pylint: disable=g-import-not-at-top
  path = os.path.join(flags.FLAGS.data_dir, f'{task}_mixed')
  if not os.path.exists(path):
    print(f'[multitask] generating {path}', flush=True)
    writer.write_dataset(path, task=task, policy='mixed',
                         num_episodes=flags.FLAGS.episodes, seed=0,
                         workers=writer.default_workers())
  import environments  # pylint: disable=g-import-not-at-top
  returns = environments.policy_returns([environments.load_dataset(path)])
  if not {'random', 'expert'} <= set(returns):
    raise config_lib.RunConfigError(
        f'{path} holds no random or no expert episodes, so returns cannot be '
        'normalised; a mixed dataset of 3 or more episodes has both '
        '(--episodes; delete the dataset to regenerate it).')
  return path


def _runs(tasks: List[str]) -> List[Dict[str, Any]]:
  """(name, method, task list, seed) of every run of the grid."""
  runs = []
  for seed in (int(s) for s in _SEEDS.value):
    for method in _METHODS.value:
      groups = [[t] for t in tasks] if method == 'pac_single' else [tasks]
      for group in groups:
        name = (f'{method}_{"+".join(group)}_{_STEPS.value}steps_'
                f'seed{seed}')
        runs.append({'name': name, 'method': method, 'tasks': group,
                     'seed': seed})
  return runs


def _config(run: Dict[str, Any]) -> config_lib.RunConfig:
  # The committed results were measured with the main job's previous
  # learning rate, target updates and alpha; a rerun must reproduce them.
  overrides = dict(main_job.PREVIOUS_SETTINGS)
  if run['method'] == 'bc_multi':
    overrides['alpha'] = 1.0
  return config_lib.RunConfig(
      mode='offline', task=','.join(run['tasks']),
      run_dir=os.path.join(_WORK_DIR.value, run['name']),
      dataset=','.join(_dataset(t) for t in run['tasks']),
      agent=main_job.agent_config(run['seed'], **overrides),
      max_learner_steps=_STEPS.value,
      eval_every_steps=max(_STEPS.value // 3, 1),
      eval_episodes=_EVAL_EPISODES.value, checkpoint_every_s=30.0,
      seed=run['seed'])


def _sweep():
  from environments import suite  # pylint: disable=g-import-not-at-top
  try:
    tasks = list(suite.resolve_tasks(_TASKS.value))
  except Exception as e:  # pylint: disable=broad-except  (UnknownTaskError)
    raise config_lib.RunConfigError(str(e)) from e
  unknown = sorted(set(_METHODS.value) - set(analysis.METHODS))
  if unknown:
    raise config_lib.RunConfigError(
        f'--methods: unknown {", ".join(unknown)}; choose from '
        f'{", ".join(analysis.METHODS)}')
  runs = _runs(tasks)
  configs = {run['name']: _config(run) for run in runs}  # Checks the flags.
  records, missing, monitor = common.run_grid(
      'multitask', runs, configs,
      lambda run, config, seconds: analysis.run_records(
          run, config.path('eval.jsonl'), seconds))
  summary = analysis.summarise(records)
  results = {'records': records, 'missing': missing, **summary,
             'settings': {'tasks': tasks, 'seeds': _SEEDS.value,
                          'steps': _STEPS.value,
                          'eval_episodes': _EVAL_EPISODES.value,
                          'dataset_episodes': flags.FLAGS.episodes}}
  written = common.write_results('multitask', results, monitor)
  analysis.plot(summary, os.path.join(common.RESULTS_DIR.value, 'multitask.png'),
        f'{", ".join(tasks)}: {_STEPS.value} learner steps, '
        f'{len(_SEEDS.value)} seeds')
  print(f'[multitask] {len(records)} records, {len(missing)} runs missing; '
        f'{written}', flush=True)
  print(json.dumps(summary, indent=1), flush=True)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  launching.exit_on_failure(_sweep)


if __name__ == '__main__':
  app.run(main)
