"""Helpers shared by the benchmarks: machine info, load, timing, JSON output.

Every result file carries `machine` (platform, CPUs, versions), `date` (UTC,
ISO 8601) and `load_average` readings taken while it ran, because the project's
CPUs are shared: absolute rates move with the load, so the benchmarks also report
ratios measured back to back in one process.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'results')

DEFAULT_PACKAGES = ('jax', 'jaxlib', 'dm-haiku', 'dm-acme', 'dm-reverb',
                    'dm-launchpad', 'optax', 'numpy', 'tensorflow-cpu',
                    'mujoco', 'dm_control')


def utc_now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat()


def load_average() -> List[float]:
  """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []


def machine_info(packages: Iterable[str] = DEFAULT_PACKAGES
                 ) -> Dict[str, object]:
  """Platform, CPU count, Python and package versions (missing ones skipped)."""
  versions = {}
  for package in packages:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      pass
  info = {
      'platform': platform.platform(),
      'processor': platform.processor() or platform.machine(),
      'cpu_count': os.cpu_count(),
      'python': platform.python_version(),
      'versions': versions,
  }
  try:
    import jax  # pylint: disable=g-import-not-at-top
    info['jax_devices'] = [str(d) for d in jax.devices()]
  except Exception:  # pylint: disable=broad-except
    pass
  return info


class LoadMonitor:
  """Collects load-average readings at named points of a run."""

  def __init__(self):
    self.readings: Dict[str, List[float]] = {}

  def mark(self, label: str) -> List[float]:
    reading = load_average()
    self.readings[label] = reading
    return reading

  def summary(self) -> Dict[str, object]:
    ones = [r[0] for r in self.readings.values() if r]
    return {
        'readings_1_5_15_min': self.readings,
        'one_minute_min': min(ones) if ones else None,
        'one_minute_max': max(ones) if ones else None,
    }


def time_calls(fn: Callable[[], object], repeats: int,
               warmup: int = 1) -> List[float]:
  """Seconds per call of `fn` (which must block until its work is done)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def percentile(values: Sequence[float], q: float) -> float:
  """The q-th percentile (0..100), linear interpolation."""
  ordered = sorted(values)
  if len(ordered) == 1:
    return ordered[0]
  position = (len(ordered) - 1) * q / 100.0
  low = int(position)
  high = min(low + 1, len(ordered) - 1)
  return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize_ms(seconds: Sequence[float]) -> Dict[str, float]:
  """median / p90 / min in milliseconds, and the sample count."""
  ms = [s * 1e3 for s in seconds]
  return {'median_ms': statistics.median(ms), 'p90_ms': percentile(ms, 90),
          'min_ms': min(ms), 'samples': len(ms)}


def rate_for(fn: Callable[[], int], seconds: float,
             min_calls: int = 1) -> Dict[str, float]:
  """Runs `fn` (returns units of work done) for >= `seconds`; units per second."""
  units = 0
  calls = 0
  start = time.perf_counter()
  while calls < min_calls or time.perf_counter() - start < seconds:
    units += fn()
    calls += 1
  elapsed = time.perf_counter() - start
  return {'per_s': units / elapsed, 'units': units, 'calls': calls,
          'seconds': elapsed}


def write_json(name: str, results: Dict[str, object],
               directory: Optional[str] = None) -> str:
  """Writes `results` to `<directory>/<name>.json`; returns the path."""
  directory = directory or RESULTS_DIR
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, f'{name}.json')
  with open(path, 'w') as f:
    json.dump(results, f, indent=1, default=_jsonable)
    f.write('\n')
  return path


def read_json(name: str, directory: Optional[str] = None) -> Dict[str, object]:
  path = os.path.join(directory or RESULTS_DIR, f'{name}.json')
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _jsonable(value):
  """numpy scalars/arrays and other odd leaves as plain JSON values."""
  if hasattr(value, 'tolist'):
    return value.tolist()
  if hasattr(value, 'item'):
    return value.item()
  return str(value)


def annotate_bars(axis, fmt: str = '{:,.1f}') -> None:
  for patch in axis.patches:
    height = patch.get_height()
    if height != height or height == 0:  # NaN or empty bar.
      continue
    axis.annotate(fmt.format(height),
                  (patch.get_x() + patch.get_width() / 2, height),
                  ha='center', va='bottom', fontsize=8)
