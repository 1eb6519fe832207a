"""Perceiver-Actor-Critic (PAC) for Acme: the agent's public names.

  from agents.pac import PACBuilder, PACConfig, make_networks

  PACConfig, NetworkConfig, ConfigError   config.py: validated settings
  make_networks, PACNetworks               networks.py: Perceiver actor-critic
  PACLearner                               learning.py: the learner
  make_policy                              acting.py: sample / mode / Q-filter
  PACBuilder                               builder.py: Acme ActorLearnerBuilder

The names load on first access (PEP 562), unlike in Acme's agents: the
package itself imports nothing, because `agents` imports `acme_compat` from
it before Acme's JAX modules may load (see agents/__init__.py).
"""

import importlib
from typing import Any, List

_EXPORTS = {
    'ConfigError': 'config',
    'NetworkConfig': 'config',
    'PACConfig': 'config',
    'PACNetworks': 'networks',
    'make_networks': 'networks',
    'PACLearner': 'learning',
    'make_policy': 'acting',
    'PACBuilder': 'builder',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  globals()[name] = value  # Later accesses skip this function.
  return value


def __dir__() -> List[str]:
  return sorted(list(globals()) + __all__)
