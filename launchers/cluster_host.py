"""One host's part of a cluster run: `python -m launchers.cluster_host --manifest=F`.

Started on each host by `launchers.cluster` through the remote-exec command.
It does for the host's nodes what the local launch does for all of them:
starts each as a process with its environment (placement, and the preload
that keeps its servers on the host's cluster address), restarts actors and
the evaluator that die (`launchers.supervision`), and stops the nodes, each
checkpointing, when the run's stop file appears or it gets SIGTERM/SIGINT.

Exit status: 0 when its nodes ended with the run, 1 when one that the run
cannot lose died (or every restartable one gave up); `result.json` beside
the manifest says which, for the launcher that started it.
"""

import json
import os
import signal
import sys
import threading
import time

from absl import app
from absl import flags
from launchpad.launch.local_multi_processing import commands as mp_commands

from launchers import supervision

_MANIFEST = flags.DEFINE_string(
    'manifest', None, 'The host\'s manifest, written by the cluster launch '
    '(python -m launchers.run --lp_launch_type=cluster).')


def workers_file(host: str) -> str:
  """The host's workers file (in the run directory)."""
  return f'workers.{host}.json'


def result_path(run_dir: str, host: str) -> str:
  """Where a host's launcher writes how its nodes ended."""
  return os.path.join(run_dir, 'cluster', host, 'result.json')


def _watch(stop_file: str, done: threading.Event) -> None:
  """SIGTERM to this process (Launchpad's stop of every node) once the
  run's stop file exists."""
  while not done.wait(0.5):
    if os.path.exists(stop_file):
      os.kill(os.getpid(), signal.SIGTERM)
      return


def run(manifest: dict) -> int:
  """Runs the host's nodes to the run's end; returns the exit status."""
  os.environ.update(manifest['environment'])
  commands = [mp_commands.Command(c['argv'], c['env'], c['label'])
              for c in manifest['commands']]
  manager = supervision.launcher(
      manifest['log_dir'], manifest['run_dir'], manifest['max_restarts'],
      workers_file(manifest['host']))(commands)
  done = threading.Event()
  watcher = threading.Thread(target=_watch,
                             args=(manifest['stop_file'], done), daemon=True)
  watcher.start()
  try:
    manager.wait()
  except RuntimeError:  # A node died; the manager is stopping the rest.
    manager.wait(raise_error=False)
  finally:
    done.set()
  result = {'failed': manager.failed, 'gave_up': manager.gave_up,
            'unclean': [f'{entry} on host {manifest["host"]}'
                        for entry in manager.unclean],
            'time': time.strftime('%Y-%m-%d %H:%M:%S')}
  path = result_path(manifest['run_dir'], manifest['host'])
  with open(path + '.tmp', 'w') as f:
    json.dump(result, f)
  os.replace(path + '.tmp', path)
  return 1 if manager.failed or manager.gave_up else 0


def main(argv) -> None:
  if len(argv) > 1 or not _MANIFEST.value:
    print('usage: python -m launchers.cluster_host --manifest=FILE (written '
          'by python -m launchers.run --lp_launch_type=cluster)',
          file=sys.stderr)
    sys.exit(2)
  try:
    with open(_MANIFEST.value) as f:
      manifest = json.load(f)
  except (OSError, ValueError) as e:
    print(f'error: cannot read manifest {_MANIFEST.value}: {e}',
          file=sys.stderr)
    sys.exit(2)
  sys.exit(run(manifest))


if __name__ == '__main__':
  app.run(main)
