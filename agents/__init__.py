"""Agents of the PAC project. Importing any of them makes Acme usable on JAX 0.6."""

from agents.pac import acme_compat as _acme_compat

_acme_compat.install()
