"""Reads the offline datasets written by `writer.py` (layout in `layout.py`).

Episodes come back in RLDS form, as numpy. An episode with T actions has T+1
steps; step t holds
  observation (dict, s_t), action (a_t, taken in s_t), reward (r_t, ensuing from
  a_t), discount (d_t, ensuing from a_t), is_first, is_last, is_terminal, and
  log_prob (of a_t under the behaviour policy, when recorded).
The last step (t = T) holds the final observation; its action, reward, discount
and log_prob are zeros (RLDS leaves them undefined). is_terminal is set on the
last step iff its EnvLogger discount was 0 (a true termination, not a time limit).

The EnvLogger files are read with EnvLogger's Riegeli reader directly rather than
`envlogger.Reader`: the latter, by design, silently reads around a truncated
shard (to salvage preempted jobs) and returns no episodes when the index file is
damaged. A finished dataset must be complete, so every inconsistency with
`dataset.json` (counts, lengths, per-episode returns) raises
`CorruptDatasetError` instead.

Records are decoded by `records.py`'s fast path when they have our writer's
shape, and by EnvLogger's generic codec otherwise. `columns()` and
`transitions()` go through a decoded cache beside the files (`cache.py`), so
only the first read of a dataset pays for decoding.
"""

import json
import math
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from acme import specs
from acme import types
import dm_env
from envlogger.backends.python import riegeli_dataset_reader
from envlogger.converters import codec
from envlogger.proto import storage_pb2
import numpy as np
import tree

from environments import cache
from environments import errors
from environments import layout
from environments import nstep
from environments import records
from environments import specs_io

# {'steps': {field: [T+1, ...]}, 'episode_id', 'policy', 'return', 'length'}
Episode = Dict[str, Any]

_REQUIRED_METADATA = ('task', 'policy', 'seed', 'num_episodes',
                      'num_transitions', 'has_log_prob', 'episodes', 'spec')
_REQUIRED_EPISODE = ('policy', 'return', 'length')


def _read_metadata(path: str) -> Dict[str, Any]:
  """Validates the dataset directory and returns its `dataset.json`."""
  if not os.path.lexists(path):
    raise errors.DatasetNotFoundError(
        f'No dataset at {path}: the path does not exist. Create one with '
        f'`python -m environments.generate --task TASK --policy POLICY '
        f'--out {path}`.')
  if not os.path.isdir(path):
    raise errors.NotADatasetError(f'{path} is not a dataset: not a directory.')
  if layout.INCOMPLETE_MARKER in os.path.basename(path):
    raise errors.NotADatasetError(
        f'{path} is the temporary directory of an unfinished (interrupted or '
        'still running) generation run, not a dataset. Delete it and generate '
        'again.')
  metadata_path = os.path.join(path, layout.METADATA_FILE)
  if not os.path.isfile(metadata_path):
    raise errors.NotADatasetError(
        f'{path} is not a dataset: it has no {layout.METADATA_FILE} (written '
        'last by `python -m environments.generate`, so it may also be an '
        'unfinished or foreign directory).')
  try:
    with open(metadata_path, 'rb') as f:
      metadata = json.loads(f.read().decode('utf-8'))
  except (ValueError, UnicodeDecodeError) as e:
    raise errors.CorruptDatasetError(
        f'{metadata_path} is not valid JSON ({e}); the dataset is damaged, '
        'regenerate it.') from e
  if not isinstance(metadata, dict):
    raise errors.CorruptDatasetError(
        f'{metadata_path} should hold a JSON object, found '
        f'{type(metadata).__name__}.')
  if (metadata.get('format') != layout.FORMAT
      or metadata.get('format_version') != layout.FORMAT_VERSION):
    raise errors.NotADatasetError(
        f'{metadata_path} has format {metadata.get("format")!r} version '
        f'{metadata.get("format_version")!r}; this reader reads '
        f'{layout.FORMAT!r} version {layout.FORMAT_VERSION}.')
  for key in _REQUIRED_METADATA:
    if key not in metadata:
      raise errors.MissingFieldError(
          f'{metadata_path} lacks the required field {key!r} (expected all of '
          f'{list(_REQUIRED_METADATA)}); regenerate the dataset.')
  episodes = metadata['episodes']
  if (not isinstance(episodes, list)
      or len(episodes) != metadata['num_episodes']):
    raise errors.CorruptDatasetError(
        f'{metadata_path}: "episodes" should list {metadata["num_episodes"]} '
        'episodes (num_episodes).')
  for i, episode in enumerate(episodes):
    for key in _REQUIRED_EPISODE:
      if not isinstance(episode, dict) or key not in episode:
        raise errors.MissingFieldError(
            f'{metadata_path}: episode {i} lacks the field {key!r} (expected '
            f'{list(_REQUIRED_EPISODE)}).')
  return metadata


