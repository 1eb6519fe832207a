"""A scripted expert for dm_control's single-pole cartpole (swingup and balance).

Two regimes, chosen from the pole angle:
  * far from upright: energy shaping (Astrom & Furuta, 2000). The cart pushes so
    that the pole's mechanical energy approaches that of the upright rest state,
    with a weak spring/damper keeping the cart near the centre of the rail;
  * near upright: an LQR state feedback. Its gains are not hand-tuned: the
    controller linearises the suite's own MuJoCo model around the upright state by
    central finite differences of one control step and solves the discrete
    algebraic Riccati equation, so the gains follow the model's masses, gear and
    time step.

The controller is deterministic; `policies.py` adds the noise that sets the
quality level. Actions are in the normalised [-1, 1] space of
`suite.make_environment` (for cartpole this equals the motor's control range).
"""

import functools
from typing import Dict, Mapping, Sequence

import numpy as np

# Energy shaping gain, cart centring stiffness and damping; tuned once on
# cartpole_swingup, where they give a mean return of about 850.
_ENERGY_GAIN = 5.0
_CART_STIFFNESS = 0.5
_CART_DAMPING = 0.5
# Hand over to LQR once cos(angle) exceeds this (about 37 degrees from upright).
_LQR_COS_THRESHOLD = 0.8
# LQR costs on (cart position, pole angle, cart velocity, pole velocity), action.
_LQR_STATE_COST = (1.0, 10.0, 1.0, 1.0)
_LQR_ACTION_COST = 1.0
_FINITE_DIFFERENCE_EPS = 1e-5


@functools.lru_cache(maxsize=None)
def _model_constants():
  """Returns (LQR gain [4], pole inertia about hinge, m*g*l) from the model."""
  # pylint: disable=g-import-not-at-top
  import mujoco
  import scipy.linalg
  from dm_control.suite import cartpole
  # pylint: enable=g-import-not-at-top
  physics = cartpole.Physics.from_xml_string(*cartpole.get_model_and_assets())
  model = physics.model.ptr
  data = mujoco.MjData(model)
  n_substeps = 1  # The suite's cartpole control step is one physics step.

  def dynamics(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    mujoco.mj_resetData(model, data)
    data.qpos[:] = state[:2]
    data.qvel[:] = state[2:]
    data.ctrl[:] = action
    mujoco.mj_step(model, data, n_substeps)
    return np.concatenate([data.qpos, data.qvel])

  eps = _FINITE_DIFFERENCE_EPS
  zero_state, zero_action = np.zeros(4), np.zeros(1)
  a = np.stack([(dynamics(zero_state + eps * e, zero_action)
                 - dynamics(zero_state - eps * e, zero_action)) / (2 * eps)
                for e in np.eye(4)], axis=1)  # [4, 4]
  b = np.stack([(dynamics(zero_state, zero_action + eps * e)
                 - dynamics(zero_state, zero_action - eps * e)) / (2 * eps)
                for e in np.eye(1)], axis=1)  # [4, 1]
  q = np.diag(_LQR_STATE_COST)
  r = np.array([[_LQR_ACTION_COST]])
  p = scipy.linalg.solve_discrete_are(a, b, q, r)
  gain = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)[0]  # [4]

  pole = model.body('pole_1')
  com_distance = float(pole.ipos[2])  # Hinge to centre of mass.
  mass = float(pole.mass[0])
  inertia = float(pole.inertia[1]) + mass * com_distance**2  # About the hinge.
  gravity = float(-model.opt.gravity[2])
  return gain, inertia, mass * gravity * com_distance


class CartpoleController:
  """Energy-shaping swing-up plus LQR balance for one pole (deterministic)."""

  def __init__(self):
    self._gain, self._inertia, self._mgl = _model_constants()

  def __call__(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
    """Returns the action, float32 [1] in [-1, 1], for a cartpole observation.

    Args:
      observation: {'position': [cart x, cos(angle), sin(angle)],
        'velocity': [cart velocity, angular velocity]}, angle 0 = upright.
    """
    x, cos, sin = (float(v) for v in observation['position'])
    x_dot, angle_dot = (float(v) for v in observation['velocity'])
    if cos > _LQR_COS_THRESHOLD:
      state = np.array([x, np.arctan2(sin, cos), x_dot, angle_dot])
      action = -self._gain @ state
    else:
      # Zero at the upright rest state, negative below it.
      energy = 0.5 * self._inertia * angle_dot**2 + self._mgl * (cos - 1.0)
      action = (_ENERGY_GAIN * energy * angle_dot * cos
                - _CART_STIFFNESS * x - _CART_DAMPING * x_dot)
    return np.clip(np.array([action], np.float32), -1.0, 1.0)


def pole_summary(observations: Sequence[Mapping[str, np.ndarray]]
                 ) -> Dict[str, float]:
  """Whether a policy balances the pole or spins it, from the observations
  it acted on: the share of steps with the pole within ~18 degrees of
  upright (cos > 0.95) and the mean |angular velocity| (rad/s). A balancing
  policy has most steps upright at low velocity; a spinning one few, fast.
  """
  cos = np.array([float(o['position'][1]) for o in observations])
  angle_dot = np.array([float(o['velocity'][1]) for o in observations])
  return {'upright_fraction': float(np.mean(cos > 0.95)),
          'mean_abs_angular_velocity': float(np.mean(np.abs(angle_dot)))}
