"""Keeps a local run's servers on loopback by giving it a private network.

Reverb and Courier (Launchpad's RPC) bind `[::]:port`, every interface, and
neither library lets the caller choose the address (it is compiled in). A local
run therefore enters a new network namespace before it starts any worker: the
namespace has only a loopback interface, every worker process inherits it, so
nothing the run serves is reachable from another host while the workers still
reach each other on `localhost`.
"""

import ctypes
import fcntl
import os
import socket
import struct

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_isolated = False


def isolate_network() -> str:
  """Moves this process (and its future children) into a loopback-only netns.

  Must be called from the main thread before any worker is started. Returns ''
  on success (or if this process already isolated itself), or the reason it
  could not (then nothing changed).
  """
  global _isolated
  if _isolated:
    return ''
  libc = ctypes.CDLL(None, use_errno=True)
  if libc.unshare(_CLONE_NEWNET) != 0:
    return (f'unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())} '
            '(needs root or CAP_SYS_ADMIN)')
  # A new namespace's loopback starts down; bring it up.
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    request = struct.pack('16sH14s', b'lo', 0, b'')
    flags = struct.unpack('16sH14s', fcntl.ioctl(sock, _SIOCGIFFLAGS,
                                                 request))[1]
    fcntl.ioctl(sock, _SIOCSIFFLAGS,
                struct.pack('16sH14s', b'lo', flags | _IFF_UP, b''))
  _isolated = True
  return ''


def interfaces() -> list:
  """Names of the network interfaces this process can see."""
  return [name for _, name in socket.if_nameindex()]
