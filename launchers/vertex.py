"""Launches a PAC program on Google Cloud's Vertex AI, through XManager.

Launchpad's own Vertex AI path builds every image `FROM python:X.Y` with one
`pip install -r requirements.txt`; this stack installs in two steps (the
second `--no-deps`, see README "Why two install steps") and needs the
project's start-up hook in the image, so this module builds the containers
itself and launches them the way Launchpad's path does:

* each node group gets resources (`group_resources`): the learner an
  accelerator, the replay server memory for its tables (sized from the
  dataset's transitions and the online table's capacity), actors and the
  evaluator CPUs by their thread count;
* groups with the same resources and environment share a Vertex AI worker
  pool (at most four; the first holds one replica), one replica per node;
* each pool's image is the project's requirements installed in two steps
  (plus JAX's CUDA plugin where there is an accelerator), the project and
  the pool's serialised node functions; a replica runs its node, found by
  its index in the pool (Launchpad's `process_entry`, `CLUSTER_SPEC`).

Datasets and the run directory must be where every replica and the
launching machine see them: a Cloud Storage bucket, which Vertex AI mounts
at `/gcs/<bucket>` in every container (mount it at the same path where you
launch, with gcsfuse). Nothing here reaches a cloud until `launch` submits.
"""

import dataclasses
import importlib.util
import os
import re
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from acme import specs
import numpy as np
import tree

from launchers import config as config_lib
from launchers import launching
from launchers import placement
from launchers import program as program_lib

DEFAULT_ACCELERATOR = 'A100'
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What an image holds of the project (no venv, runs, data or tests).
_PROJECT = ('agents', 'environments', 'launchers', 'pac_site.py',
            'lazy_exports.py')
_REQUIREMENTS = ('requirements.txt', 'requirements-nodeps.txt')
_POOLS = ('workerpool0', 'workerpool1', 'workerpool2', 'workerpool3')
_GIB = 2 ** 30
# XManager's resource types that are not accelerators.
_NOT_ACCELERATORS = ('CPU', 'MEMORY', 'RAM', 'EPHEMERAL_STORAGE', 'DISK',
                     'LOCAL_GPU')
# Reverb's own bookkeeping per item, beyond the item's arrays (an estimate).
_ITEM_OVERHEAD_BYTES = 256


@dataclasses.dataclass(frozen=True)
class Resources:
  """What one node's replica asks Vertex AI for."""
  cpu: float
  memory_gib: float
  accelerator: Optional[str] = None
  accelerator_count: int = 0


def transition_bytes(spec: specs.EnvironmentSpec) -> int:
  """Bytes of one stored transition: observation and next observation,
  action, reward, discount, plus Reverb's per-item overhead."""
  observation = sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize
                    for s in tree.flatten(spec.observations))
  action = int(np.prod(spec.actions.shape)) * np.dtype(
      spec.actions.dtype).itemsize
  return 2 * observation + action + 8 + _ITEM_OVERHEAD_BYTES


def replay_memory_gib(config: config_lib.RunConfig,
                      spec: specs.EnvironmentSpec,
                      offline_sizes: Optional[Dict[str, int]]) -> float:
  """Memory for the replay server: its offline tables full, its online table
  at capacity (if the run has actors), twice over for Reverb's copies, plus
  2 GiB for the process; whole GiB."""
  transitions = sum((offline_sizes or {}).values())
  if config.uses_actors:
    transitions += config.agent.max_replay_size
  data = 2 * transitions * transition_bytes(spec)
  return float(np.ceil(data / _GIB) + 2)


def group_resources(config: config_lib.RunConfig, spec: specs.EnvironmentSpec,
                    offline_sizes: Optional[Dict[str, int]],
                    accelerator: str = DEFAULT_ACCELERATOR,
                    accelerator_count: int = 1) -> Dict[str, Resources]:
  """Resources of each node group's replicas."""
  acting = Resources(cpu=max(2, config.actor_cpu_threads + 1), memory_gib=4)
  small = Resources(cpu=2, memory_gib=4)
  return {
      'learner': Resources(
          cpu=max(8, config.learner_cpu_threads), memory_gib=32,
          accelerator=accelerator if accelerator_count else None,
          accelerator_count=accelerator_count),
      'replay': Resources(cpu=4, memory_gib=replay_memory_gib(
          config, spec, offline_sizes)),
      'actor': acting, 'evaluator': acting,
      'counter': small, 'controller': small, 'dataset_loader': small}


