"""Hosts of a cluster emulated on one machine: Linux network namespaces.

`EmulatedHosts` makes one namespace per host, each with a loopback and an
`eth0` on a private cluster network (a bridge in a switch namespace of its
own, so the machine's own network is not touched), plus an `outside`
namespace joined to the first host by a second link (`ext0`): an address of
that host that is not on the cluster network. `ip netns exec <host>` is the
remote-exec command. Everything is removed on exit, processes first, even
when the test fails. Needs root and iproute2.
"""

import os
import shutil
import signal
import subprocess
import time
import uuid
from typing import Dict, List, Sequence

CLUSTER_NET = '10.201.0'
OUTSIDE_NET = '10.202.0'


def available() -> str:
  """'' if namespaces can be made here, else why not."""
  if os.geteuid() != 0:
    return 'needs root (network namespaces)'
  if shutil.which('ip') is None:
    return 'needs iproute2 (ip)'
  probe = f'pacprobe{uuid.uuid4().hex[:6]}'
  made = subprocess.run(['ip', 'netns', 'add', probe], capture_output=True,
                        text=True)
  if made.returncode:
    return f'ip netns add failed: {made.stderr.strip()}'
  subprocess.run(['ip', 'netns', 'del', probe], check=False)
  return ''


def _ip(*args: str, namespace: str = '') -> None:
  command = ['ip'] + (['-n', namespace] if namespace else []) + list(args)
  subprocess.run(command, check=True, capture_output=True, text=True)


class EmulatedHosts:
  """Context manager: `hosts[name]` is the cluster address of host `name`.

  Attributes:
    names: the namespaces of the hosts, in order (also their host names).
    addresses: host name -> cluster address (10.201.0.1, .2, ...).
    outside: the namespace outside the cluster network.
    outside_address: the first host's address on the outside link.
  """

  def __init__(self, count: int):
    prefix = f'pac{uuid.uuid4().hex[:5]}'
    self.names = [f'{prefix}{chr(ord("a") + i)}' for i in range(count)]
    self.addresses = {name: f'{CLUSTER_NET}.{i + 1}'
                      for i, name in enumerate(self.names)}
    self._switch = f'{prefix}sw'
    self.outside = f'{prefix}out'
    self.outside_address = f'{OUTSIDE_NET}.1'

  def __enter__(self) -> 'EmulatedHosts':
    try:
      self._build()
    except BaseException:
      self.close()
      raise
    return self

  def __exit__(self, *unused) -> None:
    self.close()

  def _build(self) -> None:
    _ip('netns', 'add', self._switch)
    _ip('link', 'add', 'br0', 'type', 'bridge', namespace=self._switch)
    _ip('link', 'set', 'br0', 'up', namespace=self._switch)
    for i, name in enumerate(self.names):
      _ip('netns', 'add', name)
      _ip('link', 'set', 'lo', 'up', namespace=name)
      port = f'port{i}'
      _ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port,
          'netns', self._switch, namespace=name)
      _ip('link', 'set', port, 'master', 'br0', namespace=self._switch)
      _ip('link', 'set', port, 'up', namespace=self._switch)
      _ip('addr', 'add', f'{self.addresses[name]}/24', 'dev', 'eth0',
          namespace=name)
      _ip('link', 'set', 'eth0', 'up', namespace=name)
    first = self.names[0]
    _ip('netns', 'add', self.outside)
    _ip('link', 'set', 'lo', 'up', namespace=self.outside)
    _ip('link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext0',
        'netns', self.outside, namespace=first)
    _ip('addr', 'add', f'{self.outside_address}/24', 'dev', 'ext0',
        namespace=first)
    _ip('link', 'set', 'ext0', 'up', namespace=first)
    _ip('addr', 'add', f'{OUTSIDE_NET}.2/24', 'dev', 'ext0',
        namespace=self.outside)
    _ip('link', 'set', 'ext0', 'up', namespace=self.outside)

  def pids(self, name: str) -> List[int]:
    """Processes in namespace `name`."""
    found = subprocess.run(['ip', 'netns', 'pids', name], capture_output=True,
                           text=True)
    return [int(pid) for pid in found.stdout.split()]

  def kill(self, name: str) -> List[int]:
    """SIGKILLs every process of host `name` (the host is lost)."""
    killed = self.pids(name)
    for pid in killed:
      try:
        os.kill(pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
    return killed

  def run(self, name: str, command: Sequence[str], **kwargs
          ) -> subprocess.CompletedProcess:
    """Runs `command` in namespace `name`."""
    return subprocess.run(['ip', 'netns', 'exec', name, *command],
                          capture_output=True, text=True, **kwargs)

  def interface_bytes(self, name: str, interface: str = 'eth0'
                      ) -> Dict[str, int]:
    """Bytes received and sent on `interface` of host `name`."""
    text = self.run(name, ['cat', '/proc/net/dev']).stdout
    for line in text.splitlines()[2:]:
      label, values = line.split(':', 1)
      if label.strip() == interface:
        fields = values.split()
        return {'received': int(fields[0]), 'sent': int(fields[8])}
    raise KeyError(interface)

  def close(self) -> None:
    """Kills what still runs in the namespaces, then removes them."""
    namespaces = self.names + [self.outside, self._switch]
    for name in namespaces:
      self.kill(name)
    time.sleep(0.2)
    for name in namespaces:
      subprocess.run(['ip', 'netns', 'del', name], capture_output=True,
                     check=False)
