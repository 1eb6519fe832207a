"""Multi-task runs: task lists, per-task data and mixing, per-task evaluation.

One model on cartpole_swingup (1 action, 5 inputs) and walker_walk (6
actions, 24 inputs): the run's spec pads both, each task's datasets fill its
own offline table, batches share their offline rows among the tasks exactly
by the mixing rule, and every evaluation scores each task.
"""

import json
import os
import shutil

import numpy as np
import pytest
import reverb

import environments
from agents.pac import replay
from launchers import config as config_lib
from launchers import launching
from launchers import nodes
from tests.launchers import helpers

TASKS = 'cartpole_swingup,walker_walk'


def _config(run_dir, dataset, **overrides) -> config_lib.RunConfig:
  values = dict(mode='offline', task=TASKS, run_dir=str(run_dir),
                dataset=dataset, agent=helpers.small_agent(), max_learner_steps=20,
                eval_every_steps=20, eval_episodes=1, checkpoint_every_s=1.0)
  values.update(overrides)
  return config_lib.RunConfig(**values)


def test_tasks_come_from_a_list_or_a_task_set():
  config = _config('unused', 'unused')
  assert config.tasks == ('cartpole_swingup', 'walker_walk')
  assert config.multitask
  small = _config('unused', 'unused', task='control_small')
  assert small.tasks == environments.TASK_SETS['control_small']
  assert not _config('unused', 'unused', task='walker_walk').multitask


def test_task_mixing_rules():
  transitions = {'cartpole_swingup': 3000, 'walker_walk': 1000}
  uniform = _config('unused', 'unused')
  assert uniform.task_weights(transitions) == {'cartpole_swingup': 0.5,
                                               'walker_walk': 0.5}
  proportional = _config('unused', 'unused', task_mixing='proportional')
  assert proportional.task_weights(transitions) == {
      'cartpole_swingup': 0.75, 'walker_walk': 0.25}
  given = _config('unused', 'unused',
                  task_mixing='walker_walk=3, cartpole_swingup=1')
  assert given.task_weights(transitions) == {'cartpole_swingup': 0.25,
                                             'walker_walk': 0.75}
  for bad in ('cartpole_swingup=1', 'cartpole_swingup=1,walker_walk=0',
              'cartpole_swingup=a,walker_walk=1', 'equal'):
    with pytest.raises(config_lib.RunConfigError, match='task_mixing'):
      _config('unused', 'unused', task_mixing=bad)


def test_actors_cycle_through_the_tasks_or_play_one_each():
  cycle = _config('unused', 'unused', task='control_small', mode='finetune',
                  num_actors=2, agent=helpers.small_agent(online_fraction=0.5))
  assert cycle.actor_visit(1) == ('finger_spin', 'walker_walk', 'cheetah_run',
                                  'cartpole_swingup')
  split = _config('unused', 'unused', mode='finetune', num_actors=3,
                  actor_tasks='split', agent=helpers.small_agent(online_fraction=0.5))
  assert [split.actor_visit(i) for i in range(3)] == [
      ('cartpole_swingup',), ('walker_walk',), ('cartpole_swingup',)]
  with pytest.raises(config_lib.RunConfigError, match='num_actors'):
    _config('unused', 'unused', task='control_small', mode='finetune',
            num_actors=2, actor_tasks='split',
            agent=helpers.small_agent(online_fraction=0.5))


def test_preflight_pads_the_spec_and_sizes_a_table_per_task(
    tmp_path, cartpole_dataset, walker_dataset):
  config = _config(tmp_path / 'run', f'{walker_dataset},{cartpole_dataset}')
  spec, sizes = config_lib.preflight(config)
  assert spec.actions.shape == (6,)
  assert spec.observations['proprio'].shape == (24,)
  assert spec.observations['task_id'].num_values == 2
  n_step = config.agent.n_step
  assert sizes == {
      'offline/cartpole_swingup': environments.load_dataset(
          cartpole_dataset).num_nstep_transitions(n_step),
      'offline/walker_walk': environments.load_dataset(
          walker_dataset).num_nstep_transitions(n_step)}


def test_a_missing_foreign_or_mismatched_dataset_is_named(
    tmp_path, cartpole_dataset, walker_dataset):
  with pytest.raises(config_lib.RunConfigError,
                     match="'walker_walk' has no dataset"):
    config_lib.preflight(_config(tmp_path / 'a', cartpole_dataset))
  with pytest.raises(config_lib.RunConfigError,
                     match="holds task 'walker_walk'.*not one of"):
    config_lib.preflight(_config(tmp_path / 'b',
                                 f'{cartpole_dataset},{walker_dataset}',
                                 task='cartpole_swingup,finger_spin'))
  # A cartpole dataset whose spec is not the task's (as if logged by another
  # version of the task): the error names the dataset and the task.
  mismatched = str(tmp_path / 'mismatched')
  shutil.copytree(cartpole_dataset, mismatched,
                  ignore=shutil.ignore_patterns('cache'))
  metadata_path = os.path.join(mismatched, 'dataset.json')
  with open(metadata_path) as f:
    metadata = json.load(f)
  metadata['spec']['observation']['velocity']['shape'] = [3]
  with open(metadata_path, 'w') as f:
    json.dump(metadata, f)
  with pytest.raises(config_lib.RunConfigError) as error:
    config_lib.preflight(_config(tmp_path / 'c',
                                 f'{mismatched},{walker_dataset}'))
  assert mismatched in str(error.value)
  assert "for task 'cartpole_swingup'" in str(error.value)
  assert 'velocity' in str(error.value)