def worker_pools(program, resources: Dict[str, Resources],
                 environments: Dict[str, Dict[str, str]]
                 ) -> List[List[Tuple[str, object]]]:
  """The program's nodes as Vertex AI worker pools: `[(group, node), ...]`
  per pool. Groups with the same resources and environment share one; the
  first pool holds exactly one replica (Vertex AI's rule). RunConfigError
  if more than four pools are needed."""
  pools = {}
  for group, nodes in program.groups.items():
    key = (resources[group], tuple(sorted(environments[group].items())))
    pools.setdefault(key, []).extend((group, node) for node in nodes)
  ordered = sorted(pools.values(), key=lambda pool: len(pool) != 1)
  if len(ordered[0]) != 1:  # No single-node pool: split the first.
    ordered = [ordered[0][:1], ordered[0][1:]] + ordered[1:]
  if len(ordered) > len(_POOLS):
    groups = [sorted({group for group, _ in pool}) for pool in ordered]
    raise config_lib.RunConfigError(
        f'the run needs {len(ordered)} kinds of machine ({groups}) but '
        f'Vertex AI takes {len(_POOLS)}; give more groups the same resources')
  return ordered


def _pinned(requirements: str, package: str) -> str:
  with open(requirements) as f:
    found = re.search(rf'^{package}==(\S+)', f.read(), re.M)
  return found.group(1)


def docker_instructions(directory: str, accelerator: bool) -> List[str]:
  """The Dockerfile steps after `FROM python:3.10` for one pool's image;
  `directory` is the build context's folder (`build_context`)."""
  steps = [
      'ENV LANG=C.UTF-8 MUJOCO_GL=egl PYOPENGL_PLATFORM=egl '
      'TF_CPP_MIN_LOG_LEVEL=2',
      # EGL for MuJoCo's headless rendering.
      'RUN apt-get update && apt-get install -y --no-install-recommends '
      'libegl1 libgl1 libgles2 && rm -rf /var/lib/apt/lists/*',
      f'COPY {directory}/requirements.txt {directory}/requirements-nodeps.txt '
      '/pac/',
      'RUN python -m pip install --no-cache-dir -r /pac/requirements.txt && '
      'python -m pip install --no-cache-dir --no-deps '
      '-r /pac/requirements-nodeps.txt']
  if accelerator:
    jax = _pinned(os.path.join(_ROOT, 'requirements.txt'), 'jax')
    steps.append(f'RUN python -m pip install --no-cache-dir '
                 f'"jax[cuda12]=={jax}"')
  steps += [
      f'COPY {directory}/ /pac/',
      # The start-up hook: the project on sys.path, the stack's import order.
      'RUN printf "/pac/project\\nimport pac_site\\n" > "$(python -c '
      '\'import sysconfig; print(sysconfig.get_paths()["purelib"])\')'
      '/pac.pth"',
      'WORKDIR /pac']
  return steps


def entry_command(environment: Dict[str, str]) -> str:
  """A replica's command: its node (by its index in the pool's functions)
  with the group's environment."""
  variables = ' '.join(f'{name}="{value}"'
                       for name, value in sorted(environment.items()))
  return (f'env {variables} python process_entry.py --data_file=job.pkl'
          if variables else 'python process_entry.py --data_file=job.pkl')


def build_context(nodes: Sequence[object], label: str,
                  parent: Optional[str] = None) -> str:
  """A folder for one pool's image: the requirements files, the project
  under `project/`, Launchpad's `process_entry.py` and the nodes'
  functions in `job.pkl` (in replica order). Returns its path."""
  from launchpad import context as lp_context  # pylint: disable=g-import-not-at-top
  from launchpad.launch import serialization  # pylint: disable=g-import-not-at-top
  directory = '_'
  while '_' in os.path.basename(directory):  # Vertex AI refuses '_' there.
    directory = tempfile.mkdtemp(prefix='pac', dir=parent)
  for name in _REQUIREMENTS:
    shutil.copy(os.path.join(_ROOT, name), directory)
  for name in _PROJECT:
    source = os.path.join(_ROOT, name)
    target = os.path.join(directory, 'project', name)
    if os.path.isdir(source):
      shutil.copytree(source, target, ignore=shutil.ignore_patterns(
          '__pycache__', '*.pyc', '*.c'))
    else:
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.copy(source, target)
  shutil.copy(os.path.join(os.path.dirname(lp_context.__file__), 'nodes',
                           'python', 'process_entry.py'), directory)
  serialization.serialize_functions(os.path.join(directory, 'job.pkl'), label,
                                    [node.function for node in nodes])
  return directory


def missing_packages() -> List[str]:
  """The packages a Vertex AI launch needs that are not installed."""
  missing = []
  for module, package in (('xmanager', 'xmanager'),
                          ('google.cloud.aiplatform',
                           'google-cloud-aiplatform'),
                          ('docker', 'docker')):
    try:
      found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # Its parent package is missing.
      found = False
    if not found:
      missing.append(package)
  return missing


def _xmanager():
  """XManager's `xm` and `xm_local`, or RunConfigError saying what to
  install."""
  missing = missing_packages()
  if missing:
    raise config_lib.RunConfigError(
        f'--lp_launch_type=vertex_ai needs {", ".join(missing)}: '
        f'.venv/bin/pip install {" ".join(missing)} (see README "Vertex '
        'AI"), then gcloud auth application-default login')
  from xmanager import xm  # pylint: disable=g-import-not-at-top
  from xmanager import xm_local  # pylint: disable=g-import-not-at-top
  return xm, xm_local