class Dataset:
  """An offline dataset on disk: metadata, spec, episodes and transitions.

  Opening checks the metadata and the EnvLogger index against each other;
  step data is decoded (and checked) when episodes are read.
  """

  def __init__(self, path: str):
    self._path = os.path.abspath(path)
    self._metadata = _read_metadata(self._path)
    self._metadata_path = os.path.join(self._path, layout.METADATA_FILE)
    self._spec = specs_io.spec_from_json(self._metadata['spec'],
                                         self._metadata_path)
    self._steps_dir = os.path.join(self._path, layout.STEPS_DIR)
    self._reader = self._open_steps()
    # What `columns()` did last: 'warm', 'built', 'rebuilt (...)', ...
    self.cache_status: Optional[str] = None

  def _open_steps(self) -> riegeli_dataset_reader.RiegeliDatasetReader:
    if not os.path.isdir(self._steps_dir):
      raise errors.CorruptDatasetError(
          f'{self._steps_dir} is missing: the dataset has no step data; '
          'regenerate it.')
    reader = riegeli_dataset_reader.RiegeliDatasetReader()
    try:
      reader.init(self._steps_dir)
      logged = codec.decode(reader.metadata()) or {}
    except (RuntimeError, ValueError, TypeError) as e:
      raise errors.CorruptDatasetError(
          f'Cannot open the EnvLogger (Riegeli) files in {self._steps_dir}: '
          f'{str(e).rstrip(".")}. They are truncated or damaged; regenerate '
          'the dataset.') from e
    expected_steps = (self._metadata['num_transitions']
                      + self._metadata['num_episodes'])
    found = (reader.num_episodes, reader.num_steps)
    if found != (self._metadata['num_episodes'], expected_steps):
      raise errors.CorruptDatasetError(
          f'{self._steps_dir} holds {found[0]} episodes / {found[1]} records '
          f'but {self._metadata_path} expects {self._metadata["num_episodes"]}'
          f' / {expected_steps}: the Riegeli files are truncated or damaged; '
          'regenerate the dataset.')
    logged_task = logged.get('task') if isinstance(logged, dict) else None
    if logged_task != self.task:
      raise errors.CorruptDatasetError(
          f'{self._steps_dir} was logged for task {logged_task!r}, but '
          f'{self._metadata_path} says {self.task!r}: they do not belong '
          'together; regenerate the dataset.')
    return reader

  @property
  def path(self) -> str:
    return self._path

  @property
  def metadata(self) -> Dict[str, Any]:
    """The contents of `dataset.json` (task, policy, seed, episodes, spec...)."""
    return self._metadata

  @property
  def spec(self) -> specs.EnvironmentSpec:
    """The environment spec the data was recorded with, rebuilt from metadata."""
    return self._spec

  @property
  def task(self) -> str:
    return self._metadata['task']

  @property
  def num_episodes(self) -> int:
    return self._metadata['num_episodes']

  @property
  def num_transitions(self) -> int:
    """Number of actions (one-step transitions) over all episodes."""
    return self._metadata['num_transitions']

  def num_nstep_transitions(self, n_step: int) -> int:
    """How many transitions `transitions(n_step)` yields, without decoding.

    Acme's n-step adder (which `nstep.py` follows) writes T + min(n, T) - 1
    transitions for an episode of T actions.
    """
    return sum(e['length'] + min(n_step, e['length']) - 1
               for e in self._metadata['episodes'])

  def check_spec(self, env_spec: specs.EnvironmentSpec) -> None:
    """Raises `DatasetSpecError` naming the first field that differs."""
    specs_io.check_spec(self._spec, env_spec, f'dataset {self._path}')

  def _serialized(self, index: int, episode: int) -> bytes:
    """The raw bytes of EnvLogger record `index` (of episode `episode`)."""
    serialized = self._reader.serialized_step(index)
    if serialized is None:
      raise errors.CorruptDatasetError(
          f'steps.riegeli in {self._steps_dir}: record {index} (episode '
          f'{episode}) cannot be read: the file is truncated or damaged; '
          'regenerate the dataset.')
    return serialized

  def _decode(self, serialized: bytes, index: int, episode: int) -> tuple:
    """Generic decoding of one record: ((type, reward, discount, obs), a, x)."""
    try:
      (step_type, reward, discount, observation), action, custom = codec.decode(
          storage_pb2.Data.FromString(serialized))
    except Exception as e:  # pylint: disable=broad-except
      # Damaged bytes surface as protobuf, codec, or unpacking errors alike.
      raise errors.CorruptDatasetError(
          f'steps.riegeli in {self._steps_dir}: record {index} (episode '
          f'{episode}) cannot be decoded ({e!r}).') from e
    return (step_type, reward, discount, observation), action, custom

  def _field(self, episode: int, name: str, values: List[Any],
             spec: specs.Array) -> np.ndarray:
    """Stacks one field over steps and checks it against its spec."""
    try:
      stacked = np.stack([np.asarray(v) for v in values])
    except ValueError as e:
      raise errors.CorruptDatasetError(
          f'{self._steps_dir}: episode {episode}, field {name!r} has '
          f'inconsistent shapes across steps ({e}).') from e
    if (stacked.shape[1:] != tuple(spec.shape)
        or stacked.dtype != np.dtype(spec.dtype)):
      raise errors.CorruptDatasetError(
          f'{self._steps_dir}: episode {episode}, field {name!r}: expected '
          f'shape {tuple(spec.shape)} dtype {np.dtype(spec.dtype).name} (as in '
          f'{self._metadata_path}), found shape {stacked.shape[1:]} dtype '
          f'{stacked.dtype.name}.')
    return stacked

  def _decode_generic(self, serialized: List[bytes], start: int,
                      i: int) -> records.EpisodeFields:
    """`records.decode_episode`'s output by EnvLogger's own decoder.

    Slower, but decodes any record EnvLogger can, and names the field and
    step of whatever does not match the dataset's spec.
    """
    decoded = [self._decode(s, start + j, i) for j, s in enumerate(serialized)]
    timesteps = [r[0] for r in decoded]
    observations = {}
    for name, spec in self._spec.observations.items():
      values = []
      for j, timestep in enumerate(timesteps):
        if not isinstance(timestep[3], Mapping) or name not in timestep[3]:
          raise errors.MissingFieldError(
              f'{self._steps_dir}: episode {i}, step {j} lacks observation '
              f'{name!r}, which {self._metadata_path} declares.')
        values.append(timestep[3][name])
      observations[name] = self._field(i, f'observation/{name}', values, spec)
    # EnvLogger record j+1 carries a_j and what ensued from it (RLDS step j).
    after = decoded[1:]
    fields = {
        'step_types': [int(t[0]) for t in timesteps],
        'observation': observations,
        'action': self._field(i, 'action', [r[1] for r in after],
                              self._spec.actions),  # [T, A]
        'reward': self._field(i, 'reward', [r[0][1] for r in after],
                              self._spec.rewards),  # [T]
        'discount': self._field(i, 'discount', [r[0][2] for r in after],
                                self._spec.discounts),  # [T]
        'log_prob': None,
    }
    if self._metadata['has_log_prob']:
      log_probs = []
      for j, record in enumerate(after):
        if not isinstance(record[2], Mapping) or 'log_prob' not in record[2]:
          raise errors.MissingFieldError(
              f'{self._steps_dir}: episode {i}, step {j} lacks log_prob, which '
              f'{self._metadata_path} declares (has_log_prob).')
        log_probs.append(record[2]['log_prob'])
      fields['log_prob'] = self._field(i, 'log_prob', log_probs,
                                       specs.Array((), np.float32))
    return fields

  def _episode_fields(self, i: int,
                      fast: bool = True) -> records.EpisodeFields:
    """Reads, decodes and checks episode i against `dataset.json`."""
    summary = self._metadata['episodes'][i]
    try:
      info = self._reader.episode(i, True)
    except RuntimeError as e:
      raise errors.CorruptDatasetError(
          f'{self._steps_dir}: the index of episode {i} cannot be read ({e}); '
          'regenerate the dataset.') from e
    length = summary['length']  # T
    if info.num_steps != length + 1:
      raise errors.CorruptDatasetError(
          f'{self._steps_dir}: episode {i} has {info.num_steps} records, '
          f'{self._metadata_path} says {length + 1}.')
    serialized = [self._serialized(info.start + j, i)
                  for j in range(length + 1)]
    fields = (fast and records.decode_episode(
        serialized, self._spec, self._metadata['has_log_prob'])) or (
            self._decode_generic(serialized, info.start, i))
    if fields['step_types'] != ([int(dm_env.StepType.FIRST)]
                                + [int(dm_env.StepType.MID)] * (length - 1)
                                + [int(dm_env.StepType.LAST)]):
      raise errors.CorruptDatasetError(
          f'{self._steps_dir}: episode {i} does not run FIRST, MID..., LAST.')
    recomputed = math.fsum(fields['reward'].tolist())
    if recomputed != summary['return']:
      raise errors.CorruptDatasetError(
          f'{self._steps_dir}: episode {i} sums to return {recomputed}, '
          f'{self._metadata_path} records {summary["return"]}.')
    logged_summary = codec.decode(info.metadata)
    if logged_summary != summary:
      raise errors.CorruptDatasetError(
          f'{self._steps_dir}: episode {i} metadata {logged_summary!r} differs '
          f'from {self._metadata_path} ({summary!r}); the episode metadata '
          'file is damaged.')
    return fields

  def _episode(self, i: int, fast: bool = True) -> Episode:
    fields = self._episode_fields(i, fast)
    length = self._metadata['episodes'][i]['length']
    discounts = fields['discount']
    steps = {
        'observation': fields['observation'],
        'action': _append_zero(fields['action']),
        'reward': _append_zero(fields['reward']),
        'discount': _append_zero(discounts),
        'is_first': np.arange(length + 1) == 0,
        'is_last': np.arange(length + 1) == length,
        'is_terminal': (np.arange(length + 1) == length) & (discounts[-1] == 0),
    }
    if fields['log_prob'] is not None:
      steps['log_prob'] = _append_zero(fields['log_prob'])
    return {'steps': steps, 'episode_id': i, **self._metadata['episodes'][i]}

  def episodes(self) -> Iterator[Episode]:
    """Yields every episode, in order, as RLDS numpy (see module docstring)."""
    for i in range(self.num_episodes):
      yield self._episode(i)

  def decode_columns(self, fast: bool = True) -> cache.Columns:
    """Decodes every episode from the EnvLogger files (no cache involved).

    `fast=False` decodes every record with EnvLogger's generic codec instead
    of `records.py`'s fast path (same result, about 4x slower).
    """
    parts = [self._episode(i, fast)['steps']
             for i in range(self.num_episodes)]
    steps = _concatenate(parts) if parts else {}
    return cache.Columns(
        observation=steps['observation'], action=steps['action'],
        reward=steps['reward'], discount=steps['discount'],
        log_prob=steps.get('log_prob'),
        episode_lengths=np.asarray(
            [e['length'] for e in self._metadata['episodes']], np.int64))

  def columns(self, use_cache: bool = True) -> cache.Columns:
    """All steps of all episodes as columns (RLDS rows, episodes in order).

    With `use_cache` (the default), the columns come from the dataset's cache
    (`cache.py`) when it is valid for these files, and are decoded and cached
    otherwise; `cache_status` then says which happened. Without, they are
    decoded from the EnvLogger files every time.
    """
    if not use_cache:
      self.cache_status = 'not used'
      return self.decode_columns()
    columns, self.cache_status = cache.load_or_build(
        self._path, self._metadata, self.decode_columns)
    return columns

  def transitions(self, n_step: int = 1, discount: float = 0.99,
                  use_cache: bool = True) -> types.Transition:
    """All n-step transitions as one `Transition` of numpy arrays.

    Follows Acme's NStepTransitionAdder exactly (see `nstep.py`): reward is the
    discounted n-step return, discount is discount^(n-1) times the product of
    environment discounts, next_observation is s_{t+n} (or s_T near the end).
    Shapes: observation/next_observation name -> [N, ...], action [N, A],
    reward [N], discount [N], extras {'log_prob': [N]} or {}.
    """
    _check_nstep_args(n_step, discount)
    columns = self.columns(use_cache)
    extras = ({'log_prob': columns.log_prob}
              if columns.log_prob is not None else {})
    return nstep.dataset_transitions(
        columns.observation, columns.action, columns.reward, columns.discount,
        extras, columns.episode_lengths, n_step, discount)

  def iter_transitions(self, batch_size: int, n_step: int = 1,
                       discount: float = 0.99, shuffle: bool = False,
                       seed: int = 0) -> Iterator[types.Transition]:
    """Yields `Transition` batches of `batch_size` (the last may be smaller).

    Transitions come in `transitions()` order, or permuted with `seed` when
    `shuffle`; all of them are built in memory first.
    """
    if batch_size < 1:
      raise errors.DatasetError(f'batch_size must be >= 1, got {batch_size}.')
    everything = self.transitions(n_step, discount)
    order = np.arange(len(everything.reward))
    if shuffle:
      order = np.random.default_rng(seed).permutation(order)
    for start in range(0, len(order), batch_size):
      batch = order[start:start + batch_size]
      yield tree.map_structure(lambda x, b=batch: x[b], everything)

  def close(self) -> None:
    self._reader.close()

  def __enter__(self) -> 'Dataset':
    return self

  def __exit__(self, *unused_exc_info) -> None:
    self.close()


