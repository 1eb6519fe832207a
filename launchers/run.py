r"""Launches a PAC run: offline training, online fine-tuning or self-improvement.

  python -m launchers.run --mode=offline --task=cartpole_swingup \
      --dataset=data/cartpole_swingup_mixed --run_dir=runs/offline

Local runs use Launchpad's `local_mp` (one process per node, node output in
`<run_dir>/logs/nodes/`); the terminal shows one status line per evaluation and
the result table at the end. Rerunning with the same --run_dir resumes it.
`--lp_launch_type=cluster --hosts=FILE` runs the same program on several hosts
(launchers/cluster.py), `--lp_launch_type=vertex_ai` on Google Cloud
(launchers/vertex.py).
"""


from absl import app
from absl import flags
from absl import logging

import agents  # pylint: disable=unused-import  (Acme compat before Acme/TF)
from agents.pac import config as pac_config
from launchers import cluster
from launchers import config as config_lib
from launchers import launching
from launchers import vertex

_MODE = flags.DEFINE_enum('mode', 'offline', config_lib.MODES, 'Run mode.')
_TASK = flags.DEFINE_string(
    'task', 'cartpole_swingup', 'dm_control task; or several, comma-separated, '
    'or a task set (control_small): one model learns them all.')
_DATASET = flags.DEFINE_string(
    'dataset', None, 'RLDS dataset directory, or several, comma-separated; a '
    'directory of datasets (a run\'s episodes/, a suite) counts as all of '
    'them. With several tasks each dataset goes to the task it holds.')
_TASK_MIXING = flags.DEFINE_string(
    'task_mixing', 'uniform', 'Share of each task in a multi-task batch\'s '
    'offline rows: uniform, proportional (to its data), or task=w,task=w.')
_ACTOR_TASKS = flags.DEFINE_enum(
    'actor_tasks', 'cycle', config_lib.ACTOR_TASKS, 'Multi-task actors: each '
    'cycles through the tasks, or actor i plays task i only (split).')
_RUN_DIR = flags.DEFINE_string('run_dir', 'runs/default',
                               'Logs, checkpoints, plots; reuse to resume.')
_PRESET = flags.DEFINE_string('preset', 'test', 'Network size preset.')
_NUM_ACTORS = flags.DEFINE_integer('num_actors', 1, 'Actor processes.')
_MAX_STEPS = flags.DEFINE_integer('max_learner_steps', 1000,
                                  'Learner steps (offline, finetune).')
_EVAL_EVERY = flags.DEFINE_integer('eval_every_steps', 250,
                                   'Learner steps between evaluations.')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 2,
                                      'Episodes per evaluation.')
_ALPHA = flags.DEFINE_float('alpha', None, 'BC weight (1 = BC, 0 = RL).')
_ALPHA_STEPS = flags.DEFINE_integer(
    'alpha_schedule_steps', None, 'Steps to move alpha from 1 to --alpha.')
_ONLINE_FRACTION = flags.DEFINE_float(
    'online_fraction', None, 'Fraction of each batch from the online table.')
_ONLINE_STEPS = flags.DEFINE_integer(
    'online_fraction_schedule_steps', None,
    'Steps to ramp the online fraction from 0 to --online_fraction.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', None, 'Learner batch size.')
_EVAL_POLICY = flags.DEFINE_string(
    'eval_policy', None, 'How evaluations act: one of '
    f"{', '.join(pac_config.POLICY_MODES)} (PACConfig's default if unset).")
_EVAL_TEMPERATURE = flags.DEFINE_float(
    'eval_temperature', None,
    "Sampling temperature of 'sample' and 'q_filter' evaluations (< 1: "
    "sharper than the policy; PACConfig's default if unset).")
_LEARNING_RATE = flags.DEFINE_float('learning_rate', None, 'Adam step size.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Selfimprove rounds.')
_EPISODES_PER_ROUND = flags.DEFINE_integer(
    'episodes_per_round', 4, 'Selfimprove: episodes collected per round.')