def check_credentials() -> None:
  """RunConfigError unless Google Cloud's default credentials are set up."""
  import google.auth  # pylint: disable=g-import-not-at-top
  from google.auth import exceptions  # pylint: disable=g-import-not-at-top
  try:
    google.auth.default()
  except exceptions.DefaultCredentialsError:
    raise config_lib.RunConfigError(
        'no Google Cloud credentials: run gcloud auth application-default '
        'login (and gcloud config set project <your project>)') from None


def requirements(xm, resources: Resources, replicas: int):
  """XManager's job requirements for one pool."""
  values = {'cpu': resources.cpu, 'memory': resources.memory_gib * xm.GiB,
            'replicas': replicas}
  if resources.accelerator:
    values[resources.accelerator] = resources.accelerator_count
  return xm.JobRequirements(**values)


def launch(config: config_lib.RunConfig,
           accelerator: str = DEFAULT_ACCELERATOR,
           accelerator_count: int = 1) -> None:
  """Submits the run to Vertex AI (returns once it is submitted)."""
  xm, xm_local = _xmanager()
  known = [name for name in xm.ResourceType.__members__
           if name not in _NOT_ACCELERATORS]
  if accelerator_count and accelerator not in known:
    raise config_lib.RunConfigError(
        f'--vertex_accelerator={accelerator} is not an accelerator XManager '
        f'knows; one of {", ".join(known)}')
  check_credentials()
  if not os.environ.get('GOOGLE_CLOUD_BUCKET_NAME'):
    raise config_lib.RunConfigError(
        'GOOGLE_CLOUD_BUCKET_NAME is not set: XManager stages the images\' '
        'build there; export GOOGLE_CLOUD_BUCKET_NAME=<a bucket of yours>')
  from launchpad import context as lp_context  # pylint: disable=g-import-not-at-top
  from launchpad.program_stopper import program_stopper  # pylint: disable=g-import-not-at-top
  spec, offline_sizes = launching.prepare(config)
  program = program_lib.make_program(config, spec, offline_sizes)
  resources = group_resources(config, spec, offline_sizes, accelerator,
                              accelerator_count)
  environments = {group: placement.node_environment(
      group, 'gpu' if group == 'learner' and accelerator_count else 'cpu',
      config.learner_cpu_threads, config.actor_cpu_threads,
      config.actor_niceness) for group in program.groups}
  pools = worker_pools(program, resources, environments)
  vertex = lp_context.LaunchType.VERTEX_AI
  for label, nodes in program.groups.items():
    for node in nodes:
      node._launch_context.initialize(  # pylint: disable=protected-access
          vertex, None, program_stopper.make_program_stopper(vertex))
  for label, nodes in program.groups.items():
    for node in nodes:
      for handle in node.input_handles:
        handle.connect(node, label)
  for name, pool in zip(_POOLS, pools):
    for instance, (_, node) in enumerate(pool):
      node.bind_addresses(cluster=name, instance=instance)
  contexts = tempfile.mkdtemp(prefix='pacvertex')
  try:
    _submit(xm, xm_local, program.name, pools, resources, environments,
            contexts)
  except Exception as e:  # pylint: disable=broad-except
    # Google's clients raise many kinds (transport, auth, API, retry); none
    # is worth a traceback on the terminal.
    raise launching.LaunchFailed(
        f'error: the submission to Vertex AI failed: '
        f'{type(e).__name__}: {str(e).splitlines()[0][:300]}') from e
  finally:
    shutil.rmtree(contexts, ignore_errors=True)
  print(f'[run] submitted {program.name} to Vertex AI: {len(pools)} worker '
        'pools; follow it in the Cloud console (Vertex AI > Training)',
        flush=True)


def _submit(xm, xm_local, name: str, pools, resources, environments,
            contexts: str) -> None:
  """Builds each pool's image and adds its job to one XManager experiment."""
  with xm_local.create_experiment(experiment_title=name) as experiment:
    for pool_name, pool in zip(_POOLS, pools):
      group = pool[0][0]
      directory = build_context([node for _, node in pool], pool_name,
                                contexts)
      container = xm.PythonContainer(
          path=directory, base_image='python:3.10',
          entrypoint=xm.CommandList([entry_command(environments[group])]),
          docker_instructions=docker_instructions(
              os.path.basename(directory),
              resources[group].accelerator is not None))
      [executable] = experiment.package([xm.Packageable(
          executable_spec=container, executor_spec=xm_local.Caip.Spec())])
      experiment.add(xm.Job(
          executable=executable,
          executor=xm_local.Caip(requirements=requirements(
              xm, resources[group], len(pool)))))
