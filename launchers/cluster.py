"""Runs a PAC program on several hosts of a plain cluster (SSH, Slurm, ...).

Launchpad 0.5.2 launches on one host (`local_mp`: every address is
`localhost:<port>`) or on Vertex AI; this is the launch for machines you
reach with a command. The same `make_program` program is launched:

1. A host list (`read_hosts`) says which node groups run on which host and
   the host's address on the cluster network. A group on several hosts has
   its nodes dealt over them in turn (actor 0 on the first, actor 1 on the
   second, ...).
2. Every node's server address is bound to `<host address>:<port>`, ports
   counted from `--cluster_port` on each host, so nodes on other hosts reach
   it; its servers listen on that address only (`launchers.binding`).
3. Each host's node functions are serialised, as `local_mp` does, into the
   run directory (`cluster/<host>/`), with a manifest of the host's commands.
4. The remote-exec command (`ssh {host} {command}` by default) starts
   `python -m launchers.cluster_host --manifest=...` on every host; it runs and
   supervises that host's nodes (actors and the evaluator restart when they
   die) and stops them when the run's stop file appears.

The hosts must see the project, its venv and the run directory (datasets
too) at the same paths: a shared filesystem, as on most Slurm clusters.
The controller's `lp.stop()` writes the stop file; so does this launcher on
Ctrl-C or when a host that runs more than actors is lost. A lost host that
runs only actors (or the evaluator) is a fault the run survives while
another host still acts.
"""

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from launchpad import address as lp_address
from launchpad import context as lp_context
from launchpad.launch import serialization

from launchers import binding
from launchers import cluster_host
from launchers import config as config_lib
from launchers import launching
from launchers import nodes
from launchers import placement
from launchers import program as program_lib
from launchers import supervision

DEFAULT_REMOTE_EXEC = 'ssh {host} {command}'
DEFAULT_PORT = 23000
GROUPS = ('learner',) + placement.CPU_GROUPS
CLUSTER_DIR = 'cluster'
STOP_FILE = os.path.join(CLUSTER_DIR, 'stop')
# Environment variables passed on to every host (ssh does not forward them).
_FORWARDED = ('MUJOCO_GL', 'PYOPENGL_PLATFORM', 'TF_CPP_MIN_LOG_LEVEL',
              'PYTHONWARNINGS')
_FORWARDED_PREFIX = 'PAC_'
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ENTRY = os.path.join(os.path.dirname(lp_context.__file__), 'nodes', 'python',
                      'process_entry.py')


@dataclasses.dataclass(frozen=True)
class Host:
  """One machine of the cluster.

  Attributes:
    name: how the remote-exec command reaches it (`{host}`: an ssh name).
    address: its IPv4 address on the cluster network; its servers listen
      there only, and the other hosts call them there.
    groups: the node groups it runs.
  """
  name: str
  address: str
  groups: Tuple[str, ...]

  @property
  def restartable_only(self) -> bool:
    """Whether it runs nothing the run cannot lose (actors, the evaluator)."""
    return all(group in supervision.RESTARTABLE for group in self.groups)


@dataclasses.dataclass(frozen=True)
class Options:
  """How to launch on the cluster (the `--hosts`, `--remote_exec` and
  `--cluster_port` flags)."""
  hosts_file: str
  remote_exec: str = DEFAULT_REMOTE_EXEC
  base_port: int = DEFAULT_PORT


