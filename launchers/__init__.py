"""Launchpad programs for PAC.

Importing it makes Acme usable on JAX 0.6 and turns on JAX's persistent
compilation cache, so the processes of a run (and a resumed run) compile each
function once: on a 2-core CPU the learner step otherwise takes ~20 s to compile
in every process that needs it.
"""

import os

import agents as _agents  # noqa: F401  (installs the Acme/JAX compat aliases)
import jax as _jax

_jax.config.update(
    'jax_compilation_cache_dir',
    os.environ.get('PAC_JAX_CACHE_DIR',
                   os.path.join(os.path.expanduser('~'), '.cache', 'pac',
                                'jax')))
_jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
