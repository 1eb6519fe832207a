"""PAC on a pixel task: rendered frames flow through the network, the learner
and the policy (a smoke test; learning from pixels is not asserted).

`cartpole_swingup_pixels` observes `pixels` uint8 [64, 64, 3] (rendered
headless with EGL, Mesa's software renderer on a CPU) besides cartpole's
position and velocity; the Perceiver turns the frame into patch tokens.
"""

from acme import types
import jax
import numpy as np

import environments
from agents.pac import acting
from agents.pac import config as config_lib
from agents.pac import learning
from agents.pac import networks as networks_lib

_CONFIG = config_lib.PACConfig(
    network=config_lib.NetworkConfig(
        embed_dim=16, num_latents=4, num_self_attention_blocks=1, num_heads=2,
        mlp_multiplier=2, critic_hidden=(16,), patch_size=16,
        conv_channels=(8,)),
    num_bins=11, num_atoms=21, v_min=0.0, v_max=10.0, num_sampled_actions=4,
    batch_size=8)
_STEPS = 24  # Environment steps rolled out (~20 ms each with rendering).


def _rollout(environment, rng):
  """`_STEPS` uniformly random steps as 1-step transitions [N, ...]."""
  spec = environment.action_spec()
  timestep = environment.reset()
  rows = []
  for _ in range(_STEPS):
    action = rng.uniform(-1, 1, spec.shape).astype(np.float32)
    following = environment.step(action)
    rows.append(types.Transition(timestep.observation, action,
                                 following.reward, following.discount,
                                 following.observation, ()))
    timestep = following
  return jax.tree.map(lambda *xs: np.stack(xs), *rows)


def test_a_pixel_task_trains_and_acts():
  environment = environments.make_environment('cartpole_swingup_pixels',
                                              seed=0)
  spec = environments.environment_spec(environment)
  assert spec.observations['pixels'].shape == (64, 64, 3)
  assert spec.observations['pixels'].dtype == np.uint8
  assert spec.observations['position'].dtype == np.float32
  transitions = _rollout(environment, np.random.default_rng(0))
  assert transitions.observation['pixels'].dtype == np.uint8
  assert transitions.observation['pixels'].std() > 0  # A real frame.

  networks = networks_lib.make_networks(spec, _CONFIG)
  rng = np.random.default_rng(1)

  def batches():
    while True:
      rows = rng.integers(_STEPS, size=_CONFIG.batch_size)
      yield jax.tree.map(lambda x: x[rows], transitions)

  class Logger:

    def __init__(self):
      self.data = []

    def write(self, values):
      self.data.append(dict(values))

  logger = Logger()
  learner = learning.PACLearner(networks, _CONFIG, jax.random.PRNGKey(0),
                                batches(), logger=logger)
  before = learner.get_variables(['policy'])[0]
  for _ in range(3):
    learner.step()
  assert learner.num_steps == 3
  assert len(logger.data) == 3
  assert all(np.isfinite(row['loss/total']) for row in logger.data)
  after = learner.get_variables(['policy'])[0]
  conv = [k for k in after if 'conv_pixels' in k]
  assert conv, list(after)  # The frame's own conv stem learned.
  assert not np.array_equal(before[conv[0]]['w'], after[conv[0]]['w'])

  policy = jax.jit(acting.make_policy(networks, _CONFIG, 'sample'))
  observation = jax.tree.map(lambda x: x[None], environment.reset().observation)
  action = np.asarray(policy(after, jax.random.PRNGKey(2), observation))
  assert action.shape == (1, 1) and np.all(np.abs(action) <= 1.0)
