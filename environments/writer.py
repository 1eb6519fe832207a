"""Writes an offline dataset: behaviour-policy rollouts logged by EnvLogger.

Step data goes through EnvLogger's own wrapper and Riegeli writer, the standard
RLDS producer of the dm-env ecosystem, so the steps directory is a plain EnvLogger
dataset. What EnvLogger cannot hold cleanly (anything known only at the end, like
the returns of all episodes) goes to the JSON sidecar `dataset.json`.

What each EnvLogger record holds (EnvLogger's own convention, not RLDS's): record
k is (timestep_k, the action that led to it, custom data). Our custom data is
{'log_prob': float32} for that action, or None on the first record. The reader
shifts actions back by one to form RLDS steps (see `dataset.py`).

Writing is atomic: everything goes into a hidden sibling directory that is
renamed to the destination only at the end; any exception (KeyboardInterrupt
included) removes it, and a SIGKILL leaves only that hidden directory, which the
reader refuses.

Episodes can be written by several processes at once (`workers`): each writes
a contiguous block of episodes as its own EnvLogger shard, and the shards are
moved into one steps directory at the end. Every episode is seeded from the
dataset seed and its index alone, so the data do not depend on the number of
processes.
"""

import datetime
import importlib.metadata
import json
import math
import os
import queue as queue_lib
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import dm_env
import envlogger
import numpy as np

from environments import errors
from environments import layout
from environments import policies
from environments import specs_io
from environments import suite

# {'policy': str, 'return': float, 'length': int}
EpisodeSummary = Dict[str, Any]
# Marks a generation process's report lines on its standard output.
_MESSAGE = 'pac-writer: '



class _Recorder:
  """Feeds EnvLogger's step/episode callbacks from the generation loop."""

  def __init__(self):
    self.log_prob: Optional[float] = None  # Of the action being stepped.
    self.policy = ''
    self.info: Dict[str, Any] = {}  # Joins each episode's summary.
    self.summary: Optional[EpisodeSummary] = None
    self.all_log_probs = True  # Whether every action so far had a log_prob.
    self._rewards: List[float] = []

  def step_fn(self, timestep: dm_env.TimeStep, action: Any,
              env: dm_env.Environment) -> Optional[Dict[str, np.float32]]:
    del timestep, env
    if action is None:  # The reset record has no action.
      return None
    if self.log_prob is None:
      self.all_log_probs = False
      return None
    return {'log_prob': np.float32(self.log_prob)}

  def episode_fn(self, timestep: dm_env.TimeStep, action: Any,
                 env: dm_env.Environment) -> Optional[EpisodeSummary]:
    """Called on every record; returns the summary on the last one only."""
    del action, env
    if timestep.first():
      self._rewards = []
      return None
    self._rewards.append(float(timestep.reward))
    if not timestep.last():
      return None
    # fsum is exact, hence independent of order: the reader recomputes it.
    self.summary = {'policy': self.policy,
                    'return': math.fsum(self._rewards),
                    'length': len(self._rewards), **self.info}
    return self.summary


def _check_destination(out: str, overwrite: bool) -> None:
  if not os.path.lexists(out):
    return
  if not overwrite:
    raise errors.DatasetExistsError(
        f'{out} already exists. Pass --overwrite (overwrite=True) to replace '
        'it, or choose another output path.')
  is_dataset = os.path.isfile(os.path.join(out, layout.METADATA_FILE))
  if not is_dataset and not (os.path.isdir(out) and not os.listdir(out)):
    raise errors.DatasetExistsError(
        f'Refusing to overwrite {out}: it is not a dataset (no '
        f'{layout.METADATA_FILE}) nor an empty directory. Remove it yourself '
        'if you really mean to.')


def _install(tmp: str, out: str) -> None:
  """Moves the finished `tmp` to `out`, replacing an old dataset there."""
  if not os.path.lexists(out):
    os.rename(tmp, out)
    return
  trash = tempfile.mkdtemp(prefix=f'.{os.path.basename(out)}.old-',
                           dir=os.path.dirname(out))
  try:
    old = os.path.join(trash, 'dataset')
    os.rename(out, old)
    try:
      os.rename(tmp, out)
    except BaseException:
      os.rename(old, out)  # Put the old dataset back.
      raise
  finally:
    shutil.rmtree(trash, ignore_errors=True)


def _versions() -> Dict[str, str]:
  return {package: importlib.metadata.version(package)
          for package in ('dm_control', 'mujoco', 'envlogger')}


def _return_stats(returns: List[float]) -> Dict[str, float]:
  values = np.asarray(returns, np.float64)
  return {'mean': float(values.mean()), 'std': float(values.std()),
          'min': float(values.min()), 'max': float(values.max())}


