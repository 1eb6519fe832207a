"""MixedReplayIterator's waits on a rate limiter.

They return to Python at least every `wait_timeout_ms`, so a stop request
(Launchpad raises SystemExit in the waiting thread) can end a learner whose
tables get no more data.
"""

import gc
import os
import signal
import subprocess
import sys
import threading
import time

from acme import specs
from acme import types as acme_types
import numpy as np
import reverb

from agents.pac import replay

SPEC = specs.EnvironmentSpec(
    observations={'position': specs.Array((3,), np.float32)},
    actions=specs.BoundedArray((2,), np.float32, -1., 1.),
    rewards=specs.Array((), np.float32),
    discounts=specs.BoundedArray((), np.float32, 0., 1.))


def _server():
  return reverb.Server([
      replay.make_offline_table(SPEC, max_transitions=8, min_transitions=1,
                                block_size=1),
      replay.make_online_table(SPEC, max_size=100, min_size=4,
                               samples_per_insert=None, error_buffer=1.)])


def _insert_online(client, count):
  obs = {'position': np.zeros(3, np.float32)}
  with client.trajectory_writer(num_keep_alive_refs=1) as writer:
    for _ in range(count):
      writer.append(acme_types.Transition(obs, np.zeros(2, np.float32),
                                          np.float32(1.), np.float32(1.), obs,
                                          ()))
      writer.create_item(replay.ONLINE_TABLE, 1.0, acme_types.Transition(
          {'position': writer.history.observation['position'][-1]},
          writer.history.action[-1], writer.history.reward[-1],
          writer.history.discount[-1],
          {'position': writer.history.next_observation['position'][-1]}, ()))
    writer.flush()


def _iterator(server, **kwargs):
  return replay.MixedReplayIterator(
      f'localhost:{server.port}', batch_size=2,
      online_fraction_at=lambda step: 1.0, block_size=1,
      wait_timeout_ms=200, **kwargs)


def test_a_held_wait_keeps_waiting_and_returns_once_data_arrives():
  server = _server()
  client = reverb.Client(f'localhost:{server.port}')
  try:
    before = set(threading.enumerate())
    iterator = _iterator(server)
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(batch=next(iterator)), daemon=True)
    thread.start()
    time.sleep(1.0)  # Several 200 ms waits end and restart meanwhile.
    assert thread.is_alive()
    _insert_online(client, 4)  # min_size reached: sampling may proceed.
    thread.join(timeout=30)
    assert not thread.is_alive()
    np.testing.assert_array_equal(result['batch'].reward, [1., 1.])
    # Dropping the iterator ends its fetch thread (no stream is kept alive).
    fetch_threads = [t for t in threading.enumerate()
                     if t.name == 'reverb-fetch' and t not in before]
    assert len(fetch_threads) == 1, fetch_threads
    del iterator, thread
    gc.collect()
    fetch_threads[0].join(timeout=10)
    assert not fetch_threads[0].is_alive()
  finally:
    server.stop()



def test_close_ends_a_waiting_call_and_every_later_one():
  server = _server()  # Nothing inserted: a sample waits for good.
  try:
    iterator = _iterator(server)
    result = {}

    def read():
      try:
        next(iterator)
      except StopIteration:
        result['stopped'] = True

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()  # Waiting on the rate limiter.
    iterator.close()
    thread.join(timeout=10)
    assert not thread.is_alive() and result == {'stopped': True}
    try:
      next(iterator)
      raise AssertionError('a closed iterator yielded a batch')
    except StopIteration:
      pass
  finally:
    server.stop()


_SERVE = '''
import sys, time
import reverb
sys.path.insert(0, {root!r})
from tests.agents.pac import test_replay_waits as t
server = t._server()
t._insert_online(reverb.Client(f'localhost:{{server.port}}'), 4)
print(server.port, flush=True)
time.sleep(600)
'''

_READ = '''
import sys
sys.path.insert(0, {root!r})
from agents.pac import replay
iterator = replay.MixedReplayIterator(
    'localhost:{port}', batch_size=2, online_fraction_at=lambda step: 1.0,
    block_size=1, wait_timeout_ms=200)
next(iterator)
print('sampled', flush=True)
while True:
  next(iterator)
'''


def _line(process, wanted) -> str:
  """The first line of `process`'s stdout that `wanted` accepts (libraries
  may print other lines first); fails with its output if it ends first."""
  lines = []
  for line in process.stdout:
    if wanted(line.strip()):
      return line.strip()
    lines.append(line)
  process.wait(timeout=30)
  stderr = process.stderr.read()[-3000:] if process.stderr else ''
  raise AssertionError(f'exited {process.returncode} before the expected '
                       f'line; stdout: {"".join(lines)[-2000:]}; stderr: '
                       f'{stderr}')


def test_ctrl_c_ends_a_learner_whose_replay_server_was_killed():
  """A stream of a dead server blocks in C++; the learner must still stop."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.dirname(os.path.abspath(__file__)))))
  server = subprocess.Popen(
      [sys.executable, '-c', _SERVE.format(root=root)],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  reader = None
  try:
    port = int(_line(server, str.isdigit))
    reader = subprocess.Popen(
        [sys.executable, '-c', _READ.format(root=root, port=port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell's background job starts with Ctrl-C ignored, which Python
        # would inherit: the reader must get Python's own handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _line(reader, lambda line: line == 'sampled')
    server.kill()
    server.wait(timeout=30)
    time.sleep(2.0)  # The reader is now waiting on the dead server.
    assert reader.poll() is None, (
        f'the reader ended by itself ({reader.returncode}): '
        f'{reader.stderr.read()[-3000:]}')
    reader.send_signal(signal.SIGINT)
    try:
      _, stderr = reader.communicate(timeout=60)  # Hangs without the fix.
    except subprocess.TimeoutExpired:
      raise AssertionError(
          'the reader did not end within 60 s of SIGINT') from None
    assert 'KeyboardInterrupt' in stderr, stderr[-3000:]
  finally:
    for process in (server, reader):
      if process is not None and process.poll() is None:
        process.kill()
        process.wait()
