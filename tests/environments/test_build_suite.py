"""The dataset suite: five kinds per task, their normalisation constants,
resumption, and tasks that have no teachers yet."""

import json
import os
import shutil

import environments
from environments import build_suite


def test_the_suite_writes_five_kinds_and_their_constants(tmp_path):
  out = str(tmp_path / 'suite')
  lines = []
  records = build_suite.build(['cartpole_swingup', 'acrobot_swingup'], 2, out,
                              seed=0, workers=1, log=lines.append)
  record = records['cartpole_swingup']
  assert sorted(record['datasets']) == sorted(build_suite.KINDS)
  policies_of = {}
  for kind in build_suite.KINDS:
    dataset = environments.load_dataset(
        build_suite.dataset_path(out, 'cartpole_swingup', kind))
    assert dataset.num_episodes == 2
    policies_of[kind] = [e['policy'] for e in dataset.metadata['episodes']]
    returns = [e['return'] for e in dataset.metadata['episodes']]
    assert record['datasets'][kind]['return_mean'] == round(
        sum(returns) / 2, 2)
  assert policies_of == {'random': ['random'] * 2, 'medium': ['medium'] * 2,
                         'expert': ['expert'] * 2,
                         'medium_replay': ['random', 'medium'],
                         'medium_expert': ['medium', 'expert']}
  assert record['random_return'] == record['datasets']['random']['return_mean']
  assert record['expert_return'] == record['datasets']['expert']['return_mean']
  assert record['expert_return'] > 600 > 100 > record['random_return']
  # Every kind has its own seed: no two datasets share an episode.
  seeds = {record['datasets'][kind]['seed'] for kind in build_suite.KINDS}
  assert len(seeds) == 5
  assert 'train_teacher --tasks=acrobot_swingup' in records[
      'acrobot_swingup']['missing']
  with open(os.path.join(out, 'suite.json')) as f:
    assert json.load(f) == records

  # A rerun keeps what is whole and rewrites what is not.
  medium = build_suite.dataset_path(out, 'cartpole_swingup', 'medium')
  shutil.rmtree(medium)
  os.makedirs(medium)  # What a killed writer could leave.
  lines.clear()
  again = build_suite.build(['cartpole_swingup'], 2, out, seed=0, workers=1,
                            log=lines.append)
  assert sum('kept 2 episodes' in line for line in lines) == 4
  assert any(line.startswith('[suite] cartpole_swingup/medium: wrote')
             for line in lines)
  assert again['cartpole_swingup'] == record


def test_bad_suite_input_exits_2(tmp_path, capsys):
  assert build_suite.main(['--tasks=cartpole_nope',
                           f'--out={tmp_path}']) == 2
  assert 'cartpole_nope' in capsys.readouterr().err
  assert build_suite.main(['--episodes=0', f'--out={tmp_path}']) == 2