def read_hosts(path: str) -> List[Host]:
  """The host list: one line per host, `<name> <address> <group>...`.

  `#` starts a comment. Raises RunConfigError naming the file and line of
  anything wrong (a malformed line, an address that is not IPv4, a name or
  address given twice, an unknown group).
  """
  if not os.path.isfile(path):
    raise config_lib.RunConfigError(
        f'host list {path} not found; write one line per host: '
        '<name> <cluster address> <node groups...>')
  hosts = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      fields = line.split('#', 1)[0].split()
      if not fields:
        continue
      where = f'{path}:{number}'
      if len(fields) < 3:
        raise config_lib.RunConfigError(
            f'{where}: expected <name> <cluster address> <node groups...>, '
            f'got {line.strip()!r}')
      name, address, groups = fields[0], fields[1], tuple(fields[2:])
      try:
        binding.check_address(address)
      except config_lib.RunConfigError as e:
        raise config_lib.RunConfigError(f'{where}: {e}') from None
      unknown = [g for g in groups if g not in GROUPS]
      if unknown:
        raise config_lib.RunConfigError(
            f'{where}: unknown node group {unknown[0]!r}; the groups are '
            f'{", ".join(GROUPS)}')
      for other in hosts:
        if name == other.name or address == other.address:
          raise config_lib.RunConfigError(
              f'{where}: host {name} {address} repeats the name or address '
              f'of host {other.name} {other.address}')
      hosts.append(Host(name, address, groups))
  if not hosts:
    raise config_lib.RunConfigError(f'host list {path} names no host')
  return hosts


def assign(group_sizes: Dict[str, int], hosts: Sequence[Host],
           hosts_file: str = 'the host list') -> Dict[Tuple[str, int], Host]:
  """The host of every node, `(group, index) -> Host`: a group's nodes are
  dealt in turn over the hosts that list it. Raises RunConfigError for a
  group no host runs."""
  placed = {}
  for group, size in group_sizes.items():
    candidates = [host for host in hosts if group in host.groups]
    if not candidates:
      raise config_lib.RunConfigError(
          f'no host runs the {group} nodes of this run: add {group} to a '
          f'host in {hosts_file}')
    for index in range(size):
      placed[(group, index)] = candidates[index % len(candidates)]
  return placed


class FixedAddress(lp_address.AbstractAddressBuilder):
  """`<host address>:<port>`, the same for the node and its callers."""

  def __init__(self, address: str):
    self._address = address

  def build(self) -> str:
    return self._address


class StopFile:
  """The program stopper of a cluster run: `lp.stop()` writes the stop
  file, which every host's launcher watches (Launchpad's own stopper
  signals its launcher's process id, which means nothing on another host)."""

  def __init__(self, path: str):
    self._path = path

  def __call__(self, mark_as_completed: bool = False):
    del mark_as_completed  # Launchpad's stoppers take it; it changes nothing.
    request_stop(self._path)


