"""Test-wide setup: headless MuJoCo, Acme compat, and no writes outside tmp dirs."""

import os
import tempfile

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
