"""Restores the few JAX names dm-acme 0.4.0 still uses, so Acme runs on JAX 0.6.

dm-acme 0.4.0 (the last PyPI release, 2022) was written against JAX 0.3. Since then
JAX removed `jax.xla`, `jax.pxla`, the `jax.tree_*` aliases and `jnp.DeviceArray`;
importing `acme.jax.utils` fails with `module 'jax' has no attribute 'xla'`. The
aliases below point the old names at their current equivalents. Nothing else in Acme
is patched.

Import order matters: TensorFlow Probability 0.25 refuses TF 2.8 if TensorFlow is
imported first, so `install()` imports TFP's JAX substrate before anything imports
TensorFlow. `agents/__init__` calls it, and the venv's start-up hook (`pac_site.py`)
imports `agents` in every process before Reverb or Acme's JAX modules load,
including Launchpad workers of a user's own program.
"""

import types

_INSTALLED = False


def install() -> None:
  """Installs the aliases once per process; later calls do nothing."""
  global _INSTALLED
  if _INSTALLED:
    return
  # Must precede the first TensorFlow import (see module docstring).
  import tensorflow_probability.substrates.jax  # pylint: disable=g-import-not-at-top,unused-import
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  if not hasattr(jax, 'xla'):
    jax.xla = types.SimpleNamespace(DeviceArray=jax.Array, Device=jax.Device)
  if not hasattr(jax, 'pxla'):
    jax.pxla = types.SimpleNamespace(ShardedDeviceArray=jax.Array)
  if not hasattr(jnp, 'DeviceArray'):
    jnp.DeviceArray = jax.Array
  # `tree_multimap` was `tree_map` with several trees; the current one does both.
  for old, new in (('tree_map', jax.tree.map), ('tree_multimap', jax.tree.map),
                   ('tree_flatten', jax.tree.flatten),
                   ('tree_unflatten', jax.tree.unflatten),
                   ('tree_leaves', jax.tree.leaves),
                   ('tree_structure', jax.tree.structure)):
    if not hasattr(jax, old):
      setattr(jax, old, new)
  _INSTALLED = True
