"""Keeps a cluster run's servers on the cluster network: one address, not all.

Reverb and Courier listen on every interface and neither lets the caller pick
the address (see bind_address.c). On a cluster, each host's node processes
start with the small library built from bind_address.c preloaded and
`PAC_BIND_ADDRESS` set to the host's cluster address, so every server they
start listens there and nowhere else (not on loopback, not on a public
interface). The servers have no authentication: the cluster network must be
private to the run's hosts.
"""

import ipaddress
import os
import sys
from typing import Dict

from launchers import config as config_lib

ADDRESS_VARIABLE = 'PAC_BIND_ADDRESS'
# Built by `make setup` (gcc) next to the venv's Python packages.
LIBRARY = os.path.join(sys.prefix, 'lib', 'pac_bind.so')


def check_address(address: str) -> str:
  """`address` if it is one IPv4 address, else RunConfigError."""
  try:
    ipaddress.IPv4Address(address)
  except ValueError:
    raise config_lib.RunConfigError(
        f'{address!r} is not an IPv4 address; give each host the IPv4 '
        'address of its cluster interface (e.g. 10.0.0.2)') from None
  return address


def library() -> str:
  """The preload library's path, or RunConfigError if it was not built."""
  if not os.path.exists(LIBRARY):
    raise config_lib.RunConfigError(
        f'{LIBRARY} is missing: it keeps cluster servers off other '
        'interfaces and is built by `make setup` (needs gcc: apt-get install '
        'gcc, then make setup)')
  return LIBRARY


def environment(address: str) -> Dict[str, str]:
  """Environment of a node process whose servers listen on `address` only."""
  preload = os.environ.get('LD_PRELOAD', '')
  return {'LD_PRELOAD': ' '.join(filter(None, [library(), preload])),
          ADDRESS_VARIABLE: check_address(address)}