def check_request(out: str, task: str, policy: str, num_episodes: int,
                  overwrite: bool = False) -> None:
  """Raises the error `write_dataset` would raise for these inputs, at once.

  Lets a caller (the CLI) reject bad inputs before showing any progress.
  """
  if num_episodes < 1:
    raise errors.DatasetError(f'num_episodes must be >= 1, got {num_episodes}.')
  policies.check_policy(policy, task)  # Checks the task too.
  _check_destination(os.path.abspath(out), overwrite)


def default_workers() -> int:
  """The CPUs this process may run on: the default number of writers."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # Not on Linux.
    return os.cpu_count() or 1


def episode_seeds(seed: int, episode: int) -> Tuple[int, np.random.Generator]:
  """(environment seed, policy rng) of one episode of a dataset.

  Each episode is seeded from (seed, its index) alone, so it comes out the
  same whichever process writes it, and in whatever order.
  """
  env_sequence, policy_sequence = np.random.SeedSequence([seed, episode]).spawn(2)
  return (int(env_sequence.generate_state(1)[0]),
          np.random.default_rng(policy_sequence))


def _write_episodes(steps_dir: str, task: str, policy: str,
                    episodes: Sequence[int], seed: int,
                    logger_metadata: Dict[str, Any],
                    on_episode: Callable[[EpisodeSummary], None]
                    ) -> Tuple[List[EpisodeSummary], bool]:
  """Writes `episodes` (indices into the dataset) into one EnvLogger dataset.

  Returns their summaries, in order, and whether every action had a log_prob.
  """
  env = suite.make_environment(task, episode_seeds(seed, episodes[0])[0])
  behaviour = policies.behaviour_policies(policy, task, env.action_spec())
  recorder = _Recorder()
  summaries = []
  with envlogger.EnvLogger(env, data_directory=steps_dir,
                           metadata=logger_metadata,
                           step_fn=recorder.step_fn,
                           episode_fn=recorder.episode_fn) as logged_env:
    for episode in episodes:
      env_seed, rng = episode_seeds(seed, episode)
      env.task.random.seed(env_seed)  # The task draws initial states from it.
      actor = behaviour[episode % len(behaviour)]
      recorder.policy = actor.name
      timestep = logged_env.reset()
      while not timestep.last():
        action, recorder.log_prob = actor(timestep, rng)
        timestep = logged_env.step(action)
      summaries.append(recorder.summary)
      on_episode(recorder.summary)
  return summaries, recorder.all_log_probs


def _worker_main(argv: List[str]) -> int:
  """`python -m environments.writer <json>`: one generation process.

  Writes the episodes it is given into its own EnvLogger directory and prints
  one JSON line per finished episode, then one with its result. Stops after
  the episode in progress if its parent has died (e.g. SIGKILL), rather than
  writing on into an abandoned directory.
  """
  job = json.loads(argv[1])
  parent = job['parent']

  def report(summary: EpisodeSummary) -> None:
    if os.getppid() != parent:
      raise SystemExit(1)
    print(_MESSAGE + json.dumps({'episode': summary}), flush=True)

  summaries, all_log_probs = _write_episodes(
      job['steps_dir'], job['task'], job['policy'],
      range(job['start'], job['stop']), job['seed'], job['logger_metadata'],
      report)
  print(_MESSAGE + json.dumps({'done': [summaries, all_log_probs]}),
        flush=True)
  return 0


def _start_worker(job: Dict[str, Any], messages: queue_lib.Queue,
                  index: int) -> subprocess.Popen:
  """Starts a generation process and a thread that forwards its lines.

  A fresh interpreter running only this module: it imports dm_control and
  EnvLogger, not whatever the parent program imported (multiprocessing's
  spawn would re-import the parent's main module, e.g. all of JAX and TF).
  """
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [root] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
                if p]))
  process = subprocess.Popen(
      [sys.executable, '-m', 'environments.writer', json.dumps(job)],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)

  def forward():
    try:
      for line in process.stdout:
        if line.startswith(_MESSAGE):  # Skips anything a library printed.
          messages.put((index, json.loads(line[len(_MESSAGE):])))
    finally:
      messages.put((index, {'exit': process.wait(),
                            'stderr': process.stderr.read()}))

  threading.Thread(target=forward, daemon=True).start()
  return process


def _write_in_parallel(steps_dir: str, task: str, policy: str,
                       num_episodes: int, seed: int, workers: int,
                       logger_metadata: Dict[str, Any],
                       on_episode: Callable[[EpisodeSummary], None]
                       ) -> Tuple[List[EpisodeSummary], bool]:
  """Writes contiguous blocks of episodes from `workers` processes.

  Each process writes its own EnvLogger shard; the shards are then moved
  into `steps_dir`, named so that EnvLogger's reader (which orders shards by
  directory name) reads the episodes in dataset order.
  """
  bounds = np.linspace(0, num_episodes, workers + 1).round().astype(int)
  worker_dirs = [os.path.join(steps_dir, f'.worker-{k}')
                 for k in range(workers)]
  messages: queue_lib.Queue = queue_lib.Queue()
  processes = []
  results = {}
  try:
    for k, directory in enumerate(worker_dirs):
      os.mkdir(directory)
      job = {'steps_dir': directory, 'task': task, 'policy': policy,
             'start': int(bounds[k]), 'stop': int(bounds[k + 1]),
             'seed': seed, 'logger_metadata': logger_metadata,
             'parent': os.getpid()}
      processes.append(_start_worker(job, messages, k))
    while len(results) < workers:
      index, message = messages.get()
      if 'episode' in message:
        on_episode(message['episode'])
      elif 'done' in message:
        results[index] = message['done']
      elif index not in results:  # Exited without a result.
        last = message['stderr'].strip().splitlines()[-1:] or ['no output']
        raise RuntimeError(
            f'Generation process {index} exited with code {message["exit"]}: '
            f'{last[0]}')
  finally:
    for process in processes:
      if process.poll() is None:
        process.terminate()
      process.wait()
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S')
  shard = 0
  for k, directory in enumerate(worker_dirs):
    if k == 0:
      os.rename(os.path.join(directory, layout.LOGGER_METADATA_FILE),
                os.path.join(steps_dir, layout.LOGGER_METADATA_FILE))
    for name in sorted(os.listdir(directory)):
      if os.path.isdir(os.path.join(directory, name)):
        os.rename(os.path.join(directory, name),
                  os.path.join(steps_dir, f'{stamp}{shard:06d}'))
        shard += 1
    shutil.rmtree(directory)
  summaries = [s for k in range(workers) for s in results[k][0]]
  return summaries, all(results[k][1] for k in range(workers))


def _finish(tmp: str, task: str, policy: str, descriptions: Dict[str, str],
            seed: int, summaries: List[EpisodeSummary], all_log_probs: bool,
            spec: Dict[str, Any], **extra) -> Dict[str, Any]:
  """Writes `dataset.json` (last, synced) into `tmp`; returns it."""
  metadata = {
      'format': layout.FORMAT,
      'format_version': layout.FORMAT_VERSION,
      'task': task,
      'policy': policy,  # Also the quality level.
      'policies': descriptions,
      'seed': seed,
      'num_episodes': len(summaries),
      'num_transitions': sum(s['length'] for s in summaries),
      'has_log_prob': all_log_probs,
      'returns': _return_stats([s['return'] for s in summaries]),
      'episodes': summaries,
      'spec': spec,
      'created_at': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'versions': _versions(),
      **extra,
  }
  with open(os.path.join(tmp, layout.METADATA_FILE), 'w') as f:
    json.dump(metadata, f, indent=1)
    f.flush()
    os.fsync(f.fileno())
  return metadata


def _new_tmp(out: str) -> str:
  """The hidden sibling of `out` that a dataset is written into."""
  os.makedirs(os.path.dirname(out), exist_ok=True)
  tmp = tempfile.mkdtemp(
      prefix=f'.{os.path.basename(out)}{layout.INCOMPLETE_MARKER}',
      dir=os.path.dirname(out))
  os.mkdir(os.path.join(tmp, layout.STEPS_DIR))
  return tmp


def write_dataset(
    out: str, task: str, policy: str, num_episodes: int, seed: int,
    overwrite: bool = False,
    on_episode: Optional[Callable[[EpisodeSummary], None]] = None,
    workers: int = 1,
) -> Dict[str, Any]:
  """Rolls out `policy` on `task` for `num_episodes` and writes a dataset.

  Args:
    out: destination directory; must not exist unless `overwrite`.
    task: a suite task name, e.g. 'cartpole_swingup'.
    policy: 'random', 'expert', 'medium' or 'mixed' (see `policies`).
    num_episodes: number of episodes (>= 1).
    seed: seeds the environment and the policy; equal seeds give equal data.
    overwrite: replace an existing dataset (or empty directory) at `out`.
    on_episode: called with each episode's summary as it finishes (progress;
      from several processes the order is that of completion).
    workers: processes that write episodes in parallel; the dataset is the
      same for any number (each episode is seeded from `seed` and its index).

  Returns:
    The metadata written to `dataset.json`.

  Raises:
    UnknownTaskError, UnknownPolicyError, DatasetExistsError, DatasetError.
  """
  check_request(out, task, policy, num_episodes, overwrite)
  if workers < 1:
    raise errors.DatasetError(f'workers must be >= 1, got {workers}.')
  workers = min(workers, num_episodes)
  on_episode = on_episode or (lambda summary: None)
  out = os.path.abspath(out)
  # The spec and policy names, from an environment the writers do not use.
  env = suite.make_environment(task, seed)
  spec = specs_io.spec_to_json(suite.environment_spec(env))
  behaviour = policies.behaviour_policies(policy, task, env.action_spec())
  env.close()

  tmp = _new_tmp(out)
  try:
    steps_dir = os.path.join(tmp, layout.STEPS_DIR)
    logger_metadata = {'format': layout.FORMAT,
                       'format_version': layout.FORMAT_VERSION,
                       'task': task, 'policy': policy, 'seed': seed}
    if workers == 1:
      summaries, all_log_probs = _write_episodes(
          steps_dir, task, policy, range(num_episodes), seed,
          logger_metadata, on_episode)
    else:
      summaries, all_log_probs = _write_in_parallel(
          steps_dir, task, policy, num_episodes, seed, workers,
          logger_metadata, on_episode)

    metadata = _finish(tmp, task, policy, {p.name: p.description
                                           for p in behaviour},
                       seed, summaries, all_log_probs, spec)
    _install(tmp, out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return metadata


class _Playback(dm_env.Environment):
  """Plays back one recorded episode, so EnvLogger writes it as it ran."""

  def __init__(self, spec):
    self._spec = spec
    self._timesteps: List[dm_env.TimeStep] = []

  def load(self, timesteps: Sequence[dm_env.TimeStep]):
    self._timesteps = list(timesteps)

  def reset(self) -> dm_env.TimeStep:
    return self._timesteps.pop(0)

  def step(self, action) -> dm_env.TimeStep:
    del action
    return self._timesteps.pop(0)

  def observation_spec(self):
    return self._spec.observations

  def action_spec(self):
    return self._spec.actions

  def reward_spec(self):
    return self._spec.rewards

  def discount_spec(self):
    return self._spec.discounts


class EpisodeWriter:
  """Writes episodes collected elsewhere (e.g. by an actor) as one dataset.

  The same format, files and metadata as `write_dataset`, episode by episode:
  `add` writes a whole episode (so the dataset never holds a partial one) and
  `close` writes `dataset.json` and moves the dataset into place. Until then
  it is a hidden directory the reader refuses, so a killed process leaves no
  half dataset (and loses the episodes added since it opened).
  """

  def __init__(self, out: str, task: str, spec, policy: str,
               description: str, seed: int, **extra):
    """`spec` is the environment's (`suite.environment_spec`); `extra` goes
    into `dataset.json` as is (e.g. where the episodes came from)."""
    self._out = os.path.abspath(out)
    _check_destination(self._out, overwrite=False)
    self._task, self._spec, self._policy = task, spec, policy
    self._description, self._seed, self._extra = description, seed, extra
    self._tmp = _new_tmp(self._out)
    self._playback = _Playback(spec)
    self._recorder = _Recorder()
    self._recorder.policy = policy
    self._summaries: List[EpisodeSummary] = []
    self._logger = envlogger.EnvLogger(
        self._playback,
        data_directory=os.path.join(self._tmp, layout.STEPS_DIR),
        metadata={'format': layout.FORMAT,
                  'format_version': layout.FORMAT_VERSION, 'task': task,
                  'policy': policy, 'seed': seed},
        step_fn=self._recorder.step_fn, episode_fn=self._recorder.episode_fn)

  @property
  def num_episodes(self) -> int:
    return len(self._summaries)

  def add(self, timesteps: Sequence[dm_env.TimeStep], actions: Sequence[Any],
          **info) -> EpisodeSummary:
    """Writes one whole episode: `timesteps[0]` is its first, `actions[k]`
    led from `timesteps[k]` to `timesteps[k + 1]`. `info` joins its summary
    in `dataset.json` (e.g. the learner step of the acting parameters)."""
    if len(timesteps) != len(actions) + 1 or not timesteps[-1].last():
      raise ValueError('an episode is its timesteps (first to last) and one '
                       'action fewer')
    self._playback.load(timesteps)
    self._recorder.info = info
    self._logger.reset()
    for action in actions:
      self._logger.step(action)
    self._summaries.append(self._recorder.summary)
    return self._recorder.summary

  def close(self) -> Optional[Dict[str, Any]]:
    """Installs the dataset; returns its metadata (None, and nothing on disk,
    if no episode was added)."""
    self._logger.close()
    try:
      if not self._summaries:
        return None
      metadata = _finish(
          self._tmp, self._task, self._policy,
          {self._policy: self._description}, self._seed, self._summaries,
          self._recorder.all_log_probs,
          specs_io.spec_to_json(self._spec), **self._extra)
      _install(self._tmp, self._out)
      return metadata
    finally:
      shutil.rmtree(self._tmp, ignore_errors=True)


if __name__ == '__main__':
  sys.exit(_worker_main(sys.argv))