def _check_nstep_args(n_step: int, discount: float) -> None:
  if n_step < 1:
    raise errors.DatasetError(f'n_step must be >= 1, got {n_step}.')
  if not 0.0 <= discount <= 1.0:
    raise errors.DatasetError(f'discount must be in [0, 1], got {discount}.')


def _append_zero(values: np.ndarray) -> np.ndarray:
  """[T, ...] -> [T+1, ...] with a zero last row (RLDS's undefined last step)."""
  return np.concatenate([values, np.zeros_like(values[:1])])


def _concatenate(chunks: List[Any]) -> Any:
  return tree.map_structure(lambda *xs: np.concatenate(xs), *chunks)


def dataset_paths(datasets: str) -> List[str]:
  """The dataset directories that `datasets` names, in order.

  `datasets` is one path or several, comma-separated; each is a dataset, or a
  directory of datasets (e.g. a run's `episodes/`, one dataset per actor and
  file), which stands for every finished dataset in it, by name. A path that
  is neither is returned as is, for `load_dataset` to say what is wrong.
  """
  paths = []
  for path in (p.strip() for p in datasets.split(',') if p.strip()):
    if os.path.isdir(path) and not os.path.exists(
        os.path.join(path, layout.METADATA_FILE)):
      inner = sorted(
          os.path.join(path, name) for name in os.listdir(path)
          if not name.startswith('.') and
          os.path.isfile(os.path.join(path, name, layout.METADATA_FILE)))
      if inner:
        paths.extend(inner)
        continue
    paths.append(path)
  return paths


def policy_returns(datasets: Sequence[Dataset]) -> Dict[str, float]:
  """Mean episode return of each behaviour policy over `datasets`, e.g.
  {'random': 27.1, 'expert': 851.3}: the references of a normalised return.
  Read from the metadata (each episode's policy and return), none decoded."""
  by_policy: Dict[str, List[float]] = {}
  for dataset in datasets:
    for episode in dataset.metadata.get('episodes', ()):
      by_policy.setdefault(episode['policy'], []).append(episode['return'])
  return {name: float(np.mean(returns)) for name, returns in
          sorted(by_policy.items())}


def load_dataset(path: str) -> Dataset:
  """Opens the dataset at `path`; raises a `DatasetError` subclass if invalid."""
  return Dataset(path)
