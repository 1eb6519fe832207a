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

import lazy_exports

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

__getattr__, __dir__ = lazy_exports.attach(__name__, _EXPORTS)
