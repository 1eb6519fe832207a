"""Agents of the PAC project.

Importing it (the venv's start-up hook does, before Acme's JAX modules load)
makes Acme usable on JAX 0.6 and turns on JAX's persistent compilation cache
in `$PAC_JAX_CACHE_DIR` (default `~/.cache/pac/jax`; empty turns it off), so
the processes of a run, a resumed run and the next run compile each function
once: on a 2-core CPU the learner step otherwise takes 20-60 s to compile in
every process and every run.
"""

import os as _os

import jax as _jax

from agents.pac import acme_compat as _acme_compat

_acme_compat.install()
_CACHE_DIR = _os.environ.get(
    'PAC_JAX_CACHE_DIR',
    _os.path.join(_os.path.expanduser('~'), '.cache', 'pac', 'jax'))
if _CACHE_DIR:
  _jax.config.update('jax_compilation_cache_dir', _CACHE_DIR)
  _jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
