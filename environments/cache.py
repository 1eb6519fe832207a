"""A decoded, columnar copy of a dataset's steps, kept beside its files.

Decoding EnvLogger records is the slow part of reading a dataset; the decoded
steps of a whole dataset are a handful of arrays. The first read therefore
decodes once and writes those arrays next to the dataset; every later run and
resume reads them back at disk speed. The EnvLogger files stay the source of
truth:

  <dataset>/cache/steps.npz    the columns, uncompressed (np.load is one read)
  <dataset>/cache/steps.json   manifest, written last: format version, the
                               fingerprint of the files it was decoded from
                               (sha256 of dataset.json; size and mtime of every
                               EnvLogger file), and shape, dtype and sha256 of
                               every array

A cache is used only if its manifest matches the dataset's current fingerprint,
every array matches its recorded sha256, and the columns agree with
`dataset.json` (episode lengths, spec). Otherwise it is rebuilt from the
EnvLogger files, and the reason is reported: a stale or damaged cache costs one
decode, never wrong data. Both files are written to temporary names and renamed,
so an interrupted write leaves no cache that passes these checks.

A dataset in a directory we cannot write to is cached under
`$PAC_CACHE_DIR/datasets/<hash of its path>/` (default `~/.cache/pac`).
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from environments import layout

FORMAT = 'pac-steps-cache'
FORMAT_VERSION = 1
ARRAYS_FILE = 'steps.npz'
MANIFEST_FILE = 'steps.json'


class Columns(NamedTuple):
  """A dataset's RLDS steps, all episodes concatenated in order.

  Episode e with T_e actions occupies T_e + 1 rows; its last row holds the
  final observation and zeros for action, reward, discount and log_prob.
  Attributes:
    observation: name -> [S, ...], S = sum_e (T_e + 1).
    action: [S, A]; reward, discount: [S]; log_prob: [S] or None.
    episode_lengths: [E] int64, the T_e.
  """
  observation: Dict[str, np.ndarray]
  action: np.ndarray
  reward: np.ndarray
  discount: np.ndarray
  log_prob: Optional[np.ndarray]
  episode_lengths: np.ndarray


def _flatten(columns: Columns) -> Dict[str, np.ndarray]:
  arrays = {f'observation/{k}': v for k, v in columns.observation.items()}
  arrays.update(action=columns.action, reward=columns.reward,
                discount=columns.discount,
                episode_lengths=columns.episode_lengths)
  if columns.log_prob is not None:
    arrays['log_prob'] = columns.log_prob
  return arrays


def _unflatten(arrays: Dict[str, np.ndarray]) -> Columns:
  prefix = 'observation/'
  return Columns(
      observation={k[len(prefix):]: v for k, v in arrays.items()
                   if k.startswith(prefix)},
      action=arrays['action'], reward=arrays['reward'],
      discount=arrays['discount'], log_prob=arrays.get('log_prob'),
      episode_lengths=arrays['episode_lengths'])


def _sha256(array: np.ndarray) -> str:
  return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def fingerprint(dataset_path: str) -> Dict[str, Any]:
  """What a cache must have been decoded from to be valid for this dataset."""
  with open(os.path.join(dataset_path, layout.METADATA_FILE), 'rb') as f:
    metadata_sha = hashlib.sha256(f.read()).hexdigest()
  files = {}
  steps = os.path.join(dataset_path, layout.STEPS_DIR)
  for root, _, names in os.walk(steps):
    for name in names:
      path = os.path.join(root, name)
      stat = os.stat(path)
      files[os.path.relpath(path, steps)] = [stat.st_size, stat.st_mtime_ns]
  return {'dataset_json_sha256': metadata_sha, 'files': dict(sorted(
      files.items()))}


def check_columns(columns: Columns, metadata: Dict[str, Any]) -> Optional[str]:
  """Returns what disagrees between `columns` and `dataset.json`, or None."""
  lengths = [e['length'] for e in metadata['episodes']]
  if columns.episode_lengths.tolist() != lengths:
    return 'episode lengths differ from dataset.json'
  rows = sum(lengths) + len(lengths)
  spec = metadata['spec']
  expected = {f'observation/{k}': v for k, v in spec['observation'].items()}
  expected.update(action=spec['action'], reward=spec['reward'],
                  discount=spec['discount'])
  arrays = _flatten(columns)
  if set(arrays) - {'episode_lengths', 'log_prob'} != set(expected):
    return 'fields differ from the spec in dataset.json'
  for name, array_spec in expected.items():
    array = arrays[name]
    if (array.shape != (rows, *array_spec['shape'])
        or array.dtype.name != array_spec['dtype']):
      return (f'{name} has shape {array.shape} dtype {array.dtype.name}, '
              f'dataset.json implies {(rows, *array_spec["shape"])} '
              f'{array_spec["dtype"]}')
  if (columns.log_prob is None) == bool(metadata['has_log_prob']):
    return 'log_prob presence differs from dataset.json'
  if columns.log_prob is not None and columns.log_prob.shape != (rows,):
    return f'log_prob has shape {columns.log_prob.shape}, expected ({rows},)'
  return None


def _read(directory: str, source: Dict[str, Any],
          metadata: Dict[str, Any]) -> Tuple[Optional[Columns], str]:
  """(columns, '') if the cache in `directory` is valid, else (None, why)."""
  manifest_path = os.path.join(directory, MANIFEST_FILE)
  if not os.path.exists(manifest_path):
    return None, 'no cache yet'
  try:
    with open(manifest_path) as f:
      manifest = json.load(f)
    if (manifest.get('format'), manifest.get('format_version')) != (
        FORMAT, FORMAT_VERSION):
      return None, 'cache written by another version'
    if manifest.get('source') != source:
      return None, 'the dataset changed since it was cached'
    with np.load(os.path.join(directory, ARRAYS_FILE),
                 allow_pickle=False) as npz:
      arrays = {name: npz[name] for name in npz.files}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    return None, f'cache unreadable ({type(e).__name__}: {e})'
  recorded = manifest.get('arrays', {})
  if set(recorded) != set(arrays):
    return None, 'cache damaged (arrays missing)'
  for name, array in arrays.items():
    info = recorded[name]
    if (list(array.shape) != info.get('shape')
        or array.dtype.name != info.get('dtype')
        or _sha256(array) != info.get('sha256')):
      return None, f'cache damaged ({name} does not match its checksum)'
  columns = _unflatten(arrays)
  problem = check_columns(columns, metadata)
  if problem:
    return None, f'cache inconsistent with dataset.json ({problem})'
  return columns, ''


def _replace_atomically(path: str, write: Callable[[io.BufferedWriter],
                                                   None]) -> None:
  directory = os.path.dirname(path)
  fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.',
                             dir=directory)
  try:
    with os.fdopen(fd, 'wb') as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _write(directory: str, columns: Columns, source: Dict[str, Any]) -> None:
  os.makedirs(directory, exist_ok=True)
  manifest_path = os.path.join(directory, MANIFEST_FILE)
  if os.path.exists(manifest_path):
    os.remove(manifest_path)  # Never leave an old manifest over new arrays.
  arrays = _flatten(columns)
  _replace_atomically(os.path.join(directory, ARRAYS_FILE),
                      lambda f: np.savez(f, **arrays))
  manifest = {
      'format': FORMAT, 'format_version': FORMAT_VERSION, 'source': source,
      'arrays': {name: {'shape': list(a.shape), 'dtype': a.dtype.name,
                        'sha256': _sha256(a)} for name, a in arrays.items()},
  }
  _replace_atomically(manifest_path,
                      lambda f: f.write(json.dumps(manifest, indent=1).encode()))


def cache_directories(dataset_path: str) -> List[str]:
  """Where the cache of `dataset_path` may live, in order of preference."""
  root = os.environ.get('PAC_CACHE_DIR',
                        os.path.join(os.path.expanduser('~'), '.cache', 'pac'))
  key = hashlib.sha256(os.path.abspath(dataset_path).encode()).hexdigest()[:16]
  return [os.path.join(dataset_path, layout.CACHE_DIR),
          os.path.join(root, 'datasets', key)]


def load_or_build(dataset_path: str, metadata: Dict[str, Any],
                  decode: Callable[[], Columns]) -> Tuple[Columns, str]:
  """The dataset's columns, from a valid cache or decoded and cached.

  Args:
    dataset_path: the dataset directory.
    metadata: its `dataset.json`, already validated by the reader.
    decode: decodes the columns from the EnvLogger files (raises on damage).

  Returns:
    (columns, status): status is 'warm' (read from the cache), 'built' (no
    cache yet) or 'rebuilt (<why the old one was not used>)', with
    '; not cached: <why>' appended when no cache directory was writable.
  """
  source = fingerprint(dataset_path)
  reasons = []
  for directory in cache_directories(dataset_path):
    columns, reason = _read(directory, source, metadata)
    if columns is not None:
      return columns, 'warm'
    reasons.append(reason)
  columns = decode()
  problem = check_columns(columns, metadata)
  if problem:  # The reader checks each episode; this guards the assembly.
    raise AssertionError(f'decoded columns disagree with dataset.json: '
                         f'{problem}')
  reason = reasons[0]
  status = 'built' if reason == 'no cache yet' else f'rebuilt ({reason})'
  failures = []
  for directory in cache_directories(dataset_path):
    try:
      _write(directory, columns, source)
      return columns, status
    except OSError as e:
      failures.append(f'{directory}: {e.strerror or e}')
  return columns, f'{status}; not cached: {"; ".join(failures)}'
