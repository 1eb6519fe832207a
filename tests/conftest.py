"""Test-wide setup: headless MuJoCo, Acme compat, and no writes outside tmp dirs."""

import os
import tempfile

# Before anything imports MuJoCo or TensorFlow.
os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Acme defaults its logs and checkpoints to ~/acme: keep tests out of the real home.
os.environ['HOME'] = tempfile.mkdtemp(prefix='pac-test-home-')

import agents  # noqa: E402,F401  (installs the Acme/JAX compat aliases first)