def request_stop(path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(f'{time.time()}\n')


def remote_command(template: str, host: Host, command: str) -> List[str]:
  """The argv that runs shell `command` on `host` by the remote-exec
  template (`{host}` is the host's name, `{command}` the command as one
  argument; without `{command}` it is appended)."""
  if '{host}' not in template:
    raise config_lib.RunConfigError(
        f'--remote_exec={template!r} has no {{host}}; e.g. '
        f'{DEFAULT_REMOTE_EXEC!r}')
  argv = [part.replace('{host}', host.name)
          for part in shlex.split(template)]
  if '{command}' not in argv:
    argv.append('{command}')
  return [command if part == '{command}' else part for part in argv]


def plan(program, config: config_lib.RunConfig, hosts: Sequence[Host],
         options: Options) -> Dict[str, dict]:
  """Places and binds the program's nodes; returns each host's manifest.

  A manifest lists the host's commands (label, argv, environment), its
  servers' addresses and what its launcher needs (run directory, stop file,
  restarts). The node
  functions are written to `<run_dir>/cluster/<host>/<group>.pkl`.
  """
  placed = assign({group: len(group_nodes)
                   for group, group_nodes in program.groups.items()},
                  hosts, options.hosts_file)
  stop_path = config.path(STOP_FILE)
  for group_nodes in program.groups.values():
    for node in group_nodes:
      # Launchpad's local_mp context, with a stopper every host can see.
      node._launch_context.initialize(  # pylint: disable=protected-access
          lp_context.LaunchType.LOCAL_MULTI_PROCESSING, None,
          StopFile(stop_path))
  for label, group_nodes in program.groups.items():
    for node in group_nodes:
      for handle in node.input_handles:
        handle.connect(node, label)
  next_port = {host.name: options.base_port for host in hosts}
  servers = {host.name: {} for host in hosts}  # label -> its address.
  for group, group_nodes in program.groups.items():
    for index, node in enumerate(group_nodes):
      host = placed[(group, index)]
      for address in node.addresses:
        value = f'{host.address}:{next_port[host.name]}'
        address.bind(FixedAddress(value))
        servers[host.name][f'{group}/{index}'] = value
        next_port[host.name] += 1
  manifests = {}
  for host in hosts:
    directory = config.path(CLUSTER_DIR, host.name)
    os.makedirs(directory, exist_ok=True)
    commands = []
    for group, group_nodes in program.groups.items():
      mine = [(index, node) for index, node in enumerate(group_nodes)
              if placed[(group, index)] is host]
      if not mine:
        continue
      data_file = os.path.join(directory, f'{group}.pkl')
      serialization.serialize_functions(data_file, group,
                                        [node.function for _, node in mine])
      env = placement.node_environment(
          group, config.learner_device, config.learner_cpu_threads,
          config.actor_cpu_threads, config.actor_niceness)
      env.update(binding.environment(host.address))
      for task_id, (index, _) in enumerate(mine):
        commands.append({
            'label': f'{group}/{index}',
            'argv': [sys.executable, _ENTRY, '--data_file', data_file,
                     '--lp_task_id', str(task_id)],
            'env': env})
    manifests[host.name] = {
        'host': host.name, 'address': host.address,
        'run_dir': os.path.abspath(config.run_dir),
        'log_dir': os.path.abspath(config.path('logs', 'nodes')),
        'stop_file': os.path.abspath(stop_path),
        'max_restarts': config.max_restarts,
        'servers': servers[host.name],
        'environment': _forwarded_environment(),
        'commands': commands}
  return manifests


def _forwarded_environment() -> Dict[str, str]:
  return {name: value for name, value in os.environ.items()
          if name in _FORWARDED or name.startswith(_FORWARDED_PREFIX)}


def manifest_path(run_dir: str, host: str) -> str:
  """Where the launch writes a host's manifest."""
  return os.path.abspath(os.path.join(run_dir, CLUSTER_DIR, host,
                                      'manifest.json'))


def launch(config: config_lib.RunConfig, options: Options) -> None:
  """Runs the program on the cluster to its end; raises as
  `launching.launch` does (NodeFailed, Interrupted, RunConfigError)."""
  launching.check_startup_hook()
  hosts = read_hosts(options.hosts_file)
  remote_command(options.remote_exec, hosts[0], '')  # Checks the template.
  binding.library()
  program = program_lib.make_program(config, *launching.prepare(config))
  launching.clear_previous(config)
  for host in hosts:
    stale = cluster_host.result_path(config.run_dir, host.name)
    if os.path.exists(stale):
      os.remove(stale)
  stop_path = config.path(STOP_FILE)
  if os.path.exists(stop_path):
    os.remove(stop_path)
  manifests = plan(program, config, hosts, options)
  print(f'[run] {config.mode} on {config.task}: {len(hosts)} hosts, nodes '
        f'log to {config.path("logs", "nodes")}', flush=True)
  running = {}
  for host in hosts:
    path = manifest_path(config.run_dir, host.name)
    with open(path + '.tmp', 'w') as f:
      json.dump(manifests[host.name], f, indent=1)
    os.replace(path + '.tmp', path)
    groups = ' '.join(sorted({c['label'] for c in
                              manifests[host.name]['commands']}))
    print(f'[cluster] {host.name} ({host.address}): {groups or "nothing"}',
          flush=True)
    command = (f'cd {shlex.quote(_ROOT)} && exec {shlex.quote(sys.executable)}'
               f' -m launchers.cluster_host --manifest={shlex.quote(path)}')
    log_path = config.path('logs', 'hosts', host.name)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, 'a') as log:
      running[host.name] = subprocess.Popen(
          remote_command(options.remote_exec, host, command),
          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
          start_new_session=True)  # Ctrl-C reaches them by the stop file.
  received = launching.record_signals(then=lambda: request_stop(stop_path))
  done = threading.Event()
  follower = threading.Thread(
      target=launching.follow,
      args=(config.path(nodes.STATUS_FILE), done), daemon=True)
  follower.start()
  try:
    failure = _supervise(config, hosts, running, stop_path)
  finally:
    done.set()
    follower.join()
  if os.path.exists(config.path(nodes.FINISHED_FILE)):
    return
  if received:
    unclean = [entry for host in hosts for entry in
               _read_result(config.run_dir, host.name).get('unclean', [])]
    raise launching.Interrupted(received[0], config.run_dir, unclean)
  raise launching.NodeFailed(
      failure or 'every host ended before the run finished', config.run_dir)


