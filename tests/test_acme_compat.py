"""The Acme/JAX compat layer: Acme's JAX modules import and work on JAX 0.6."""

import jax
import jax.numpy as jnp
import numpy as np

from agents.pac import acme_compat


def test_install_is_idempotent_and_restores_removed_names():
  acme_compat.install()
  acme_compat.install()
  assert jax.tree_map is jax.tree.map
  assert jax.xla.DeviceArray is jax.Array
  assert jnp.DeviceArray is jax.Array


def test_acme_jax_utilities_run():
  # These import `jax.xla` at module level and use `jax.tree_map` inside.
  from acme.jax import utils  # pylint: disable=g-import-not-at-top
  from acme.jax.layouts import distributed_layout  # pylint: disable=g-import-not-at-top,unused-import
  from acme.jax.layouts import local_layout  # pylint: disable=g-import-not-at-top,unused-import
  batched = utils.add_batch_dim({'x': jnp.ones(3)})
  assert batched['x'].shape == (1, 3)
  out = utils.to_numpy_squeeze(batched)
  assert isinstance(out['x'], np.ndarray) and out['x'].shape == (3,)
  tiled = utils.tile_nested({'x': jnp.arange(2)}, 3)
  np.testing.assert_array_equal(tiled['x'], [[0, 1]] * 3)
