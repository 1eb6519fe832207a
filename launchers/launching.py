"""`launch`: runs a PAC program to its end, locally, with a readable terminal.

Shared by `launchers.run` (flags) and `launchers.main_job` (the main job); it
defines no flags so that both can use it.
"""

import glob
import os
import shutil
import signal
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from acme import specs

from agents.pac import config as pac_config
from launchers import config as config_lib
from launchers import isolation
from launchers import nodes
from launchers import placement
from launchers import program as program_lib
from launchers import recording
from launchers import resume
from launchers import supervision


def prepare(config: config_lib.RunConfig
            ) -> Tuple[specs.EnvironmentSpec, Optional[Dict[str, int]]]:
  """Checks the run before any node starts: its tasks and datasets
  (`config.preflight`) and its run directory (`resume.check`, which records
  the run there on first use). Returns what `make_program` takes."""
  spec, offline_sizes = config_lib.preflight(config)
  resume.check(config, spec)
  return spec, offline_sizes


def launch(config: config_lib.RunConfig, launch_type: str = 'local_mp',
           isolate: bool = True) -> None:
  """Builds the program and runs it to its end (the controller stops it)."""
  check_startup_hook()
  import launchpad as lp  # pylint: disable=g-import-not-at-top
  from launchpad.nodes.python import local_multi_processing  # pylint: disable=g-import-not-at-top
  program = program_lib.make_program(config, *prepare(config))
  if launch_type != 'local_mp':
    lp.launch(program, launch_type=launch_type).wait()
    return
  if isolate:
    reason = isolation.isolate_network()
    if reason:
      print(f'warning: servers bind all interfaces; could not isolate the '
            f'run on loopback: {reason}', file=sys.stderr)
    else:
      print('[run] network: private namespace, loopback only', flush=True)
  log_dir = config.path('logs', 'nodes')
  print(f'[run] {config.mode} on {config.task}: nodes log to {log_dir}',
        flush=True)
  # The learner on the accelerator (if any), every other node on the CPU
  # with its own thread count; see placement.py.
  resources = {group: local_multi_processing.PythonProcess(
      env=placement.node_environment(
          group, config.learner_device, config.learner_cpu_threads,
          config.actor_cpu_threads, config.actor_niceness))
               for group in program.groups}
  clear_previous(config)
  manager = _launch_supervised(program, resources, log_dir, config)
  received = record_signals()
  done = threading.Event()
  follower = threading.Thread(
      target=follow, args=(config.path(nodes.STATUS_FILE), done), daemon=True)
  follower.start()
  try:
    manager.wait()
  except RuntimeError as e:  # A node died; Launchpad is stopping the rest.
    manager.wait(raise_error=False)
    raise NodeFailed(f'node {", ".join(manager.failed) or "?"} died, '
                     'so the run stopped', config.run_dir) from e
  finally:
    done.set()
    follower.join()
  if manager.gave_up:
    raise NodeFailed(manager.gave_up, config.run_dir)
  # The controller stops a finished run with SIGTERM too; it leaves a mark.
  if received and not os.path.exists(config.path(nodes.FINISHED_FILE)):
    raise Interrupted(received[0], config.run_dir, manager.unclean)


def clear_previous(config: config_lib.RunConfig) -> None:
  """Removes what a previous launch of this run directory left that would
  mislead this one: its finished mark, its workers files, and the datasets
  its killed actors left unfinished."""
  stale = [config.path(nodes.FINISHED_FILE)]
  stale += supervision.workers_files(config.run_dir)
  for path in stale:
    if os.path.exists(path):
      os.remove(path)
  for path in glob.glob(config.path(recording.EPISODES_DIR, '.*')):
    shutil.rmtree(path, ignore_errors=True)


def _launch_supervised(program, resources, log_dir: str,
                       config: config_lib.RunConfig
                       ) -> supervision.Supervisor:
  """`lp.launch(local_mp)` with `supervision.Supervisor` as its manager.

  Launchpad picks its local launcher from a table keyed by terminal; ours
  replaces the `output_to_files` one for this call.
  """
  import launchpad as lp  # pylint: disable=g-import-not-at-top
  from launchpad.launch.run_locally import run_locally  # pylint: disable=g-import-not-at-top
  table = run_locally._LOCAL_LAUNCHER_MAP  # pylint: disable=protected-access
  key = run_locally.SEPARATE_TERMINAL_OUTPUT_TO_FILES
  original = table[key]
  table[key] = supervision.launcher(log_dir, config.run_dir,
                                    config.max_restarts)
  try:
    return lp.launch(program, launch_type='local_mp', terminal=key,
                     local_resources=resources)
  finally:
    table[key] = original


