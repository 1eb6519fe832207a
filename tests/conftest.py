"""Test-wide setup: headless MuJoCo, Acme compat, and no writes outside tmp dirs."""

import faulthandler
import os
import sys
import tempfile

import pytest


# Before anything imports MuJoCo or TensorFlow.
os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Acme defaults its logs and checkpoints to ~/acme: keep tests out of the real home.
os.environ['HOME'] = tempfile.mkdtemp(prefix='pac-test-home-')

# Tests compile the same learner and policies many times over (and in the
# subprocesses of multi-process runs): share compilations through JAX's
# persistent cache, kept out of git in .cache/ (`agents` applies it).
os.environ.setdefault(
    'PAC_JAX_CACHE_DIR',
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 '.cache', 'jax'))

import agents  # noqa: E402,F401  (Acme/JAX compat, compilation cache)


_CRASH_OUTPUT = []
_CONFIG = []


def pytest_configure(config):
  """A crash in native code (abort, segfault) prints the stack of the thread
  that crashed only: pytest's own handler (turned off in pytest.ini) prints
  every thread, and CI keeps only the end of its output, where the main
  thread's pytest frames land. Enabled here, after the imports above (a
  library's own crash handler would otherwise replace it), on a duplicate of
  the terminal's stderr (pytest captures fd 2 during tests)."""
  _CRASH_OUTPUT.append(os.fdopen(os.dup(sys.stderr.fileno()), 'w'))
  faulthandler.enable(file=_CRASH_OUTPUT[0], all_threads=False)
  _CONFIG.append(config)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logstart(nodeid, location):
  """Flushes the progress line (the test file's name) as each test starts,
  so that a crash's stack follows the name of the file it happened in
  (output to a pipe is otherwise held in a buffer that a crash loses)."""
  del nodeid, location
  _CONFIG[0].get_terminal_writer().flush()
