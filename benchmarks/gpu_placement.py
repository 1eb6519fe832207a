"""On a GPU machine: does each node group compute where `placement` says?

Starts one process per node group with the environment a `local_mp` launch
gives that group (`launchers.placement.node_environment`), has each put an
array on JAX's default device and hold it, and asks the driver
(`nvidia-smi`) which processes hold GPU memory. Passes when the learner's
array lives on the GPU (for `--learner_device` auto and gpu) and no other
group's process holds any GPU memory or sees a GPU.

It needs only JAX with CUDA and `nvidia-smi`, not the rest of the project's
stack (the GPU machines this was run on have Python 3.12, where Launchpad has
no wheels), so `placement.py` is loaded by its path instead of through the
`launchers` package, whose import brings in Acme.

  python3 benchmarks/gpu_placement.py   # writes results/gpu_placement.json
"""

import datetime
import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import Dict, List

_HERE = os.path.dirname(os.path.abspath(__file__))
_CHILD = r'''
import json, sys, time
import jax, jax.numpy as jnp
x = jnp.ones((1024, 1024), jnp.float32)  # [1024, 1024]: 4 MiB
x.block_until_ready()
print(json.dumps({"backend": jax.default_backend(),
                  "platforms": sorted({d.platform for d in jax.devices()}),
                  "array_on": sorted(str(d.platform) for d in x.devices())}),
      flush=True)
time.sleep(120)
'''


def _load_placement():
  path = os.path.join(_HERE, os.pardir, 'launchers', 'placement.py')
  spec = importlib.util.spec_from_file_location('placement', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _gpu_memory_by_pid() -> Dict[int, int]:
  """MiB of GPU memory each process holds, as the driver reports it."""
  out = subprocess.run(
      ['nvidia-smi', '--query-compute-apps=pid,used_memory',
       '--format=csv,noheader,nounits'],
      check=True, capture_output=True, text=True).stdout
  rows = [line.split(',') for line in out.strip().splitlines() if line]
  return {int(pid): int(mib) for pid, mib in rows}


def check(learner_device: str) -> List[Dict[str, object]]:
  """One record per node group: its devices and the GPU memory it holds."""
  placement = _load_placement()
  groups = ('learner',) + tuple(placement.CPU_GROUPS)
  children = {}
  for group in groups:
    env = dict(os.environ)
    env.update(placement.node_environment(
        group, learner_device, learner_threads=4, actor_threads=1,
        actor_niceness=0))
    children[group] = subprocess.Popen(
        [sys.executable, '-c', _CHILD], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
  records, reports = [], {}
  try:
    for group, child in children.items():
      reports[group] = json.loads(child.stdout.readline() or '{}')
    time.sleep(1.0)  # the driver's view lags an allocation a little
    memory = _gpu_memory_by_pid()
    for group, child in children.items():
      records.append(dict(reports[group], group=group,
                          learner_device=learner_device,
                          gpu_memory_mib=memory.get(child.pid, 0)))
  finally:
    for child in children.values():
      child.kill()
      _, err = child.communicate()
      if child.returncode != -9:  # it died before it was killed: say why
        print(err[-2000:], file=sys.stderr)
  return records


def main() -> int:
  placement = _load_placement()
  if not placement.cuda_available():
    print('gpu_placement: JAX has no CUDA plugin here; run it on a GPU '
          'machine with jax[cuda12] (or cuda13) installed')
    return 2
  records, failures = [], []
  for learner_device in ('auto', 'gpu', 'cpu'):
    for record in check(learner_device):
      records.append(record)
      print(json.dumps(record))
      on_gpu = record.get('array_on') in (['gpu'], ['cuda'])
      wants_gpu = record['group'] == 'learner' and learner_device != 'cpu'
      if on_gpu != wants_gpu or (record['gpu_memory_mib'] > 0) != wants_gpu:
        failures.append(record)
  result = {
      'records': records, 'failures': failures,
      'cuda_available': placement.cuda_available(),
      'nvidia_smi': subprocess.run(
          ['nvidia-smi', '--query-gpu=name,driver_version,memory.total',
           '--format=csv,noheader'], capture_output=True, text=True
      ).stdout.strip(),
      'python': sys.version.split()[0],
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'load_average': os.getloadavg()}
  out = os.environ.get('OUT') or os.path.join(_HERE, 'results')
  with open(os.path.join(out, 'gpu_placement.json'), 'w') as f:
    json.dump(result, f, indent=1)
  print('cuda_available:', result['cuda_available'], 'failures:',
        len(failures))
  return 1 if failures else 0


if __name__ == '__main__':
  sys.exit(main())