_STEPS_PER_ROUND = flags.DEFINE_integer(
    'steps_per_round', 500, 'Selfimprove: learner steps per round.')
_RESTORE_FROM = flags.DEFINE_string(
    'restore_from', None, 'Run directory whose learner checkpoint starts '
    'this run (e.g. finetune an offline model).')
_CHECKPOINT_EVERY = flags.DEFINE_float('checkpoint_every_s', 60.,
                                       'Seconds between checkpoints.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
_STEPS_PER_CALL = flags.DEFINE_integer(
    'learner_steps_per_call', 8,
    'SGD steps per jitted learner call (1 = one step, one host sync each).')
_PREFETCH = flags.DEFINE_integer(
    'prefetch_batches', 2,
    'Learner calls\' worth of batches prepared ahead by a background thread '
    '(0 = none).')
_BLOCK_SIZE = flags.DEFINE_integer(
    'offline_block_size', 8,
    'Dataset transitions per offline Reverb item (1 = one per item).')
_COMPUTE_DTYPE = flags.DEFINE_enum(
    'compute_dtype', 'float32', pac_config.COMPUTE_DTYPES,
    'Network compute precision (bfloat16 pays off on accelerators).')
_LEARNER_THREADS = flags.DEFINE_integer(
    'learner_cpu_threads', 1, 'XLA threads of a CPU learner (local_mp).')
_LEARNER_DEVICE = flags.DEFINE_enum(
    'learner_device', 'auto', ['auto', 'cpu', 'gpu'],
    'Where the learner computes (local_mp): auto = a GPU if JAX has one. '
    'Every other node runs on the CPU and sees no GPU.')
_ACTOR_THREADS = flags.DEFINE_integer(
    'actor_cpu_threads', 1, 'XLA threads of each actor and the evaluator '
    '(local_mp).')
_MAX_RESTARTS = flags.DEFINE_integer(
    'max_restarts', 3, 'local_mp: restarts of each actor or evaluator process '
    'that dies before the run gives up on it.')
_RECORD = flags.DEFINE_bool(
    'record_episodes', True, 'Actors write their episodes to '
    '<run_dir>/episodes/ as datasets (finetune, selfimprove).')
_RECORD_EVERY = flags.DEFINE_integer(
    'record_every_episodes', 10, 'Episodes per recorded dataset (a killed '
    'actor loses those of its open one).')
_LAUNCH_TYPE = flags.DEFINE_string(
    'lp_launch_type', 'local_mp',
    'Launchpad launch type: local_mp, local_mt, test_mt, test_mp, ..., or '
    'cluster (several hosts, see --hosts).')
_HOSTS = flags.DEFINE_string(
    'hosts', None, 'cluster: the host list, one line per host: <name> '
    '<cluster IPv4 address> <node groups...>.')
_REMOTE_EXEC = flags.DEFINE_string(
    'remote_exec', cluster.DEFAULT_REMOTE_EXEC,
    'cluster: how to run a command on a host; {host} is its name, {command} '
    'the command (one argument).')
_VERTEX_ACCELERATOR = flags.DEFINE_string(
    'vertex_accelerator', vertex.DEFAULT_ACCELERATOR,
    'vertex_ai: the learner\'s accelerator (XManager\'s name: A100, H100, '
    'V100, T4, ...).')
_VERTEX_ACCELERATORS = flags.DEFINE_integer(
    'vertex_accelerator_count', 1,
    'vertex_ai: accelerators of the learner (0: a CPU learner).')
_CLUSTER_PORT = flags.DEFINE_integer(
    'cluster_port', cluster.DEFAULT_PORT,
    'cluster: first port of each host\'s servers (one per server node).')
_ISOLATE = flags.DEFINE_bool(
    'isolate_network', True, 'local_mp: run in a loopback-only network '
    'namespace so no server is reachable from other hosts.')


def agent_config_from_flags() -> pac_config.PACConfig:
  overrides = {
      'alpha': _ALPHA.value,
      'alpha_schedule_steps': _ALPHA_STEPS.value,
      'online_fraction': _ONLINE_FRACTION.value,
      'online_fraction_schedule_steps': _ONLINE_STEPS.value,
      'batch_size': _BATCH_SIZE.value,
      'learning_rate': _LEARNING_RATE.value,
      'eval_policy': _EVAL_POLICY.value,
      'eval_temperature': _EVAL_TEMPERATURE.value,
  }
  if _MODE.value == 'finetune' and _ONLINE_FRACTION.value is None:
    overrides['online_fraction'] = 0.5
  if (_MODE.value == 'selfimprove' and _DATASET.value is None and
      _ONLINE_FRACTION.value is None):
    overrides['online_fraction'] = 1.0
  return pac_config.PACConfig(
      preset=_PRESET.value, seed=_SEED.value,
      learner_steps_per_call=_STEPS_PER_CALL.value,
      prefetch_batches=_PREFETCH.value,
      offline_block_size=_BLOCK_SIZE.value,
      compute_dtype=_COMPUTE_DTYPE.value,
      **{k: v for k, v in overrides.items() if v is not None})


def run_config_from_flags() -> config_lib.RunConfig:
  return config_lib.RunConfig(
      mode=_MODE.value, task=_TASK.value, run_dir=_RUN_DIR.value,
      dataset=_DATASET.value, task_mixing=_TASK_MIXING.value,
      actor_tasks=_ACTOR_TASKS.value, agent=agent_config_from_flags(),
      num_actors=_NUM_ACTORS.value, max_learner_steps=_MAX_STEPS.value,
      eval_every_steps=_EVAL_EVERY.value, eval_episodes=_EVAL_EPISODES.value,
      checkpoint_every_s=_CHECKPOINT_EVERY.value, rounds=_ROUNDS.value,
      episodes_per_round=_EPISODES_PER_ROUND.value,
      steps_per_round=_STEPS_PER_ROUND.value,
      restore_from=_RESTORE_FROM.value, seed=_SEED.value,
      learner_cpu_threads=_LEARNER_THREADS.value,
      learner_device=_LEARNER_DEVICE.value,
      actor_cpu_threads=_ACTOR_THREADS.value,
      max_restarts=_MAX_RESTARTS.value, record_episodes=_RECORD.value,
      record_every_episodes=_RECORD_EVERY.value)


def main(argv):
  del argv
  # Status lines, not framework INFO logs, on the terminal (nodes log to files).
  logging.set_verbosity(logging.WARNING)
  launching.exit_on_failure(_launch)


def _launch():
  config = run_config_from_flags()
  if _LAUNCH_TYPE.value == 'vertex_ai':
    if _VERTEX_ACCELERATORS.value < 0:
      raise config_lib.RunConfigError(
          f'--vertex_accelerator_count={_VERTEX_ACCELERATORS.value} must be '
          '>= 0')
    vertex.launch(config, _VERTEX_ACCELERATOR.value,
                  _VERTEX_ACCELERATORS.value)
    return
  if _LAUNCH_TYPE.value != 'cluster':
    if _HOSTS.value:
      raise config_lib.RunConfigError(
          '--hosts is for --lp_launch_type=cluster')
    launching.launch(config, _LAUNCH_TYPE.value, _ISOLATE.value)
    return
  if not _HOSTS.value:
    raise config_lib.RunConfigError(
        '--lp_launch_type=cluster needs --hosts=<host list file>')
  if not 0 < _CLUSTER_PORT.value < 65536:
    raise config_lib.RunConfigError(
        f'--cluster_port={_CLUSTER_PORT.value} is not a port (1-65535)')
  cluster.launch(config, cluster.Options(
      _HOSTS.value, _REMOTE_EXEC.value, _CLUSTER_PORT.value))


if __name__ == '__main__':
  app.run(main)