class Interrupted(Exception):
  """The run was stopped by a signal; each node checkpointed on its way,
  except the `unclean` ones (see `supervision.Supervisor.unclean`)."""

  def __init__(self, signum: int, run_dir: str,
               unclean: Sequence[str] = ()):
    self.signum = signum
    self.exit_status = 128 + signum  # 130 for SIGINT, 143 for SIGTERM.
    logs_dir = os.path.join(run_dir, 'logs', 'nodes')
    stateful = [entry for entry in unclean
                if entry.split('/')[0] in supervision.STATEFUL]
    if stateful:
      what = (f'{", ".join(unclean)} did not stop cleanly within '
              f'{supervision.STOP_NOTICE_S} s: what {", ".join(stateful)} '
              f'did since its last checkpoint is lost (node output in '
              f'{logs_dir})')
    elif unclean:
      what = (f'the learner, replay and counter checkpointed; '
              f'{", ".join(unclean)} did not stop within '
              f'{supervision.STOP_NOTICE_S} s and were killed, losing at most '
              f'an actor\'s open episodes (node output in {logs_dir})')
    else:
      what = 'every node checkpointed'
    super().__init__(
        f'[run] stopped by {signal.Signals(signum).name}; {what}. Rerun the '
        f'same command to resume (run directory {run_dir}).')


class NodeFailed(Exception):
  """A node died (crashed or killed); the run stopped with it."""

  def __init__(self, what: str, run_dir: str):
    super().__init__(
        f'error: {what}; node output is in '
        f'{os.path.join(run_dir, "logs", "nodes")}. Resume from the last '
        f'checkpoints by rerunning the same command (run directory '
        f'{run_dir}).')


class LaunchFailed(Exception):
  """A launch that could not start (e.g. a cloud that is out of reach);
  its message is the one line to show."""


def record_signals(then: Optional[Callable[[], None]] = None) -> List[int]:
  """Notes SIGINT and SIGTERM, then calls `then`, or else the handler there
  was (Launchpad's, which stops the nodes)."""
  received = []
  for signum in (signal.SIGINT, signal.SIGTERM):
    previous = signal.getsignal(signum)

    def handler(number, frame, previous=previous):
      received.append(number)
      if then is not None:
        then()
      elif callable(previous):
        previous(number, frame)

    signal.signal(signum, handler)
  return received


def exit_on_failure(run: Callable[[], None]) -> None:
  """Runs `run` (a launcher's work); what ends it early ends the process.

  Each with one line on stderr and its exit status: bad input 2, a node that
  died or a launch that failed 1, SIGINT 130, SIGTERM 143.
  """
  try:
    run()
  except Interrupted as e:
    print(e, file=sys.stderr)
    sys.exit(e.exit_status)
  except (NodeFailed, LaunchFailed) as e:
    print(e, file=sys.stderr)
    sys.exit(1)
  except (config_lib.RunConfigError, pac_config.ConfigError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def check_startup_hook() -> None:
  """Raises `RunConfigError` unless this Python has the project's hook.

  Launchpad's workers are fresh interpreters of this same Python; without
  the hook (`pac_site.py`, installed into the venv by `make setup`) they
  cannot import the agent (see that module).
  """
  if 'pac_site' not in sys.modules:
    raise config_lib.RunConfigError(
        f'{sys.executable} lacks the project\'s start-up hook (pac.pth), so '
        'Launchpad workers could not import the agent. Use the project\'s '
        'venv (make setup creates it: .venv/bin/python -m launchers.run ...).')


def follow(path: str, done: threading.Event) -> None:
  """Prints lines appended to the run's status file until `done`."""
  position = os.path.getsize(path) if os.path.exists(path) else 0
  while True:
    finished = done.is_set()
    if os.path.exists(path):
      with open(path) as f:
        f.seek(position)
        text = f.read()
        position = f.tell()
      if text:
        print(text, end='', flush=True)
    if finished:
      return
    time.sleep(0.5)
