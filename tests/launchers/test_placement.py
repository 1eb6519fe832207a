"""`launchers.placement`: the learner may see the GPU, no other node does."""

import pytest

from launchers import config as config_lib
from launchers import placement


def _env(group, device='auto'):
  return placement.node_environment(group, device, learner_threads=4,
                                    actor_threads=2, actor_niceness=10)


@pytest.mark.parametrize('group', placement.CPU_GROUPS)
def test_every_node_but_the_learner_is_kept_off_the_gpu(group):
  for device in placement.LEARNER_DEVICES:
    env = _env(group, device)
    assert env['CUDA_VISIBLE_DEVICES'] == '' and env['JAX_PLATFORMS'] == 'cpu'
  threads = '2' if group in ('actor', 'evaluator') else '1'
  assert env['OMP_NUM_THREADS'] == threads
  assert f'intra_op_parallelism_threads={threads}' in env['XLA_FLAGS']
  assert ('PAC_NICE' in env) == (group in ('actor', 'evaluator'))


def test_the_learner_goes_where_asked_and_tf_takes_no_gpu_memory_up_front():
  auto, cpu, gpu = (_env('learner', d) for d in ('auto', 'cpu', 'gpu'))
  assert 'JAX_PLATFORMS' not in auto and 'CUDA_VISIBLE_DEVICES' not in auto
  assert cpu['JAX_PLATFORMS'] == 'cpu' and cpu['CUDA_VISIBLE_DEVICES'] == ''
  assert gpu['JAX_PLATFORMS'] == 'cuda' and 'CUDA_VISIBLE_DEVICES' not in gpu
  for env in (auto, cpu, gpu):
    assert env['TF_FORCE_GPU_ALLOW_GROWTH'] == 'true'
    assert 'intra_op_parallelism_threads=4' in env['XLA_FLAGS']


def test_unknown_groups_and_devices_are_refused():
  with pytest.raises(ValueError, match='unknown node group'):
    _env('trainer')
  with pytest.raises(ValueError, match='learner_device'):
    _env('learner', 'tpu')
  with pytest.raises(config_lib.RunConfigError, match='learner_device'):
    config_lib.RunConfig(mode='offline', task='cartpole_swingup',
                         run_dir='unused', dataset='unused',
                         learner_device='tpu')


@pytest.mark.skipif(placement.cuda_available(), reason='JAX has CUDA here')
def test_a_gpu_learner_without_cuda_is_refused_before_any_node_starts():
  config = config_lib.RunConfig(mode='offline', task='cartpole_swingup',
                                run_dir='unused', dataset='unused',
                                learner_device='gpu')
  with pytest.raises(config_lib.RunConfigError, match='no CUDA support'):
    config_lib.preflight(config)
