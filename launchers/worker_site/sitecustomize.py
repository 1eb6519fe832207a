"""Start-up hook of every `local_mp` worker interpreter of a PAC run.

Launchpad starts each worker with its own entry script, which imports
TensorFlow before it unpickles our node. TensorFlow Probability 0.25 then
refuses to load (it wants TF >= 2.18 once TF is loaded; loaded first, its JAX
substrate works with TF 2.8), so Acme's JAX modules and our agent would fail.
`launchers.run` puts this folder on the workers' PYTHONPATH; Python imports
`sitecustomize` at start-up, before the entry script runs.
"""

import agents  # noqa: F401  (imports TFP's JAX substrate, then the Acme compat)

import os as _os

# Lower CPU priority, for workers that should yield to the learner.
if _os.environ.get('PAC_NICE', '0') != '0':
  _os.nice(int(_os.environ['PAC_NICE']))
