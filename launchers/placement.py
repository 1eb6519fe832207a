"""Where each node computes: the learner on the accelerator, the rest on CPU.

JAX (and a TensorFlow built with GPU support) takes the GPUs a process can
see, and JAX reserves most of their memory when it starts; a Launchpad
program has a dozen processes, and only the learner should. So every node
group's process starts with an environment (Launchpad's `local_resources`
under `local_mp`) that hides the GPUs from all groups but the learner
(`CUDA_VISIBLE_DEVICES=''`, `JAX_PLATFORMS=cpu`) and sets each group's XLA
CPU threads; the learner's TensorFlow (checkpointing only) allocates GPU
memory on demand, never up front. Under `test_mt` / `local_mt` every node is
a thread of one process, so none of this applies.
"""

import importlib.util
from typing import Dict

LEARNER_DEVICES = ('auto', 'cpu', 'gpu')
# Node groups that never compute on an accelerator.
CPU_GROUPS = ('replay', 'counter', 'dataset_loader', 'actor', 'evaluator',
              'controller')
# JAX's CUDA plugins (`pip install "jax[cuda12]"`; newer JAX also cuda13).
_CUDA_PLUGINS = ('jax_cuda12_plugin', 'jax_cuda13_plugin')


def cpu_threads_env(count: int) -> Dict[str, str]:
  """Environment that gives a process's XLA (and OpenMP) `count` threads."""
  return {'XLA_FLAGS': f'--xla_cpu_multi_thread_eigen={str(count > 1).lower()}'
                       f' intra_op_parallelism_threads={count}',
          'OMP_NUM_THREADS': str(count)}


def cuda_available() -> bool:
  """Whether JAX here can use a GPU at all (its CUDA plugin is installed);
  checked without starting a backend, which would reserve GPU memory."""
  return any(importlib.util.find_spec(name) is not None
             for name in _CUDA_PLUGINS)


def node_environment(group: str, learner_device: str, learner_threads: int,
                     actor_threads: int, actor_niceness: int
                     ) -> Dict[str, str]:
  """Environment variables of one node group's processes.

  Args:
    group: the Launchpad group ('learner', 'actor', ...).
    learner_device: 'auto' (JAX's default: a GPU if it has one), 'cpu' or
      'gpu' (the learner must get one, or fails at start).
    learner_threads: XLA CPU threads of the learner (when on the CPU).
    actor_threads: XLA CPU threads of each actor and the evaluator.
    actor_niceness: how far actors and the evaluator yield the CPU to the
      learner on a shared machine (read by the start-up hook, pac_site.py).
  """
  if learner_device not in LEARNER_DEVICES:
    raise ValueError(f'learner_device must be one of {LEARNER_DEVICES}, got '
                     f'{learner_device!r}')
  if group == 'learner':
    env = cpu_threads_env(learner_threads)
    env['TF_FORCE_GPU_ALLOW_GROWTH'] = 'true'
    if learner_device == 'cpu':
      env.update(JAX_PLATFORMS='cpu', CUDA_VISIBLE_DEVICES='')
    elif learner_device == 'gpu':
      env['JAX_PLATFORMS'] = 'cuda'
    return env
  if group not in CPU_GROUPS:
    raise ValueError(f'unknown node group {group!r}')
  acting = group in ('actor', 'evaluator')
  env = cpu_threads_env(actor_threads if acting else 1)
  env.update(JAX_PLATFORMS='cpu', CUDA_VISIBLE_DEVICES='')
  if acting:
    env['PAC_NICE'] = str(actor_niceness)
  return env
