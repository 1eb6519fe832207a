"""The venv's start-up hook: every interpreter of the venv gets the import order.

Run in fresh interpreters, as Launchpad's workers are: a process that imports
Launchpad (whose worker entry then imports TensorFlow) before anything of ours
must still be able to import Acme's JAX modules and the agent.
"""

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

import pac_site

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str, **env) -> subprocess.CompletedProcess:
  """Runs `code` in a fresh interpreter of this venv, outside the repo."""
  return subprocess.run([sys.executable, '-c', code], cwd='/', text=True,
                        capture_output=True, env={**os.environ, **env},
                        timeout=300)


def test_this_interpreter_has_the_hook():
  assert pac_site.installed()


def test_worker_style_import_order_works_from_any_directory():
  """Launchpad first (as its worker entry does), then TF, then Acme's JAX."""
  result = _python(
      'import launchpad, reverb, tensorflow, sys\n'
      'import acme.jax.utils\n'
      'from agents.pac import builder\n'
      "print('substrate', 'tensorflow_probability.substrates.jax' in "
      'sys.modules)')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'substrate True' in result.stdout


def test_without_the_hook_the_same_imports_fail():
  """What the hook fixes: TF first makes TFP (hence Acme's JAX) refuse."""
  site_packages = [p for p in sys.path if p.endswith('site-packages')]
  result = subprocess.run(
      [sys.executable, '-S', '-c',
       'import sys\n'
       # The venv's packages, without running its .pth files (-S).
       'sys.path[:0] = sys.argv[1:]\n'
       'import launchpad, tensorflow\n'
       'from agents.pac import builder\n', _ROOT, *site_packages],
      cwd='/', text=True, capture_output=True, timeout=300)
  assert result.returncode != 0
  assert 'TensorFlow Probability' in result.stderr


def test_processes_that_never_touch_the_stack_pay_nothing():
  result = _python('import sys, environments.writer\n'
                   "print(sorted(m for m in ('agents', 'jax', 'tensorflow') "
                   'if m in sys.modules))')
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == '[]'


@pytest.mark.parametrize('nice', ['0', '3'])
def test_pac_nice_lowers_the_priority(nice):
  result = _python('import os; print(os.nice(0))', PAC_NICE=nice)
  assert result.returncode == 0, result.stderr[-2000:]
  assert int(result.stdout) == os.nice(0) + int(nice)


# A user's own Launchpad program, run from outside the repository: its
# worker imports Reverb (hence TensorFlow) before anything of ours. The node
# returns rather than calling lp.stop(): in tmux mode Launchpad's stop handler
# can list a pane that has just exited and die with psutil.NoSuchProcess, a
# race of Launchpad's, not of the hook under test.
_USER_PROGRAM = """
import sys

from absl import flags
import launchpad as lp

terminal, marker, session = sys.argv[1:]


def node():
  import reverb, tensorflow  # noqa: F401,E401
  import acme.jax.utils  # noqa: F401
  from agents.pac import builder  # noqa: F401
  with open(marker + '.tmp', 'w') as f:
    f.write(str('tensorflow_probability.substrates.jax' in sys.modules))
  os.replace(marker + '.tmp', marker)


flags.FLAGS(['program', f'--tmux_session_name={session}'])
program = lp.Program('user_program')
program.add_node(lp.PyNode(node), label='node')
lp.launch(program, launch_type='local_mp', terminal=terminal).wait()
""".replace('import sys', 'import os\nimport sys', 1)


@pytest.mark.integration
@pytest.mark.parametrize('terminal', ['current_terminal', 'tmux_session'])
def test_workers_of_a_users_local_mp_program_import_the_agent(
    tmp_path, terminal):
  if terminal == 'tmux_session' and not shutil.which('tmux'):
    pytest.skip('tmux is not installed')
  script, marker = tmp_path / 'program.py', tmp_path / 'marker'
  script.write_text(_USER_PROGRAM)
  session = f'pac_test_{uuid.uuid4().hex[:8]}'
  launcher = subprocess.Popen(
      [sys.executable, str(script), terminal, str(marker), session],
      cwd=str(tmp_path), text=True, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT)
  try:
    deadline = time.monotonic() + 300
    while not marker.exists() and launcher.poll() is None:
      assert time.monotonic() < deadline, 'the worker never wrote its marker'
      time.sleep(0.5)
    if terminal == 'tmux_session':
      # A tmux pane drops into a shell when its worker ends; closing the
      # session is how a tmux user ends such a program.
      subprocess.run(['tmux', 'kill-session', '-t', session],
                     capture_output=True)
    output, _ = launcher.communicate(timeout=120)
  finally:
    if launcher.poll() is None:
      launcher.kill()
    if shutil.which('tmux'):
      subprocess.run(['tmux', 'kill-session', '-t', session],
                     capture_output=True)
  assert launcher.returncode == 0, output[-3000:]
  assert marker.read_text() == 'True'
