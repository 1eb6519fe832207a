"""`launchers.supervision`: restartable nodes come back, others end the run.

Real processes (small Python scripts) under the supervisor, killed with
SIGKILL; and the Courier behaviour the controller relies on when a node it is
calling dies and restarts.
"""

import os
import signal
import subprocess
import sys
import time

from absl import flags
import portpicker
import pytest

from launchers import supervision

_SLEEPER = [sys.executable, '-c', 'import time; time.sleep(120)']


@pytest.fixture(autouse=True)
def _parsed_flags():
  """Launchpad's manager reads its absl flags (defaults here)."""
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _supervisor(tmp_path, max_restarts):
  manager = supervision.Supervisor(str(tmp_path / 'logs'), str(tmp_path),
                                   max_restarts)
  for label in ('actor/0', 'actor/1', 'learner/0'):
    manager.start(label, _SLEEPER, dict(os.environ))
  manager.write_workers()
  return manager


def _wait_until(condition, timeout=30):
  deadline = time.time() + timeout
  while not condition():
    assert time.time() < deadline, 'timed out'
    time.sleep(0.1)


def _check(manager):
  with manager._mutex:  # pylint: disable=protected-access
    manager._check_workers()  # pylint: disable=protected-access


def test_a_killed_actor_is_restarted_and_recorded(tmp_path):
  manager = _supervisor(tmp_path, max_restarts=1)
  try:
    first = manager.processes['actor/1']
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    _check(manager)
    second = manager.processes['actor/1']
    assert second.pid != first.pid and second.poll() is None
    workers = supervision.read_workers(str(tmp_path))
    assert workers['actor/1']['pid'] == second.pid
    assert workers['actor/1']['restarts'] == 1
    assert workers['actor/1']['deaths'][0]['exit'] == 'killed by SIGKILL'
    assert workers['actor/0']['deaths'] == []
    status = (tmp_path / 'status.log').read_text()
    assert '[fault] actor/1 died (killed by SIGKILL)' in status
    assert 'restarted it (restart 1 of 1); 2 of 2 actor nodes running' in status
    # Its log gets a second start header, after the first one's output.
    log = (tmp_path / 'logs' / 'actor' / '1').read_text()
    assert log.count('==== actor/1 started') == 2

    # The restart limit reached: not restarted, one actor left, run goes on.
    os.kill(second.pid, signal.SIGKILL)
    second.wait()
    _check(manager)
    assert manager.processes['actor/1'] is second
    assert supervision.read_workers(str(tmp_path))['actor/1']['state'] == 'gone'
    assert '1 of 2 actor nodes running' in (tmp_path / 'status.log').read_text()
    assert manager.gave_up is None and manager.failed == []
  finally:
    manager._stop()  # pylint: disable=protected-access
    manager.wait(raise_error=False)


def test_when_every_actor_is_gone_the_run_stops(tmp_path):
  manager = _supervisor(tmp_path, max_restarts=0)
  for label in ('actor/0', 'actor/1'):
    os.kill(manager.processes[label].pid, signal.SIGKILL)
    manager.processes[label].wait()
  manager.wait(raise_error=False)  # Returns: the learner was stopped too.
  assert manager.gave_up == ('every actor node died and used its 0 restarts, '
                             'so the run stopped')
  assert manager.processes['learner/0'].returncode == -signal.SIGTERM
  assert 'the other nodes checkpoint and stop' in (
      tmp_path / 'status.log').read_text()


def test_a_dead_learner_is_not_restarted_and_fails_the_run(tmp_path):
  manager = _supervisor(tmp_path, max_restarts=3)
  learner = manager.processes['learner/0']
  os.kill(learner.pid, signal.SIGKILL)
  with pytest.raises(RuntimeError):
    manager.wait()
  manager.wait(raise_error=False)
  assert manager.processes['learner/0'] is learner
  # Named as the cause; the nodes stopped after it are not.
  assert manager.failed == ['learner/0 (killed by SIGKILL)']


# A node that stops on SIGTERM (as Launchpad's do) or ignores it (a node stuck
# in its last step); each marks that its handler is set.
_STOPPING = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
open(sys.argv[1], 'w').close()
time.sleep(120)
"""
_STUCK = _STOPPING.replace('lambda *_: sys.exit(0)', 'signal.SIG_IGN')
# Ends by the signal itself: what a Launchpad node whose handlers are gone
# does on a later SIGTERM, after it stopped.
_ENDED = _STOPPING.replace('lambda *_: sys.exit(0)', 'signal.SIG_DFL')
_FAILING = _STOPPING.replace('sys.exit(0)', 'sys.exit(1)')  # Fails to stop.


def test_nodes_that_outlive_the_stop_notice_are_killed_and_named(tmp_path):
  manager = supervision.Supervisor(str(tmp_path / 'logs'), str(tmp_path),
                                   max_restarts=3, stop_notice_s=2)
  nodes = (('learner/0', _STUCK), ('replay/0', _STOPPING),
           ('counter/0', _ENDED), ('controller/0', _FAILING),
           ('actor/0', _STUCK), ('actor/1', _STOPPING), ('actor/2', _ENDED))
  for label, script in nodes:
    manager.start(label, [sys.executable, '-c', script,
                          str(tmp_path / label.replace('/', '_'))],
                  dict(os.environ))
  _wait_until(lambda: len(list(tmp_path.glob('*_*'))) == len(nodes))
  stuck_actor = manager.processes['actor/0']
  start = time.time()
  with manager._mutex:  # pylint: disable=protected-access
    manager._stop()  # pylint: disable=protected-access
  manager.wait(raise_error=False)
  assert 2 <= time.time() - start < 10  # Killed at the notice's end.
  assert sorted(manager.unclean) == ['actor/0 (killed by SIGKILL)',
                                     'controller/0 (exit 1)',
                                     'learner/0 (killed by SIGKILL)']
  assert manager.failed == [] and manager.gave_up is None
  assert manager.processes['replay/0'].returncode == 0
  assert manager.processes['actor/0'] is stuck_actor  # No restart at a stop.


_SERVER = """
import sys, time
import courier
server = courier.Server('node', port=int(sys.argv[1]))
server.Bind('slow', lambda: (time.sleep(float(sys.argv[2])), sys.argv[3])[1])
server.Start()
time.sleep(120)
"""


@pytest.mark.integration
def test_a_call_to_a_node_that_dies_is_answered_by_its_restart():
  """What the controller relies on: no error, the restarted node answers."""
  import courier  # pylint: disable=g-import-not-at-top
  port = portpicker.pick_unused_port()
  command = [sys.executable, '-c', _SERVER, str(port)]
  first = subprocess.Popen(command + ['60', 'first'])
  second = None
  try:
    client = courier.Client(f'localhost:{port}')
    assert client.futures.slow  # Connects lazily; the call waits for ready.
    future = client.futures.slow()
    time.sleep(5)  # The call is in flight in `first`.
    first.kill()
    first.wait()
    time.sleep(2)
    assert not future.done()
    second = subprocess.Popen(command + ['0', 'second'])
    _wait_until(future.done, timeout=60)
    assert future.result() == 'second'
  finally:
    for process in (first, second):
      if process is not None:
        process.kill()
        process.wait()
