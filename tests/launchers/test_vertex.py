"""The Vertex AI launch up to its submission: resources, worker pools, images
and the errors a user without the cloud side gets (no cloud is reachable
here)."""

import os
import subprocess
import sys

from acme import specs
import cloudpickle
import numpy as np
import pytest
from xmanager import xm

from launchers import config as config_lib
from launchers import program as program_lib
from launchers import vertex
from tests.launchers import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TASK = 'cartpole_swingup'


def _spec():
  return specs.EnvironmentSpec(
      observations={'a': specs.Array((3,), np.float32),
                    'b': specs.Array((2, 2), np.uint8)},
      actions=specs.BoundedArray((2,), np.float32, -1., 1.),
      rewards=specs.Array((), np.float32),
      discounts=specs.BoundedArray((), np.float32, 0., 1.))


def _config(tmp_path, dataset, **overrides):
  values = dict(mode='finetune', task=TASK, run_dir=str(tmp_path / 'run'),
                dataset=dataset, agent=helpers.small_agent(online_fraction=0.5),
                num_actors=3)
  values.update(overrides)
  return config_lib.RunConfig(**values)


def test_transition_bytes_counts_both_observations_action_and_overhead():
  # (12 + 4) bytes of observation, twice; 8 of action; 8 of reward and
  # discount; 256 of Reverb's bookkeeping.
  assert vertex.transition_bytes(_spec()) == 2 * 16 + 8 + 8 + 256


def test_resources_put_the_accelerator_on_the_learner_and_size_replay(
    tmp_path, cartpole_dataset):
  config = _config(tmp_path, cartpole_dataset, actor_cpu_threads=3)
  small = vertex.group_resources(config, _spec(), {'offline': 1000})
  large = vertex.group_resources(config, _spec(), {'offline': 20_000_000})
  assert small['learner'].accelerator == 'A100'
  assert small['learner'].accelerator_count == 1
  assert all(r.accelerator is None for group, r in small.items()
             if group != 'learner')
  # 1M online + 1k offline transitions of 304 bytes, twice, + 2 GiB.
  assert small['replay'].memory_gib == np.ceil(
      2 * 1_001_000 * 304 / 2 ** 30) + 2 == 3
  assert large['replay'].memory_gib == np.ceil(
      2 * 21_000_000 * 304 / 2 ** 30) + 2
  assert small['actor'].cpu == small['evaluator'].cpu == 4
  cpu_only = vertex.group_resources(config, _spec(), {'offline': 1000},
                                    accelerator_count=0)
  assert cpu_only['learner'].accelerator is None


def _program(tmp_path, dataset):
  config = _config(tmp_path, dataset)
  spec, sizes = config_lib.preflight(config)
  return config, spec, sizes, program_lib.make_program(config, spec, sizes)


def test_worker_pools_group_alike_nodes_with_one_replica_first(
    tmp_path, cartpole_dataset):
  config, spec, sizes, program = _program(tmp_path, cartpole_dataset)
  resources = vertex.group_resources(config, spec, sizes)
  environments = {group: {'GROUP': 'acting' if group in ('actor', 'evaluator')
                          else group if group in ('learner', 'replay')
                          else 'small'} for group in program.groups}
  pools = vertex.worker_pools(program, resources, environments)
  groups = [[group for group, _ in pool] for pool in pools]
  assert groups == [['replay'], ['learner'],
                    ['counter', 'dataset_loader', 'controller'],
                    ['actor', 'actor', 'actor', 'evaluator']]
  # Every node in exactly one pool.
  assert sum(len(pool) for pool in pools) == sum(
      len(nodes) for nodes in program.groups.values())
  apart = {group: {'GROUP': group} for group in program.groups}
  with pytest.raises(config_lib.RunConfigError,
                     match='needs 7 kinds of machine.*Vertex AI takes 4'):
    vertex.worker_pools(program, resources, apart)


def test_docker_steps_install_the_stack_in_two_steps_and_the_hook():
  steps = vertex.docker_instructions('pacabc', accelerator=False)
  install = next(step for step in steps if 'pip install' in step)
  first, second = install.split(' && ')
  assert first.endswith('-r /pac/requirements.txt')
  assert second.endswith('--no-deps -r /pac/requirements-nodeps.txt')
  assert 'COPY pacabc/ /pac/' in steps
  assert any('pac.pth' in step and 'import pac_site' in step
             for step in steps)
  assert not any('cuda' in step for step in steps)
  gpu = vertex.docker_instructions('pacabc', accelerator=True)
  assert 'RUN python -m pip install --no-cache-dir "jax[cuda12]==0.6.2"' in gpu


def test_a_pools_build_context_holds_the_project_and_its_nodes(
    tmp_path, cartpole_dataset):
  config, spec, sizes, program = _program(tmp_path, cartpole_dataset)
  actors = program.groups['actor']
  directory = vertex.build_context(actors, 'workerpool3', str(tmp_path))
  assert '_' not in os.path.basename(directory)
  for name in ('requirements.txt', 'requirements-nodeps.txt', 'job.pkl',
               'process_entry.py', 'project/pac_site.py',
               'project/agents/pac/learning.py', 'project/launchers/nodes.py'):
    assert os.path.isfile(os.path.join(directory, name)), name
  assert not os.path.exists(os.path.join(directory, 'project', 'tests'))
  with open(os.path.join(directory, 'job.pkl'), 'rb') as f:
    functions = cloudpickle.load(f)
  assert len(functions) == 3 and all(callable(f) for f in functions)


def test_requirements_and_entry_are_xmanagers_own():
  resources = vertex.Resources(cpu=8, memory_gib=32, accelerator='A100',
                               accelerator_count=1)
  built = vertex.requirements(xm, resources, replicas=1)
  assert isinstance(built, xm.JobRequirements)
  assert built.replicas == 1
  assert built.task_requirements[xm.ResourceType.A100] == 1
  assert built.task_requirements[xm.ResourceType.MEMORY] == 32 * xm.GiB
  assert vertex.entry_command({'JAX_PLATFORMS': 'cpu', 'A': '1'}) == (
      'env A="1" JAX_PLATFORMS="cpu" python process_entry.py '
      '--data_file=job.pkl')


def test_missing_credentials_are_one_clear_error(monkeypatch, tmp_path):
  monkeypatch.setenv('GOOGLE_APPLICATION_CREDENTIALS',
                     str(tmp_path / 'none.json'))
  with pytest.raises(config_lib.RunConfigError,
                     match='no Google Cloud credentials: run gcloud auth'):
    vertex.check_credentials()


def test_the_cli_says_what_a_vertex_launch_lacks(tmp_path, cartpole_dataset):
  done = subprocess.run(
      [sys.executable, '-m', 'launchers.run', '--mode=offline',
       f'--task={TASK}', f'--dataset={cartpole_dataset}',
       f'--run_dir={tmp_path / "run"}', '--lp_launch_type=vertex_ai'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  missing = vertex.missing_packages()
  if missing:  # The venv as `make setup` makes it.
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        f'error: --lp_launch_type=vertex_ai needs {", ".join(missing)}')
  else:  # After `make vertex-setup`: credentials come next.
    assert done.returncode == 2, done.stderr
    assert 'no Google Cloud credentials' in done.stderr
