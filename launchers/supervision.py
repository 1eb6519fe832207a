"""Local processes of a run, restarted when an actor or the evaluator dies.

Launchpad's `local_mp` worker manager stops the whole program when any worker
exits with a non-zero status. For the learner, the replay server, the counter
and the controller that is right (the run cannot go on without them; their
last checkpoints resume it). Actors and the evaluator are different: they hold
no state the run needs (an actor's unfinished episode is the most that dies
with it), and a simulator crash or a killed process is what they are most
expected to suffer. `Supervisor` is Launchpad's manager with one change: a
restartable node that dies is started again with the same command, up to
`max_restarts` times per node. When every node of a restartable group is gone
for good, it stops the run (every node checkpoints on the way) and says why.

`<run_dir>/workers.json` lists every node's process id, and for restartable
ones their state, restarts and deaths (with times); each death is also a line
in `<run_dir>/status.log`. The controller reads the file to skip nodes that
are gone. On a cluster each host's supervisor writes `workers.<host>.json`
(launchers/cluster_host.py); `read_workers` reads them all.

At a stop (Ctrl-C, SIGTERM, the run's end) every node gets `STOP_NOTICE_S`
to take its last step and checkpoint before it is killed; `unclean` names the
nodes that did not end cleanly within it, so a stopped run never claims a
checkpoint it did not take.
"""

import collections
import glob
import json
import os
import signal
import subprocess
import time
from typing import Dict, List, Optional

from launchpad.launch import worker_manager

# Node groups whose processes are restarted when they die.
RESTARTABLE = ('actor', 'evaluator')
WORKERS_FILE = 'workers.json'
# Seconds from a stop until nodes still running are killed. Launchpad's
# default (10 s) is too short for a learner on a loaded machine to finish its
# step and save, and for the replay server to checkpoint after it.
STOP_NOTICE_S = 30
# Node groups whose checkpoints resume a run; any other node killed at a stop
# loses at most an actor's open episodes.
STATEFUL = ('learner', 'replay', 'counter')
# Node processes count down the same notice (each also kills itself at its
# end): the flag, for Launchpad's process entry. (Not by `PythonProcess.args`,
# whose flag handling fails on a flag the launcher defines too.)
NODE_ARGV = [f'--lp_termination_notice_secs={STOP_NOTICE_S}']