def _supervise(config: config_lib.RunConfig, hosts: Sequence[Host],
               running: Dict[str, subprocess.Popen], stop_path: str
               ) -> Optional[str]:
  """Waits for every host's launcher to end; returns why the run failed
  (None if it did not). A lost host that ran only restartable nodes is
  reported and its nodes marked gone; any other lost host stops the run."""
  by_name = {host.name: host for host in hosts}
  acting = {host.name for host in hosts if 'actor' in host.groups}
  failure = None
  while running:
    for name, process in list(running.items()):
      code = process.poll()
      if code is None:
        continue
      del running[name]
      if os.path.exists(stop_path):
        continue  # Ended with the run.
      result = _read_result(config.run_dir, name)
      what = _describe(name, code, result)
      host = by_name[name]
      if host.restartable_only:
        acting.discard(name)
        gone = _mark_gone(config.run_dir, name, what)
        left = sum(1 for other in acting if other in running)
        _report(config, f'[fault] {what}; its nodes '
                         f'{", ".join(gone) or "(none)"} are gone; '
                         f'{left} acting hosts left')
        if 'actor' in host.groups and not left:
          failure = f'{what}, and no host is left to act'
          request_stop(stop_path)
      else:
        failure = what
        _report(config, f'[fault] {what}; the other hosts stop '
                         'their nodes')
        request_stop(stop_path)
    time.sleep(0.2)
  return failure


def _report(config: config_lib.RunConfig, line: str) -> None:
  """A line in the run's status file (the follower prints it)."""
  with open(config.path(nodes.STATUS_FILE), 'a') as f:
    f.write(line + '\n')


def _read_result(run_dir: str, host: str) -> dict:
  path = cluster_host.result_path(run_dir, host)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _describe(host: str, code: int, result: dict) -> str:
  """One phrase for how a host's launcher ended."""
  if result.get('failed'):
    return f'node {", ".join(result["failed"])} died on host {host}'
  if result.get('gave_up'):
    return f'on host {host}, {result["gave_up"]}'
  if code < 0:
    return f'host {host} was lost (its launcher killed by ' \
           f'{signal.Signals(-code).name})'
  return f'host {host} was lost (its launcher exited with status {code})'


def _mark_gone(run_dir: str, host: str, why: str) -> List[str]:
  """Marks the nodes in a lost host's workers file gone (the controller then
  skips them); returns their labels."""
  path = os.path.join(run_dir, cluster_host.workers_file(host))
  if not os.path.exists(path):
    return []
  with open(path) as f:
    workers = json.load(f)
  for record in workers.values():
    if record.get('state') != 'gone':
      record['state'] = 'gone'
      record.setdefault('deaths', []).append(
          {'time': time.strftime('%Y-%m-%d %H:%M:%S'), 'exit': why})
  supervision.write_workers(path, workers)
  return sorted(workers)
