"""Environment specs as plain JSON, and a field-by-field spec comparison.

A dataset stores its spec as JSON so that a reader can check it against an agent's
`EnvironmentSpec` without building the environment (or having dm_control). The
JSON form of one array spec is
  {"shape": [3], "dtype": "float32", "name": "position"}
plus "minimum"/"maximum" (nested lists, shaped like the spec) for bounded specs and
"num_values" for discrete ones. A whole spec is
  {"observation": {name: array, ...}, "action": array, "reward": array,
   "discount": array}.
Only dict observations are supported, as every environment here has them.
"""

from typing import Any, Dict, Mapping

from acme import specs
import numpy as np

from environments import errors

_FIELDS = ('observation', 'action', 'reward', 'discount')


def _array_to_json(spec: specs.Array) -> Dict[str, Any]:
  encoded = {'shape': list(spec.shape), 'dtype': np.dtype(spec.dtype).name,
             'name': spec.name}
  if isinstance(spec, specs.DiscreteArray):
    encoded['num_values'] = int(spec.num_values)
  elif isinstance(spec, specs.BoundedArray):
    encoded['minimum'] = np.broadcast_to(spec.minimum, spec.shape).tolist()
    encoded['maximum'] = np.broadcast_to(spec.maximum, spec.shape).tolist()
  return encoded


def spec_to_json(env_spec: specs.EnvironmentSpec) -> Dict[str, Any]:
  """Encodes an `EnvironmentSpec` whose observations are a dict of arrays."""
  if not isinstance(env_spec.observations, Mapping):
    raise TypeError('Only dict observations are supported, got '
                    f'{type(env_spec.observations).__name__}.')
  return {
      'observation': {name: _array_to_json(spec)
                      for name, spec in env_spec.observations.items()},
      'action': _array_to_json(env_spec.actions),
      'reward': _array_to_json(env_spec.rewards),
      'discount': _array_to_json(env_spec.discounts),
  }


def _array_from_json(encoded: Any, field: str, source: str) -> specs.Array:
  if not isinstance(encoded, Mapping):
    raise errors.MissingFieldError(
        f'{source}: spec field {field!r} should be an object with "shape" and '
        f'"dtype", found {encoded!r}.')
  for key in ('shape', 'dtype'):
    if key not in encoded:
      raise errors.MissingFieldError(
          f'{source}: spec field {field!r} lacks {key!r}; found keys '
          f'{sorted(encoded)}.')
  try:
    shape = tuple(int(d) for d in encoded['shape'])
    dtype = np.dtype(encoded['dtype'])
    name = encoded.get('name')
    if 'num_values' in encoded:
      return specs.DiscreteArray(int(encoded['num_values']), dtype, name)
    if 'minimum' in encoded or 'maximum' in encoded:
      return specs.BoundedArray(shape, dtype, np.asarray(encoded['minimum']),
                                np.asarray(encoded['maximum']), name)
    return specs.Array(shape, dtype, name)
  except (TypeError, ValueError, KeyError) as e:
    raise errors.CorruptDatasetError(
        f'{source}: spec field {field!r} is invalid ({e}); found {encoded!r}.'
    ) from e


def spec_from_json(encoded: Any, source: str) -> specs.EnvironmentSpec:
  """Decodes `spec_to_json`'s output; `source` names the file in errors."""
  if not isinstance(encoded, Mapping):
    raise errors.MissingFieldError(f'{source}: "spec" should be an object, '
                                   f'found {encoded!r}.')
  for field in _FIELDS:
    if field not in encoded:
      raise errors.MissingFieldError(
          f'{source}: spec lacks the {field!r} field (expected all of '
          f'{list(_FIELDS)}, found {sorted(encoded)}). The file is damaged or '
          'was not written by environments.generate; regenerate the dataset.')
  observations = encoded['observation']
  if not isinstance(observations, Mapping) or not observations:
    raise errors.MissingFieldError(
        f'{source}: spec field "observation" should map names to arrays, '
        f'found {observations!r}.')
  return specs.EnvironmentSpec(
      observations={name: _array_from_json(value, f'observation/{name}', source)
                    for name, value in observations.items()},
      actions=_array_from_json(encoded['action'], 'action', source),
      rewards=_array_from_json(encoded['reward'], 'reward', source),
      discounts=_array_from_json(encoded['discount'], 'discount', source))


def _describe(spec: specs.Array) -> str:
  return f'shape {tuple(spec.shape)} dtype {np.dtype(spec.dtype).name}'


def _check_array(field: str, expected: specs.Array, found: Any,
                 source: str) -> None:
  if not hasattr(found, 'shape') or not hasattr(found, 'dtype'):
    raise errors.DatasetSpecError(
        f'{field}: expected {_describe(expected)} (as in {source}), found '
        f'{found!r}, which is not an array spec.')
  if (tuple(found.shape) != tuple(expected.shape)
      or np.dtype(found.dtype) != np.dtype(expected.dtype)):
    raise errors.DatasetSpecError(
        f'{field}: expected {_describe(expected)} (as in {source}), found '
        f'{_describe(found)}.')
  if isinstance(expected, specs.BoundedArray) and isinstance(
      found, specs.BoundedArray):
    for bound in ('minimum', 'maximum'):
      want = np.broadcast_to(getattr(expected, bound), expected.shape)
      got = np.broadcast_to(getattr(found, bound), found.shape)
      if not np.allclose(want, got):
        raise errors.DatasetSpecError(
            f'{field}: expected {bound} {want.tolist()} (as in {source}), '
            f'found {got.tolist()}.')


def check_spec(expected: specs.EnvironmentSpec, found: specs.EnvironmentSpec,
               source: str) -> None:
  """Raises `DatasetSpecError` naming the first field where the specs differ.

  Compares observation names, then every array's shape and dtype (and bounds
  where both specs are bounded). `source` says where `expected` comes from.
  """
  if not isinstance(found.observations, Mapping):
    raise errors.DatasetSpecError(
        f'observation: expected a dict of {sorted(expected.observations)} (as '
        f'in {source}), found {type(found.observations).__name__}.')
  missing = sorted(set(expected.observations) - set(found.observations))
  extra = sorted(set(found.observations) - set(expected.observations))
  if missing or extra:
    raise errors.DatasetSpecError(
        f'observation: names differ from {source}; missing: {missing}, '
        f'unexpected: {extra}.')
  for name, spec in expected.observations.items():
    _check_array(f'observation/{name}', spec, found.observations[name], source)
  _check_array('action', expected.actions, found.actions, source)
  _check_array('reward', expected.rewards, found.rewards, source)
  _check_array('discount', expected.discounts, found.discounts, source)