class Supervisor(worker_manager.WorkerManager):
  """Starts a program's processes, logging each to a file; restarts some.

  Args:
    log_dir: each node's output goes to `<log_dir>/<label>` (e.g. `actor/1`),
      appended to on restarts.
    run_dir: where `status.log` and `workers.json` are written.
    max_restarts: restarts allowed per restartable node.
    workers_file: the file (in `run_dir`) that lists this supervisor's nodes.
  """

  def __init__(self, log_dir: str, run_dir: str, max_restarts: int,
               workers_file: str = WORKERS_FILE,
               stop_notice_s: int = STOP_NOTICE_S):
    # A dead node's neighbours, blocked on it, are killed when Launchpad's
    # stop notice ends; the launcher stays to say what happened.
    super().__init__(kill_main_thread=False)
    # Launchpad gives the notice only to a process's first manager (a second
    # launch in one process, e.g. the main job's finetune phase, got none).
    self._termination_notice_secs = stop_notice_s
    self._log_dir = log_dir
    self._run_dir = run_dir
    self._max_restarts = max_restarts
    self._workers_file = workers_file
    self._commands = {}  # label -> (command, env) it was started with.
    self.processes: Dict[str, subprocess.Popen] = {}  # label -> current one.
    self._workers = {}  # label -> its record in workers.json.
    self.gave_up: Optional[str] = None  # Why the supervisor stopped the run.
    self.failed: List[str] = []  # Nodes whose death stopped the run.
    # Nodes that, after the stop began, exited non-zero or were killed at the
    # notice's end: their last checkpoint may be missing.
    self.unclean: List[str] = []
    self._hidden = {}  # Restartable nodes, during Launchpad's check.

  def start(self, label: str, command: List[str], env: Dict[str, str]):
    """Starts node `label` (also used, with the same arguments, to restart)."""
    path = os.path.join(self._log_dir, label)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'a') as log:
      log.write(f'==== {label} started {time.strftime("%Y-%m-%d %H:%M:%S")} '
                '====\n')
      log.flush()
      process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    self._commands[label] = (command, env)
    self.processes[label] = process
    self._active_workers[label] = [process]
    record = self._workers.setdefault(
        label, {'state': 'running', 'restarts': 0, 'deaths': []})
    record['pid'] = process.pid

  def _check_workers(self):
    """Restarts or retires dead restartable nodes, then Launchpad's checks.

    Called by `wait()` every 0.1 s with the manager's lock held. Launchpad's
    check stops the run on any non-zero exit it sees, so it is shown only the
    other nodes: a restartable node dying between our look and its own would
    otherwise stop the run.
    """
    stopping = bool(self._stop_counter)
    for label, process in self.processes.items():
      if _group(label) not in RESTARTABLE or not self._active_workers[label]:
        continue
      code = process.poll()
      if code is None:
        continue
      if code == 0 or stopping:
        self._active_workers[label] = []  # Ended (or stopped with the run).
        self._note_if_unclean(label, code)
      else:
        self._on_death(label, code)
    if not stopping:
      self._give_up_on_empty_groups()
    self._hidden = {label: self._active_workers.pop(label)
                    for label in list(self._active_workers)
                    if _group(label) in RESTARTABLE}
    try:
      super()._check_workers()
    finally:
      self._active_workers.update(self._hidden)
      self._hidden = {}
    if self._first_failure and not self._stop_counter:
      self._stop()  # Launchpad's check skips this when only they are left.
    for label, process in self.processes.items():
      if (_group(label) not in RESTARTABLE and
          process.poll() not in (None, 0) and
          self._workers[label]['state'] != 'gone'):
        self._workers[label]['state'] = 'gone'
        if stopping:
          self._note_if_unclean(label, process.returncode)
        else:  # A death Launchpad's check saw: name it.
          self.failed.append(f'{label} ({_describe_exit(process.returncode)})')

  def _note_if_unclean(self, label: str, code: int):
    """Notes a node that failed (exit > 0) or was killed (SIGKILL) after
    the stop began. A node that stopped ends 0, or by SIGTERM or SIGALRM:
    Launchpad's once its handlers are gone, so not a failure."""
    entry = f'{label} ({_describe_exit(code)})'
    if (code > 0 or code == -signal.SIGKILL) and entry not in self.unclean:
      self.unclean.append(entry)

  def _disable_alarm(self):
    """Launchpad's, unless restartable nodes (hidden from its check) still
    run: the alarm is what kills nodes that outlive the stop notice."""
    if any(self._hidden.values()):
      return
    super()._disable_alarm()

  def _on_death(self, label: str, code: int):
    record = self._workers[label]
    record['deaths'].append({'time': time.strftime('%Y-%m-%d %H:%M:%S'),
                             'exit': _describe_exit(code)})
    if record['restarts'] < self._max_restarts:
      record['restarts'] += 1
      self.start(label, *self._commands[label])
      action = (f'restarted it (restart {record["restarts"]} of '
                f'{self._max_restarts})')
    else:
      record['state'] = 'gone'
      self._active_workers[label] = []
      action = f'not restarted: {self._max_restarts} restarts used'
    group = _group(label)
    running = sum(1 for name, r in self._workers.items()
                  if _group(name) == group and r['state'] == 'running')
    total = sum(1 for name in self._workers if _group(name) == group)
    self._report(f'[fault] {label} died ({_describe_exit(code)}) at '
                 f'{time.strftime("%H:%M:%S")}; {action}; '
                 f'{running} of {total} {group} nodes running')

  def _give_up_on_empty_groups(self):
    for group in RESTARTABLE:
      records = [r for name, r in self._workers.items()
                 if _group(name) == group]
      if records and all(r['state'] == 'gone' for r in records):
        self.gave_up = (f'every {group} node died and used its '
                        f'{self._max_restarts} restarts, so the run stopped')
        self._report(f'[fault] {self.gave_up}; the other nodes checkpoint '
                     'and stop')
        self._stop()
        return

  def _report(self, line: str):
    with open(os.path.join(self._run_dir, 'status.log'), 'a') as f:
      f.write(line + '\n')
    self.write_workers()

  def write_workers(self):
    write_workers(os.path.join(self._run_dir, self._workers_file),
                  self._workers)


def write_workers(path: str, workers: Dict[str, dict]) -> None:
  """Writes a workers file whole (readers never see half of one)."""
  with open(path + '.tmp', 'w') as f:
    json.dump(workers, f, indent=1, sort_keys=True)
  os.replace(path + '.tmp', path)


def workers_files(run_dir: str):
  """The run's workers files: `workers.json` (one host), `workers.<host>.json`
  (a cluster run)."""
  return sorted(glob.glob(os.path.join(run_dir, 'workers*.json')))


def read_workers(run_dir: str) -> Dict[str, dict]:
  """The run's nodes, from its workers files: label -> pid, state, restarts,
  deaths.

  Empty for a run not launched under local_mp or on a cluster.
  """
  workers = {}
  for path in workers_files(run_dir):
    with open(path) as f:
      workers.update(json.load(f))
  return workers


def _group(label: str) -> str:
  return label.split('/')[0]


def _describe_exit(code: int) -> str:
  if code < 0:
    return f'killed by {signal.Signals(-code).name}'
  return f'exit {code}'


def launcher(log_dir: str, run_dir: str, max_restarts: int,
             workers_file: str = WORKERS_FILE):
  """A Launchpad local launcher (commands -> manager) that supervises."""

  def launch(commands_to_launch) -> Supervisor:
    manager = Supervisor(log_dir, run_dir, max_restarts, workers_file)
    titles = collections.Counter()
    for command in commands_to_launch:
      label = command.title
      if titles[label]:
        label = f'{label}_{titles[label]}'
      titles[command.title] += 1
      manager.start(label, command.command_as_list + NODE_ARGV,
                    {**os.environ, **command.env_overrides})
    manager.write_workers()
    return manager

  return launch
