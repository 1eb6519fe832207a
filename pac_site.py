"""Start-up hook of the project's virtual environment: the stack's import order.

`make setup` installs `pac.pth` into `.venv`'s site-packages. Python reads it
at the start of every interpreter of that environment, so it reaches every
process of any program, ours or a user's: the launcher, each Launchpad worker
(`local_mp`, whatever its terminal), test and benchmark subprocesses. It puts
the repository on `sys.path` and imports this module, which does two things:

* Before the first import of Reverb or of Acme's JAX, TF, agent, adder or
  dataset modules, it imports `agents`,
  whose `acme_compat.install()` (1) imports TensorFlow Probability's JAX
  substrate before TensorFlow loads (TFP 0.25 refuses TF 2.8 once TF is in;
  a Launchpad worker unpickling a node of a user's own program imports
  Reverb, hence TF, before anything of ours, so it failed at import without
  this), and (2) restores
  the JAX names dm-acme 0.4.0 still uses, and `agents` turns on JAX's
  persistent compilation cache. Processes that never touch that stack (e.g.
  dataset generation workers) pay nothing.
* `PAC_NICE=<n>` in the environment lowers the process's CPU priority by n
  (the launchers give actors and evaluators a few, so on a shared machine the
  learner gets the cores).

This is the only place that fixes import order; nothing else needs to.
"""

import importlib.abc
import os
import sys

# Modules whose import needs `agents` first: they import TensorFlow (before
# TFP could) or use the JAX names Acme lost. `import agents` loads TensorFlow
# and JAX but none of these, so none is ever imported twice. Plain `acme`
# (specs, types) and Launchpad import neither TF nor JAX: dataset generation
# uses them alone and stays light.
_TRIGGERS = frozenset({'reverb', 'acme.jax', 'acme.agents', 'acme.tf',
                       'acme.adders', 'acme.datasets'})


class _AgentsFirst(importlib.abc.MetaPathFinder):
  """Imports `agents` just before the first trigger package, then retires."""

  def find_spec(self, fullname, path=None, target=None):
    del path, target
    if fullname in _TRIGGERS and self in sys.meta_path:
      sys.meta_path.remove(self)
      import agents  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    return None  # The regular finders import `fullname`.


def installed() -> bool:
  """Whether this interpreter got the hook (the launchers check it)."""
  return _INSTALLED


if not any(isinstance(f, _AgentsFirst) for f in sys.meta_path):
  sys.meta_path.insert(0, _AgentsFirst())
if os.environ.get('PAC_NICE', '0') != '0':
  os.nice(int(os.environ['PAC_NICE']))
_INSTALLED = True
