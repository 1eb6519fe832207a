"""MuJoCo (dm_control suite) tasks as dm-env environments, and offline datasets.

  make_environment('cartpole_swingup', seed=0)     one suite task (suite.py)
  MultiTaskEnvironment(tasks, seed, mode='cycle')  several, one padded spec
  resolve_tasks('a,b' or 'control_small')          task lists and task sets
  make_policy / list_policies                      behaviour policies
  write_dataset / load_dataset                     RLDS datasets via EnvLogger
  EpisodeWriter                                    episodes collected elsewhere
  dataset_paths('a,b')                             several datasets, or a dir
  python -m environments.generate ...              the dataset CLI

The names below are loaded on first access (PEP 562), so `import environments`
imports nothing heavy: no dm_control, MuJoCo, EnvLogger, TensorFlow or JAX. It
also lets the CLI configure EnvLogger's C++ logging before EnvLogger loads.
"""

import os

import lazy_exports

# Headless by default: nothing here opens a window, and without a display
# dm_control's default (GLFW) prints an X11 warning in every process. Set
# MUJOCO_GL yourself (e.g. glfw, osmesa) to choose another backend.
os.environ.setdefault('MUJOCO_GL', 'egl')

_EXPORTS = {
    'Dataset': 'dataset',
    'EpisodeWriter': 'writer',
    'dataset_paths': 'dataset',
    'load_dataset': 'dataset',
    'policy_returns': 'dataset',
    'CorruptDatasetError': 'errors',
    'DatasetError': 'errors',
    'DatasetExistsError': 'errors',
    'DatasetNotFoundError': 'errors',
    'DatasetSpecError': 'errors',
    'MissingFieldError': 'errors',
    'NotADatasetError': 'errors',
    'UnknownPolicyError': 'errors',
    'UnknownTaskError': 'errors',
    'MultiTaskEnvironment': 'multitask',
    'list_policies': 'policies',
    'make_policy': 'policies',
    'environment_spec': 'suite',
    'list_tasks': 'suite',
    'make_environment': 'suite',
    'resolve_tasks': 'suite',
    'TASK_SETS': 'suite',
    'write_dataset': 'writer',
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports.attach(__name__, _EXPORTS)
