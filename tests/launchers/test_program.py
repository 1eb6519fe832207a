"""The PAC Launchpad program under Launchpad's `test_mt` (all nodes as threads).

Each test runs a real program: Reverb server, dataset loader, learner,
actors, evaluator, counter and controller, on the real cartpole task. Results
are read back from the run directory the program writes.
"""

import os

import pytest

from launchers import config as config_lib
from launchers import program as program_lib
from launchers import launching
from tests.launchers import helpers

TASK = 'cartpole_swingup'


def _run_config(run_dir, dataset, **overrides) -> config_lib.RunConfig:
  values = dict(mode='offline', task=TASK, run_dir=str(run_dir),
                dataset=dataset, agent=helpers.small_agent(), max_learner_steps=40,
                eval_every_steps=20, eval_episodes=1, checkpoint_every_s=1.0)
  values.update(overrides)
  return config_lib.RunConfig(**values)


def test_offline_program_trains_loads_and_evaluates(tmp_path,
                                                    cartpole_dataset):
  config = _run_config(tmp_path / 'run', cartpole_dataset)
  launching.launch(config, 'test_mt')
  results = helpers.results(config.run_dir)
  final = results[-1]
  assert final['learner_steps'] == config.max_learner_steps
  # The shared counter saw every learner step; no actors ran offline.
  assert final['counter_learner_steps'] == config.max_learner_steps
  assert final['actor_steps'] == 0
  # The loader put the whole dataset in `offline` (blocks of 4 transitions);
  # nothing went to `online`.
  assert final['offline_size'] == 4 * (1000 + config.agent.n_step - 1) // 4
  assert final['online_size'] == 0
  assert final['offline_sampled'] >= (config.max_learner_steps *
                                      config.agent.batch_size // 4)
  assert final['episodes'] == 1 and 0.0 <= final['return_mean'] <= 1000.0
  # Evaluations run beside the learner (polled, as in Acme): intermediate
  # ones land at or after each multiple of 20; the final one is at step 40.
  assert all(r['learner_steps'] >= 20 for r in results)
  assert [r['learner_steps'] for r in results].count(40) == 1
  for artefact in ('eval_return.png', 'results.md', 'config.json',
                   'checkpoints/learner', 'checkpoints/counter',
                   'logs/learner/logs.csv'):
    assert os.path.exists(os.path.join(config.run_dir, artefact)), artefact
  assert '[done]' in helpers.status(config.run_dir)


def test_finetune_mixes_offline_and_online_data(tmp_path, cartpole_dataset):
  """Actors fill `online`; batches draw from both tables at the set fraction."""
  config = _run_config(
      tmp_path / 'run', cartpole_dataset, mode='finetune', num_actors=1,
      max_learner_steps=60, eval_every_steps=30,
      agent=helpers.small_agent(online_fraction=0.25, samples_per_insert=4.0,
                   samples_per_insert_tolerance_rate=4.0))
  launching.launch(config, 'test_mt')
  first, final = helpers.results(config.run_dir)[0], helpers.results(config.run_dir)[-1]
  # The actor's inserts reached `online`. (Its counter steps are counted at
  # the end of each 1000-step episode, which a loaded machine may not reach
  # within the run's 60 learner steps.)
  assert final['online_size'] > 0
  assert final['online_inserted'] >= first['online_inserted']
  # Reverb counts items: online transitions, offline blocks of 4.
  online, offline = final['online_sampled'], 4 * final['offline_sampled']
  # 4 of every 16 rows come from `online`. Reverb counts samples when they
  # leave the server, so prefetched batches blur the ratio a little.
  assert online / (online + offline) == pytest.approx(0.25, abs=0.07)


def test_rerun_with_same_run_dir_resumes(tmp_path, cartpole_dataset):
  run_dir = tmp_path / 'run'
  launching.launch(_run_config(run_dir, cartpole_dataset, max_learner_steps=20),
                 'test_mt')
  resumed = _run_config(run_dir, cartpole_dataset, max_learner_steps=40)
  launching.launch(resumed, 'test_mt')
  assert '[learner] resumed at step 20' in helpers.status(run_dir)
  final = helpers.results(str(run_dir))[-1]
  assert final['learner_steps'] == 40
  # The counter resumed too: it counts the first run's 20 steps.
  assert final['counter_learner_steps'] == 40


@pytest.mark.parametrize('overrides, message', [
    (dict(dataset='/nonexistent/data'), 'nonexistent'),
    (dict(task='walker_walk'), 'walker_walk'),
    (dict(task='cartpole_swingupp'), 'cartpole_swingup'),
])
def test_bad_inputs_fail_before_any_node_starts(tmp_path, cartpole_dataset,
                                                overrides, message):
  overrides = dict(overrides)
  dataset = overrides.pop('dataset', cartpole_dataset)
  config = _run_config(tmp_path / 'run', dataset, **overrides)
  with pytest.raises(config_lib.RunConfigError, match=message):
    launching.prepare(config)
  assert not os.path.exists(config.run_dir)


@pytest.mark.parametrize('overrides, field', [
    (dict(max_learner_steps=0), 'max_learner_steps'),
    (dict(mode='online'), 'mode'),
    (dict(mode='finetune', num_actors=0), 'num_actors'),
    (dict(agent=helpers.small_agent(online_fraction=0.5)), 'online_fraction'),
    (dict(mode='finetune', num_actors=1), 'online_fraction'),
    (dict(dataset=None), 'dataset'),
])
def test_nonsensical_run_configs_are_rejected(tmp_path, overrides, field):
  values = dict(dataset='unused')
  values.update(overrides)
  with pytest.raises(config_lib.RunConfigError, match=field):
    _run_config(tmp_path / 'run', **values)


def test_resuming_with_an_incompatible_config_is_refused(tmp_path,
                                                         cartpole_dataset):
  run_dir = tmp_path / 'run'
  launching.prepare(_run_config(run_dir, cartpole_dataset))
  other = _run_config(run_dir, cartpole_dataset,
                      agent=helpers.small_agent(num_bins=11))
  with pytest.raises(config_lib.RunConfigError, match='num_bins'):
    launching.prepare(other)


def test_selfimprove_rounds_collect_train_and_evaluate(tmp_path,
                                                       cartpole_dataset):
  config = _run_config(
      tmp_path / 'run', cartpole_dataset, mode='selfimprove', num_actors=1,
      rounds=2, episodes_per_round=1, steps_per_round=20,
      agent=helpers.small_agent(online_fraction=0.5))
  launching.launch(config, 'test_mt')
  results = helpers.results(config.run_dir)
  assert [r['round'] for r in results] == [1, 2]
  assert [r['learner_steps'] for r in results] == [20, 40]
  # Each round added one 1000-step episode of the current policy's data.
  assert results[0]['online_inserted'] >= 1000
  assert results[1]['online_inserted'] >= results[0]['online_inserted'] + 1000
  assert results[1]['online_sampled'] > 0
  status = helpers.status(config.run_dir)
  assert '[round 2] collected 1 episodes' in status
  assert '| round | learner steps |' in status


def test_node_seeds_are_one_split_of_the_run_seed():
  seeds = program_lib.node_seeds(0, num_actors=3)
  assert set(seeds) == {'dataset_loader', 'learner', 'evaluator', 'actor_0',
                        'actor_1', 'actor_2'}
  assert len(set(seeds.values())) == len(seeds)  # Independent streams.
  assert program_lib.node_seeds(0, num_actors=3) == seeds  # Reproducible.
  # Adding actors leaves every other node's seed as it was.
  more = program_lib.node_seeds(0, num_actors=5)
  assert {k: more[k] for k in seeds} == seeds
  # Unlike seed offsets, run 0 and run 1 share no node seed.
  assert not set(seeds.values()) & set(
      program_lib.node_seeds(1, num_actors=3).values())


def test_make_program_is_pure_and_the_same_for_every_launch_type(
    tmp_path, cartpole_dataset):
  """Checks and writes happen in `launching.prepare`; `make_program` only
  builds the program that any launch type receives."""
  config = _run_config(tmp_path / 'run', cartpole_dataset, mode='finetune',
                       num_actors=2, agent=helpers.small_agent(online_fraction=0.5))
  spec, sizes = config_lib.preflight(config)
  program = program_lib.make_program(config, spec, sizes)
  assert not os.path.exists(config.run_dir)  # Nothing written.
  assert {group: len(nodes) for group, nodes in program.groups.items()} == {
      'replay': 1, 'counter': 1, 'dataset_loader': 1, 'learner': 1,
      'actor': 2, 'evaluator': 1, 'controller': 1}
  offline = _run_config(tmp_path / 'run', cartpole_dataset)
  assert 'actor' not in program_lib.make_program(offline, spec, sizes).groups
  launching.prepare(config)  # Records the run in its directory.
  assert os.path.exists(os.path.join(config.run_dir, 'config.json'))
