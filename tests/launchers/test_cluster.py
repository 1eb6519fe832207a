"""The cluster launch: host lists, placement and binding of a real program, a
host's launcher on real processes, and a whole run on emulated hosts
(network namespaces joined by a bridge)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

import environments
from launchers import binding
from launchers import cluster
from launchers import config as config_lib
from launchers import program as program_lib
from tests import processes
from tests.launchers import emulated_hosts
from tests.launchers import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TASK = 'cartpole_swingup'


def _hosts_file(tmp_path, text):
  path = tmp_path / 'hosts.txt'
  path.write_text(text)
  return str(path)


def test_read_hosts_reads_names_addresses_and_groups(tmp_path):
  path = _hosts_file(tmp_path, '# the learner host\n'
                     'gpu1 10.0.0.1 replay learner  # and more\n\n'
                     'cpu1 10.0.0.2 actor evaluator\n')
  hosts = cluster.read_hosts(path)
  assert hosts == [cluster.Host('gpu1', '10.0.0.1', ('replay', 'learner')),
                   cluster.Host('cpu1', '10.0.0.2', ('actor', 'evaluator'))]
  assert not hosts[0].restartable_only and hosts[1].restartable_only


@pytest.mark.parametrize('text, message', [
    ('a 10.0.0.1\n', 'hosts.txt:1: expected <name> <cluster address>'),
    ('a 10.0.0.1 learner\nb 10.0.0.300 actor\n',
     'hosts.txt:2: \'10.0.0.300\' is not an IPv4 address'),
    ('a 10.0.0.1 learner actors\n', 'unknown node group \'actors\''),
    ('a 10.0.0.1 learner\na 10.0.0.2 actor\n', 'repeats the name'),
    ('a 10.0.0.1 learner\nb 10.0.0.1 actor\n', 'repeats the name or address'),
    ('# nothing\n', 'names no host'),
])
def test_read_hosts_names_what_is_wrong(tmp_path, text, message):
  with pytest.raises(config_lib.RunConfigError, match=message):
    cluster.read_hosts(_hosts_file(tmp_path, text))
  with pytest.raises(config_lib.RunConfigError, match='not found'):
    cluster.read_hosts(str(tmp_path / 'missing.txt'))


def test_assign_deals_a_group_over_its_hosts_in_turn():
  a = cluster.Host('a', '10.0.0.1', ('learner', 'actor'))
  b = cluster.Host('b', '10.0.0.2', ('actor',))
  placed = cluster.assign({'learner': 1, 'actor': 5}, [a, b])
  assert placed[('learner', 0)] is a
  assert [placed[('actor', i)].name for i in range(5)] == [
      'a', 'b', 'a', 'b', 'a']
  with pytest.raises(config_lib.RunConfigError,
                     match='no host runs the replay nodes.*add replay'):
    cluster.assign({'replay': 1}, [a, b], 'hosts.txt')


def test_remote_command_puts_host_and_command_in_place():
  host = cluster.Host('node7', '10.0.0.7', ('actor',))
  assert cluster.remote_command('ssh {host} {command}', host, 'cd /x && ls') == [
      'ssh', 'node7', 'cd /x && ls']
  assert cluster.remote_command('ssh -p 2222 {host}', host, 'ls') == [
      'ssh', '-p', '2222', 'node7', 'ls']
  assert cluster.remote_command('ip netns exec {host} sh -c {command}', host,
                                'a b') == [
                                    'ip', 'netns', 'exec', 'node7', 'sh', '-c',
                                    'a b']
  with pytest.raises(config_lib.RunConfigError, match='no {host}'):
    cluster.remote_command('ssh {command}', host, 'ls')


def test_plan_binds_every_server_to_its_host_and_writes_each_hosts_part(
    tmp_path, cartpole_dataset):
  config = config_lib.RunConfig(
      mode='finetune', task=TASK, run_dir=str(tmp_path / 'run'),
      dataset=cartpole_dataset, agent=helpers.small_agent(online_fraction=0.5),
      num_actors=3)
  spec, sizes = config_lib.preflight(config)
  program = program_lib.make_program(config, spec, sizes)
  a = cluster.Host('a', '10.0.0.1', ('replay', 'counter', 'dataset_loader',
                                     'learner', 'evaluator', 'controller'))
  b = cluster.Host('b', '10.0.0.2', ('actor',))
  c = cluster.Host('c', '10.0.0.3', ('actor',))
  manifests = cluster.plan(program, config, [a, b, c],
                           cluster.Options('hosts.txt', base_port=30000))
  # Every server is on its host's address, ports counted per host.
  assert manifests['a']['servers'] == {
      'replay/0': '10.0.0.1:30000', 'counter/0': '10.0.0.1:30001',
      'dataset_loader/0': '10.0.0.1:30002', 'learner/0': '10.0.0.1:30003',
      'evaluator/0': '10.0.0.1:30004', 'controller/0': '10.0.0.1:30005'}
  assert manifests['b']['servers'] == {'actor/0': '10.0.0.2:30000',
                                       'actor/2': '10.0.0.2:30001'}
  assert manifests['c']['servers'] == {'actor/1': '10.0.0.3:30000'}
  # The callers' handles resolve to the same addresses.
  replay = program.groups['replay'][0]
  assert replay.addresses[0].resolve() == '10.0.0.1:30000'
  labels = {name: [c['label'] for c in m['commands']]
            for name, m in manifests.items()}
  assert labels == {'a': ['replay/0', 'counter/0', 'dataset_loader/0',
                          'learner/0', 'evaluator/0', 'controller/0'],
                    'b': ['actor/0', 'actor/2'], 'c': ['actor/1']}
  for name, manifest in manifests.items():
    for command in manifest['commands']:
      env = command['env']
      assert env[binding.ADDRESS_VARIABLE] == {
          'a': '10.0.0.1', 'b': '10.0.0.2', 'c': '10.0.0.3'}[name]
      assert env['LD_PRELOAD'].split()[0] == binding.LIBRARY
      data_file = command['argv'][command['argv'].index('--data_file') + 1]
      assert data_file.startswith(config.path('cluster', name))
      assert os.path.getsize(data_file) > 0
      # Only the learner may see an accelerator.
      if not command['label'].startswith('learner'):
        assert env['CUDA_VISIBLE_DEVICES'] == ''
  # actor/2 is the second function in b's actor file.
  argv = manifests['b']['commands'][1]['argv']
  assert argv[argv.index('--lp_task_id') + 1] == '1'
  # lp.stop() in any node writes the run's stop file.
  stopper = program.groups['controller'][0]._launch_context.program_stopper  # pylint: disable=protected-access
  stopper()
  assert os.path.exists(config.path(cluster.STOP_FILE))


def _host_launcher(tmp_path, commands) -> subprocess.Popen:
  """`python -m launchers.cluster_host` on a manifest of `commands`."""
  run_dir = tmp_path / 'run'
  (run_dir / 'cluster' / 'h').mkdir(parents=True)
  manifest = {'host': 'h', 'address': '127.0.0.1', 'run_dir': str(run_dir),
              'log_dir': str(run_dir / 'logs' / 'nodes'),
              'stop_file': str(run_dir / 'cluster' / 'stop'),
              'max_restarts': 1, 'environment': {}, 'servers': {},
              'commands': [{'label': label,
                            'argv': [sys.executable, '-c', code], 'env': {}}
                           for label, code in commands]}
  path = run_dir / 'cluster' / 'h' / 'manifest.json'
  path.write_text(json.dumps(manifest))
  return subprocess.Popen(
      [sys.executable, '-m', 'launchers.cluster_host', f'--manifest={path}'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _result(tmp_path) -> dict:
  return json.loads((tmp_path / 'run' / 'cluster' / 'h' /
                     'result.json').read_text())


def test_a_hosts_launcher_stops_its_nodes_when_the_stop_file_appears(
    tmp_path):
  sleeper = 'import time; time.sleep(120)'
  launcher = _host_launcher(tmp_path, [('learner/0', sleeper),
                                       ('actor/3', sleeper)])
  workers_file = tmp_path / 'run' / 'workers.h.json'
  deadline = time.time() + 60
  while not workers_file.exists():
    assert time.time() < deadline and launcher.poll() is None
    time.sleep(0.2)
  pids = [w['pid'] for w in json.loads(workers_file.read_text()).values()]
  (tmp_path / 'run' / 'cluster' / 'stop').write_text('stop\n')
  output, _ = launcher.communicate(timeout=60)
  assert launcher.returncode == 0, output
  assert _result(tmp_path) ['failed'] == []
  for pid in pids:  # Its nodes are gone too.
    assert not os.path.exists(f'/proc/{pid}') or 'Z' in _read(
        f'/proc/{pid}/stat').split()[2]


def test_a_hosts_launcher_fails_when_a_node_the_run_needs_dies(tmp_path):
  launcher = _host_launcher(tmp_path, [
      ('learner/0', 'import time, sys; time.sleep(1); sys.exit(3)'),
      ('actor/0', 'import time; time.sleep(120)')])
  output, _ = launcher.communicate(timeout=120)
  assert launcher.returncode == 1, output
  assert _result(tmp_path)['failed'] == ['learner/0 (exit 3)']


def test_a_hosts_launcher_refuses_a_missing_manifest(tmp_path):
  done = subprocess.run(
      [sys.executable, '-m', 'launchers.cluster_host',
       f'--manifest={tmp_path}/none.json'], cwd=ROOT, capture_output=True,
      text=True, timeout=60)
  assert done.returncode == 2
  assert done.stderr.strip().startswith('error: cannot read manifest')


def test_the_cli_refuses_bad_cluster_input_in_one_line(tmp_path,
                                                       cartpole_dataset):
  hosts = _hosts_file(tmp_path, 'a 10.0.0.1 replay counter learner '
                      'dataset_loader evaluator controller\n')
  base = [sys.executable, '-m', 'launchers.run', '--mode=offline',
          f'--task={TASK}', f'--dataset={cartpole_dataset}',
          f'--run_dir={tmp_path / "run"}']
  cases = [
      (['--lp_launch_type=cluster'], 'needs --hosts'),
      ([f'--hosts={hosts}'], '--hosts is for --lp_launch_type=cluster'),
      (['--lp_launch_type=cluster', f'--hosts={hosts}',
        '--cluster_port=70000'], 'is not a port'),
  ]
  for extra, message in cases:
    done = subprocess.run(base + extra, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, (extra, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], (extra, done.stderr)


def _connects(hosts, namespace, address, port) -> bool:
  code = (f'import socket; s = socket.socket(); s.settimeout(3); '
          f'print(s.connect_ex(("{address}", {port})) == 0)')
  out = hosts.run(namespace, [sys.executable, '-c', code]).stdout
  return out.strip() == 'True'


def _read(path):
  with open(path) as f:
    return f.read()


def _wait_for(predicate, process, timeout, what):
  deadline = time.time() + timeout
  while not predicate():
    if process.poll() is not None:
      raise AssertionError(f'run exited before {what}:\n'
                           f'{process.stdout.read()}')
    if time.time() > deadline:
      raise TimeoutError(what)
    time.sleep(0.5)


@pytest.mark.integration
@pytest.mark.skipif(bool(emulated_hosts.available()),
                    reason=emulated_hosts.available() or 'available')
def test_a_run_on_three_emulated_hosts_survives_losing_an_actor_host(
    tmp_path, cartpole_dataset):
  """Replay, learner and the rest on host a, one actor each on b and c:
  the actors' data crosses the emulated links, the servers answer on the
  cluster address only, and the run finishes after host c is killed."""
  token = uuid.uuid4().hex
  run_dir = str(tmp_path / 'run')
  with emulated_hosts.EmulatedHosts(3) as hosts:
    a, b, c = hosts.names
    hosts_file = _hosts_file(
        tmp_path, f'{a} {hosts.addresses[a]} replay counter dataset_loader '
        f'learner evaluator controller\n'
        f'{b} {hosts.addresses[b]} actor\n{c} {hosts.addresses[c]} actor\n')

    def launch(steps):
      return subprocess.Popen(
          [sys.executable, '-m', 'launchers.run', '--mode=finetune',
           f'--task={TASK}', f'--dataset={cartpole_dataset}',
           f'--run_dir={run_dir}', '--batch_size=16', '--eval_episodes=1',
           '--num_actors=2', f'--max_learner_steps={steps}',
           '--eval_every_steps=150', '--learner_device=cpu',
           '--checkpoint_every_s=1', '--lp_launch_type=cluster',
           f'--hosts={hosts_file}',
           '--remote_exec=ip netns exec {host} sh -c {command}'],
          cwd=ROOT, env=dict(os.environ, **{processes.TOKEN_VARIABLE: token}),
          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
          start_new_session=True)

    process = launch(450)
    status = os.path.join(run_dir, 'status.log')
    # 600 s: with a cold compilation cache and the other core busy the
    # learner's first compile alone took 138 s here, and the run's eight
    # processes share what is left.
    _wait_for(lambda: os.path.exists(status) and '[eval]' in _read(status),
              process, 600, 'the first evaluation')
    manifest = json.loads(_read(cluster.manifest_path(run_dir, a)))
    replay = manifest['servers']['replay/0']
    address, port = replay.split(':')
    assert address == hosts.addresses[a]
    # Every server of host a listens on its cluster address and no other.
    # (The dataset loader's server is gone once it has loaded the data.)
    listening = hosts.run(a, ['ss', '-Hltn']).stdout.splitlines()
    local = {line.split()[3] for line in listening}
    assert f'[::ffff:{address}]:{port}' in local, listening
    assert local <= {'[::ffff:{}]:{}'.format(*server.split(':'))
                     for server in manifest['servers'].values()}, listening
    assert _connects(hosts, b, address, port)
    assert not _connects(hosts, hosts.outside, hosts.outside_address, port)
    assert not _connects(hosts, a, '127.0.0.1', port)
    # Both actor hosts hold connections to the replay server, and have sent
    # it their episodes over their links.
    peers = hosts.run(a, ['ss', '-Htn', 'state', 'established', '(',
                          'sport', '=', f':{port}', ')']).stdout
    assert hosts.addresses[b] in peers and hosts.addresses[c] in peers, peers
    for host in (b, c):
      assert hosts.interface_bytes(host)['sent'] > 50_000
    # Host c is lost: every process in it is killed.
    assert hosts.kill(c)
    sent_at_loss = hosts.interface_bytes(b)['sent']
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert (f'[fault] host {c} was lost (its launcher killed by SIGKILL); '
            'its nodes actor/1 are gone; 1 acting hosts left') in output, output
    assert '[eval] learner_steps=450' in output, output
    assert 'Traceback' not in output, output
    # Host b went on acting, and its data kept arriving.
    assert hosts.interface_bytes(b)['sent'] > sent_at_loss + 50_000
    results = helpers.results(run_dir)
    assert results[-1]['online_inserted'] > results[0]['online_inserted'] > 0
    workers = json.loads(_read(os.path.join(run_dir, f'workers.{c}.json')))
    assert workers['actor/1']['state'] == 'gone'
    assert 'actor/1 died 1 time(s)' in _read(os.path.join(run_dir,
                                                          'results.md'))
    # Rerun on the three hosts: it resumes; Ctrl-C stops every host's nodes,
    # the learner, replay and counter checkpointing, in one line and status
    # 130. (A stateless node stuck on a call to the stopped learner would be
    # killed at the notice's end and named; the learner, replay and counter
    # must have checkpointed either way.)
    process = launch(100_000)
    _wait_for(lambda: '[learner] resumed at step' in _read(status), process,
              300, 'the learner resumed')
    start = time.time()
    os.kill(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert time.time() - start < 60
    line = output.strip().splitlines()[-1]
    assert line.startswith('[run] stopped by SIGINT; ') and (
        'every node checkpointed' in line or
        'the learner, replay and counter checkpointed' in line), output
    assert 'Traceback' not in output, output
    stopped_path = os.path.join(run_dir, 'checkpoints', 'learner_stopped.json')
    stopped = json.loads(_read(stopped_path))
    assert stopped['step'] >= 450
    # Reverb's final checkpoint, after the learner's last one: a pair.
    saved_path = os.path.join(run_dir, 'checkpoints', 'replay_saved.json')
    assert json.loads(_read(saved_path))['learner_step'] == stopped['step']
    assert os.path.getmtime(saved_path) >= os.path.getmtime(stopped_path)
  time.sleep(1.0)
  assert processes.processes_with(token) == []
  listed = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                          text=True).stdout
  assert a not in listed and c not in listed
