"""What every benchmark shares: machine info, load readings, timing, output.

Every result file carries `machine` (platform, CPUs, versions), `date` (UTC)
and `load_average` readings taken while it ran: the project's CPUs are shared,
so absolute rates move with the load, and the benchmarks report ratios of
numbers measured back to back (or interleaved) in one run.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import time
from typing import Callable, Dict, List, Sequence, Tuple

from absl import flags

RESULTS_DIR = flags.DEFINE_string(
    'results_dir',
    os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results'),
    'Where the JSON and PNG go (the committed results by default).')
_PACKAGES = ('jax', 'jaxlib', 'dm-haiku', 'dm-acme', 'dm-reverb',
             'dm-launchpad', 'numpy', 'tensorflow-cpu', 'mujoco', 'dm_control',
             'envlogger')


def machine_info() -> Dict[str, object]:
  versions = {}
  for package in _PACKAGES:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      pass
  return {'platform': platform.platform(),
          'processor': platform.processor() or platform.machine(),
          'cpu_count': os.cpu_count(), 'python': platform.python_version(),
          'versions': versions}


class LoadMonitor:
  """1/5/15-minute load averages at named points of a run."""

  def __init__(self):
    self.readings: Dict[str, List[float]] = {}

  def mark(self, label: str) -> None:
    self.readings[label] = [round(x, 2) for x in os.getloadavg()]

  def summary(self) -> Dict[str, object]:
    ones = [r[0] for r in self.readings.values()]
    return {'readings_1_5_15_min': self.readings,
            'one_minute_min': min(ones, default=None),
            'one_minute_max': max(ones, default=None)}


def rate(fn: Callable[[], int], seconds: float) -> float:
  """Runs `fn` (returns units of work) for >= `seconds`; units per second."""
  units = 0
  start = time.perf_counter()
  while time.perf_counter() - start < seconds:
    units += fn()
  return units / (time.perf_counter() - start)


def timed(fn: Callable[[], object]) -> Tuple[object, float]:
  """(fn(), seconds it took)."""
  start = time.perf_counter()
  result = fn()
  return result, time.perf_counter() - start


def write_results(name: str, results: Dict[str, object],
                  monitor: LoadMonitor) -> str:
  """Adds machine, date and load to `results`; writes `<name>.json`."""
  directory = RESULTS_DIR.value
  os.makedirs(directory, exist_ok=True)
  results = dict(results, machine=machine_info(),
                 date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 load_average=monitor.summary())
  path = os.path.join(directory, f'{name}.json')
  with open(path, 'w') as f:
    json.dump(results, f, indent=1)
    f.write('\n')
  return path


def bar_panels(panels: Sequence[Tuple[str, str, Dict[str, float]]],
               path: str, title: str) -> None:
  """One bar chart per (title, y label, {bar: value}), side by side, values
  written on the bars."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4),
                           squeeze=False)
  for axis, (panel_title, ylabel, bars) in zip(axes[0], panels):
    axis.bar(list(bars), list(bars.values()),
             color=[f'C{i}' for i in range(len(bars))])
    axis.set_title(panel_title, fontsize=10)
    axis.set_ylabel(ylabel)
    axis.tick_params(axis='x', labelrotation=20, labelsize=8)
    for patch in axis.patches:
      axis.annotate(f'{patch.get_height():,.3g}',
                    (patch.get_x() + patch.get_width() / 2,
                     patch.get_height()),
                    ha='center', va='bottom', fontsize=8)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
