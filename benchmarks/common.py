"""What every benchmark shares: machine info, load readings, timing, output.

Every result file carries `machine` (platform, CPUs, versions), `date` (UTC)
and `load_average` readings taken while it ran: the project's CPUs are shared,
so absolute rates move with the load, and the benchmarks report ratios of
numbers measured back to back (or interleaved) in one run.
"""

import datetime
import importlib.metadata
import json
import multiprocessing
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

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
  write_whole(path, json.dumps(results, indent=1) + '\n')
  return path


def write_whole(path: str, text: str) -> None:
  """Writes `path` whole or not at all (a Ctrl-C leaves the old file)."""
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


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


def _run_to_end(config) -> None:
  from absl import logging  # pylint: disable=g-import-not-at-top
  from launchers import launching  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  launching.exit_on_failure(lambda: launching.launch(config))


def run_in_own_process(target: Callable[..., None], args: Tuple[Any, ...],
                       sweep: str, run_dir: str) -> None:
  """Runs `target(*args)` to its end in a fresh process (spawned, not
  forked, so it starts with nothing of the sweep's JAX, TF or signal state).
  A run that fails ends the sweep (named `sweep` in the message) with the
  run's exit status; the target says why in one line itself."""
  process = multiprocessing.get_context('spawn').Process(target=target,
                                                         args=args)
  process.start()
  while True:
    try:
      process.join()
      break
    except KeyboardInterrupt:  # The run got the Ctrl-C too (a terminal
      continue  # signals the group): it checkpoints and ends; wait for it.
  if process.exitcode:
    print(f'[{sweep}] stopped; rerun the same command to resume '
          f'({run_dir})', file=sys.stderr)
    sys.exit(process.exitcode)


def launch_in_own_process(config, sweep: str) -> None:
  """Runs one PAC program (`config`, a RunConfig) to its end in a launcher
  process of its own, as from the command line: Launchpad's worker manager
  keeps process-wide signal handlers and alarms, which a later launch in the
  same process must not inherit."""
  run_in_own_process(_run_to_end, (config,), sweep, config.run_dir)


def resumable(sweep: str, runs: Sequence[Dict[str, Any]],
              run_one: Callable[[Dict[str, Any]], List[Dict[str, Any]]],
              run_missing: bool = True
              ) -> Tuple[List[Dict[str, Any]], List[str], LoadMonitor]:
  """Runs every run of a sweep not yet recorded (none if not
  `run_missing`: a report of what is); returns all records, the runs still
  missing, and the load readings.

  Run `name`'s records (`run_one(run)`) go to
  `<results_dir>/<sweep>_runs/<name>.json` as it finishes (written whole or
  not at all), and a run recorded there is skipped.
  """
  record_dir = os.path.join(RESULTS_DIR.value, f'{sweep}_runs')
  os.makedirs(record_dir, exist_ok=True)
  monitor = LoadMonitor()
  monitor.mark('start')
  for run in runs:
    path = os.path.join(record_dir, f'{run["name"]}.json')
    if os.path.exists(path) or not run_missing:
      continue
    print(f'[{sweep}] {run["name"]}', flush=True)
    write_whole(path, json.dumps(run_one(run), indent=1))
    monitor.mark(run['name'])
  records, missing = [], []
  for run in runs:
    path = os.path.join(record_dir, f'{run["name"]}.json')
    if os.path.exists(path):
      with open(path) as f:
        records.extend(json.load(f))
    else:
      missing.append(run['name'])
  return records, missing, monitor


def run_grid(sweep: str, runs: Sequence[Dict[str, Any]],
             configs: Dict[str, Any],
             make_records: Callable[[Dict[str, Any], Any, float],
                                    List[Dict[str, Any]]]
             ) -> Tuple[List[Dict[str, Any]], List[str], LoadMonitor]:
  """`resumable` over PAC programs: run `name` launches `configs[name]` (a
  RunConfig) in a process of its own, and its records are
  `make_records(run, config, seconds)`."""

  def run_one(run: Dict[str, Any]) -> List[Dict[str, Any]]:
    start = time.time()
    launch_in_own_process(configs[run['name']], sweep)
    return make_records(run, configs[run['name']], time.time() - start)

  return resumable(sweep, runs, run_one)
