"""Decodes one episode's EnvLogger step records into columns, fast.

EnvLogger stores each step as a nested `storage_pb2.Data` proto. Its generic
decoder (`envlogger.converters.codec.decode`) walks that tree in Python and
builds a numpy array per leaf, about 150 us per step on our CPUs, which made
reading a dataset (and so loading it into replay) run at a few thousand steps
per second.

Every record our writer produces has one shape:

    ((step_type, reward, discount, {observation name: array}), action,
     {'log_prob': scalar} or None)

with every float32 leaf stored as a big-endian byte buffer. `decode_episode`
reads exactly that shape with direct field access, keeps the raw buffers, and
turns each field of the whole episode into an array with one `np.frombuffer`:
about 4x faster than the generic decoder. It checks the structure (keys, scalar
and array shapes, the byte length of every leaf) and returns None for any
record that does not have that shape (another writer, other dtypes, damage);
the caller then falls back to the generic decoder, which is also the one that
names what is wrong.
"""

from typing import Any, Dict, List, Optional, Sequence

from acme import specs
from envlogger.proto import storage_pb2
from google.protobuf import message as proto_message
import numpy as np

# EnvLogger's shape marker for a scalar datum (codec._SCALAR_DIM_SIZE).
_SCALAR = -438
_FLOAT32 = np.dtype(np.float32)
# Step types as EnvLogger's codec writes Python ints: signed big-endian bytes.
STEP_TYPE_BYTES = {b'\x00': 0, b'\x01': 1, b'\x02': 2}

# What `decode_episode` returns, all numpy, for an episode of T actions:
#   'step_types'  [T+1] int  (dm_env.StepType values)
#   'observation' name -> [T+1, ...] float32
#   'action' [T, A], 'reward' [T], 'discount' [T], 'log_prob' [T] or None.
EpisodeFields = Dict[str, Any]


def _dims(datum: storage_pb2.Datum) -> List[int]:
  return [d.size for d in datum.shape.dim]


def _expected_dims(spec: specs.Array) -> List[int]:
  return list(spec.shape) if spec.shape else [_SCALAR]


def _stack(buffers: List[bytes], spec: specs.Array) -> Optional[np.ndarray]:
  """Big-endian float32 buffers of one field -> [len, *spec.shape], or None."""
  size = 4 * int(np.prod(spec.shape, dtype=np.int64))
  lengths = np.fromiter(map(len, buffers), np.int64, len(buffers))
  if not np.all(lengths == size):
    return None
  values = np.frombuffer(b''.join(buffers), '>f4')
  return values.reshape((len(buffers),) + tuple(spec.shape)).astype(_FLOAT32)


def _all_float32(env_spec: specs.EnvironmentSpec) -> bool:
  leaves = [env_spec.actions, env_spec.rewards, env_spec.discounts,
            *env_spec.observations.values()]
  return all(np.dtype(s.dtype) == _FLOAT32 for s in leaves)


def decode_episode(serialized: Sequence[bytes],
                   env_spec: specs.EnvironmentSpec,
                   has_log_prob: bool) -> Optional[EpisodeFields]:
  """Decodes the T+1 records of one episode, or returns None (see module doc).

  Args:
    serialized: the episode's records, as EnvLogger wrote them.
    env_spec: the dataset's spec (observation names, shapes, dtypes).
    has_log_prob: whether records 1..T carry {'log_prob': float32}.

  Returns:
    `EpisodeFields`, bit-identical to what the generic decoder yields, or None
    when any record has another structure.
  """
  if not _all_float32(env_spec) or len(serialized) < 2:
    return None
  names = list(env_spec.observations)
  step_types: List[bytes] = []
  observations: Dict[str, List[bytes]] = {name: [] for name in names}
  actions, rewards, discounts, log_probs = [], [], [], []
  try:
    for j, record in enumerate(serialized):
      parts = storage_pb2.Data.FromString(record).tuple.values
      timestep = parts[0].tuple.values
      step_types.append(timestep[0].datum.values.bigint_values[0])
      observation = timestep[3].dict.values
      for name in names:
        # A map's [] would insert a missing key; test membership first.
        if name not in observation:
          return None
        observations[name].append(
            observation[name].datum.values.float_values_buffer)
      if j == 0:  # The reset record: no action, reward or log_prob.
        first_dims = [_dims(observation[n].datum) for n in names]
        continue
      if j == 1:
        leaves = (parts[1].datum, timestep[1].datum, timestep[2].datum)
        if [_dims(d) for d in leaves] != [
            _expected_dims(env_spec.actions), [_SCALAR], [_SCALAR]]:
          return None
      actions.append(parts[1].datum.values.float_values_buffer)
      rewards.append(timestep[1].datum.values.float_values_buffer)
      discounts.append(timestep[2].datum.values.float_values_buffer)
      if has_log_prob:
        custom = parts[2].dict.values
        if 'log_prob' not in custom:
          return None
        log_probs.append(custom['log_prob'].datum.values.float_values_buffer)
  except (IndexError, ValueError, RuntimeError, proto_message.DecodeError):
    return None
  if first_dims != [_expected_dims(env_spec.observations[n]) for n in names]:
    return None
  fields = {
      'step_types': [STEP_TYPE_BYTES.get(b, -1) for b in step_types],
      'observation': {n: _stack(observations[n], env_spec.observations[n])
                      for n in names},
      'action': _stack(actions, env_spec.actions),
      'reward': _stack(rewards, env_spec.rewards),
      'discount': _stack(discounts, env_spec.discounts),
      'log_prob': (_stack(log_probs, specs.Array((), np.float32))
                   if has_log_prob else None),
  }
  arrays = [fields['action'], fields['reward'], fields['discount'],
            *fields['observation'].values()]
  if has_log_prob:
    arrays.append(fields['log_prob'])
  if any(a is None for a in arrays):
    return None
  return fields
