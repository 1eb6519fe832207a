"""The run directory's record of what its checkpoints depend on.

A run directory is resumed by rerunning with it; that is only sound if the
new run would build parameters and replay items of the same shape and
meaning. `config.json`, written on first use, records those fields; a later
run that differs in one is refused, naming the fields, before anything starts.
"""

import json
import os

from acme import specs

from environments import specs_io
from launchers import config as config_lib

# Fields of a run that its checkpoints depend on: resuming a run directory with
# different values would restore parameters (or replay items) of another shape
# or meaning. `task` is the run's task list; `spec` its environment spec
# (recorded since multi-task runs; checked where recorded).
_RESUME_KEYS = ('task', 'spec', 'agent.preset', 'agent.network',
                'agent.num_bins', 'agent.num_atoms', 'agent.n_step',
                'agent.offline_block_size')


def _flat(config: config_lib.RunConfig, spec: specs.EnvironmentSpec) -> dict:
  values = {'task': ','.join(config.tasks),
            'spec': specs_io.spec_to_json(spec)}
  values.update({f'agent.{k}': v for k, v in vars(config.agent).items()
                 if not k.startswith('_')})
  return values


def check(config: config_lib.RunConfig, spec: specs.EnvironmentSpec) -> None:
  """Refuses to resume a run directory that holds an incompatible run.

  Writes `config.json` on first use; later runs with the same directory must
  agree on the fields the checkpoints depend on.
  """
  try:
    os.makedirs(config.run_dir, exist_ok=True)
    if not os.access(config.run_dir, os.W_OK):
      raise PermissionError(13, 'not writable')
  except OSError as e:
    raise config_lib.RunConfigError(
        f'run_dir {config.run_dir!r} cannot be created or written '
        f'({e.strerror}); choose a writable path.') from e
  path = config.path('config.json')
  current = json.loads(json.dumps({  # As read back: lists, not tuples.
      k: (v if _jsonable(v) else repr(v))
      for k, v in _flat(config, spec).items()}))
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    changed = [k for k in _RESUME_KEYS if previous.get(k) != current.get(k)
               and (k in previous or k != 'spec')]
    if changed:
      diffs = ', '.join(
          'the environment spec' if k == 'spec' else
          f'{k}: {previous.get(k)!r} -> {current.get(k)!r}' for k in changed)
      raise config_lib.RunConfigError(
          f'run_dir {config.run_dir!r} holds a run that cannot be resumed with '
          f'this config ({diffs}). Use a new --run_dir, or the same settings.')
    return
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(current, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def _jsonable(value) -> bool:
  try:
    json.dumps(value)
    return True
  except TypeError:
    return False