@pytest.mark.parametrize('mixing, shares', [
    ('uniform', (8, 8)), ('cartpole_swingup=1,walker_walk=3', (4, 12))])
def test_loaded_tables_give_every_batch_its_mixing_exactly(
    tmp_path, cartpole_dataset, walker_dataset, mixing, shares):
  config = _config(tmp_path / 'run', f'{cartpole_dataset},{walker_dataset}',
                   task_mixing=mixing)
  spec, sizes = config_lib.preflight(config)
  builder = nodes.make_builder(config, sizes)
  server = reverb.Server(builder.make_replay_tables(spec))
  try:
    client = reverb.Client(f'localhost:{server.port}')
    stats = nodes.DatasetLoader(config, client, seed=0).load()
    assert stats['transitions'] == sum(sizes.values())
    info = client.server_info()
    for table, size in sizes.items():
      assert info[table].current_size == replay.num_blocks(size, 4)
    iterator = builder.make_dataset_iterator(client)
    for _ in range(5):
      batch = next(iterator)
      task_id = batch.observation['task_id']  # [16]
      assert tuple(np.bincount(task_id, minlength=2)) == shares
      # Cartpole rows: 5 inputs and 1 action; walker rows: 24 and 6.
      np.testing.assert_array_equal(
          batch.observation['proprio_mask'].sum(-1), np.where(task_id, 24, 5))
      np.testing.assert_array_equal(
          batch.observation['action_mask'].sum(-1), np.where(task_id, 6, 1))
      np.testing.assert_array_equal(batch.action[task_id == 0][:, 1:], 0.0)
  finally:
    server.stop()


@pytest.mark.integration
def test_multitask_offline_run_evaluates_every_task_and_resumes(
    tmp_path, cartpole_dataset, walker_dataset):
  dataset = f'{cartpole_dataset},{walker_dataset}'
  config = _config(tmp_path / 'run', dataset)
  launching.launch(config, 'test_mt')
  (first,) = helpers.results(config.run_dir)
  assert first['learner_steps'] == 20 and first['episodes'] == 1
  assert set(first['tasks']) == {'cartpole_swingup', 'walker_walk'}
  assert first['return_mean'] == pytest.approx(np.mean(
      [r['return_mean'] for r in first['tasks'].values()]))
  # Cartpole's mixed dataset holds random and expert episodes, walker's only
  # random ones: only cartpole has a normalised return.
  assert 'normalized_return' in first['tasks']['cartpole_swingup']
  assert 'normalized_return' not in first['tasks']['walker_walk']
  assert first['offline/walker_walk_sampled'] > 0
  assert first['offline/cartpole_swingup_sampled'] > 0
  with open(os.path.join(config.run_dir, 'results.md')) as f:
    assert '| cartpole_swingup | walker_walk |' in f.read()
  assert os.path.exists(os.path.join(config.run_dir, 'logs', 'evaluation',
                                     'logs.csv'))

  launching.launch(_config(tmp_path / 'run', dataset, max_learner_steps=40),
                   'test_mt')
  assert [r['learner_steps'] for r in helpers.results(config.run_dir)] == [20, 40]
  with open(os.path.join(config.run_dir, 'status.log')) as f:
    status = f.read()
  assert '[learner] resumed at step 20' in status
  assert 'restored from the replay checkpoint' in status

  for other in ('walker_walk,cartpole_swingup', 'cartpole_swingup'):
    with pytest.raises(config_lib.RunConfigError, match='cannot be resumed'):
      launching.prepare(_config(
          tmp_path / 'run', dataset if ',' in other else cartpole_dataset,
          task=other, max_learner_steps=60))


@pytest.mark.integration
def test_multitask_actors_play_their_tasks_and_record_them_as_task_data(
    tmp_path, cartpole_dataset, walker_dataset):
  config = _config(tmp_path / 'run', f'{cartpole_dataset},{walker_dataset}',
                   mode='finetune', num_actors=2, actor_tasks='split',
                   record_every_episodes=1, max_learner_steps=24,
                   eval_every_steps=24,
                   agent=helpers.small_agent(online_fraction=0.25))
  launching.launch(config, 'test_mt')
  final = helpers.results(config.run_dir)[-1]
  assert final['actor_steps'] >= 2000 and final['online_inserted'] > 0
  assert set(final['tasks']) == {'cartpole_swingup', 'walker_walk'}
  recorded = environments.dataset_paths(config.path('episodes'))
  by_task = {}
  for path in recorded:
    dataset = environments.load_dataset(path)
    by_task.setdefault(dataset.task, []).append(dataset)
  # Actor 0 played cartpole only, actor 1 walker only, each recorded in its
  # task's own spec: usable as that task's data by any later run.
  assert set(by_task) == {'cartpole_swingup', 'walker_walk'}
  for task, datasets in by_task.items():
    environment = environments.make_environment(task, seed=0)
    for dataset in datasets:
      dataset.check_spec(environments.environment_spec(environment))
      assert os.path.basename(dataset.path).startswith(
          f'actor_{config.tasks.index(task)}_')
      assert len(dataset.transitions().reward) == 1000


def test_pixel_tasks_are_refused_by_the_program_in_one_line():
  for task in ('cartpole_swingup_pixels,walker_walk',
               'cartpole_swingup_pixels'):
    with pytest.raises(config_lib.RunConfigError, match='_pixels'):
      _config('unused', 'unused', task=task)
