"""Every runnable block of the READMEs runs, as a user would run it.

Blocks fenced as ```bash, ```sh or ```python are runnable; output, layouts and
API listings are fenced ```text or left untagged. Each README's runnable
blocks run in order in one scratch directory that stands in for the
repository root (`.venv` is linked there), so a block may use what an earlier
one made; each Python block runs on its own interpreter, as a user pasting it
would. Sizes are shrunk the documented way (README.md, "Tests"): flags appended
to a command (absl and argparse keep the last value of a repeated flag) and
`PAC_EXAMPLE_STEPS` for the Python examples. `_SHRINK` lists every command
the READMEs may contain; a command it does not know fails the test, so a
newly documented command gets run too. After each README, no process of its
runs may be left.
"""

import glob
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from typing import List, Optional, Tuple

import pytest

from tests import processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READMES = sorted(
    os.path.relpath(path, ROOT) for path in
    glob.glob(os.path.join(ROOT, '**', 'README.md'), recursive=True)
    if not os.path.relpath(path, ROOT).startswith(('.', 'data', 'runs')))
RUNNABLE = ('bash', 'sh', 'python')
# The length of the Python examples here (their default is longer).
EXAMPLE_STEPS = '1000'

# (pattern of a command, what it becomes). `{root}` is the repository; the
# replacement keeps the documented command and appends smaller sizes.
_SHRINK: List[Tuple[str, Optional[str]]] = [
    # CI's own command (.ci/run); running it here would recurse.
    (r'make test$', None),
    # `make bench` is exactly the three benchmark commands below (checked by
    # test_make_bench_is_the_documented_benchmarks).
    (r'make bench$', None),
    (r'make run$',
     'make -C {root} run RUN_DIR=$PWD/runs/main RUN_ARGS="--data_dir=$PWD/data '
     '--episodes=3 --offline_steps=16 --finetune_steps=16"'),
    (r'(\.venv/bin/)?python -m environments\.generate .*--out .*',
     '{command} --episodes 3'),
    (r'(\.venv/bin/)?python -m environments\.generate --list-tasks$',
     '{command}'),
    (r'(\.venv/bin/)?python -m environments\.export .*', '{command}'),
    (r'(\.venv/bin/)?python -m environments\.build_suite .*',
     '{command} --tasks=cartpole_swingup --episodes=1 --workers=1'),
    # Several hosts: tests/launchers/test_cluster.py runs this launch on
    # emulated hosts (network namespaces); there is no cluster here.
    (r'\.venv/bin/python -m launchers\.run .*--lp_launch_type=cluster.*',
     None),
    # Google Cloud is out of reach: tests/launchers/test_vertex.py checks the
    # launch up to its submission.
    (r'make vertex-setup', None),
    (r'gcloud .*', None),
    (r'export GOOGLE_CLOUD_BUCKET_NAME=.*', None),
    (r'\.venv/bin/python -m launchers\.run .*--lp_launch_type=vertex_ai.*',
     None),
    (r'\.venv/bin/python -m launchers\.run --mode=offline .*',
     '{command} --max_learner_steps=16 --eval_every_steps=16 '
     '--eval_episodes=1 --batch_size=16'),
    (r'\.venv/bin/python -m launchers\.run --mode=finetune .*',
     '{command} --max_learner_steps=32 --eval_every_steps=16 '
     '--eval_episodes=1 --batch_size=16'),
    (r'\.venv/bin/python -m launchers\.run --mode=selfimprove .*',
     '{command} --rounds=1 --episodes_per_round=1 --steps_per_round=16 '
     '--eval_episodes=1 --batch_size=16'),
    (r'\.venv/bin/python -m benchmarks\.system_throughput\b.*',
     '{command} --dataset_episodes=4 --seconds=1 --rounds=1 '
     '--results_dir=$PWD/results'),
    (r'\.venv/bin/python -m benchmarks\.env_throughput\b.*',
     '{command} --seconds=0.5 --episodes=2 --results_dir=$PWD/results'),
    # The scaling sweep (an hour here): tests/benchmarks/test_scaling.py runs
    # this command on a tiny grid, with its resume and Ctrl-C.
    (r'\.venv/bin/python -m benchmarks\.scaling\b.*', None),
    # The multi-task comparison (~16 min here): tests/benchmarks/
    # test_multitask_sweep.py runs its sweep on a tiny grid.
    (r'\.venv/bin/python -m benchmarks\.multitask\b.*', None),
    # The offline suite table (hours here): tests/benchmarks/
    # test_offline_suite.py runs its sweep on a one-episode suite.
    (r'\.venv/bin/python -m benchmarks\.offline_suite\b.*', None),
    # test_finetune.py fine-tunes a model of that one-episode sweep.
    (r'\.venv/bin/python -m benchmarks\.finetune\b.*', None),
    # The defaults sweep (~3 min a run here): tests/benchmarks/
    # test_defaults_sweep.py runs it on a one-episode dataset.
    (r'\.venv/bin/python -m benchmarks\.defaults_sweep\b.*', None),
    (r'\.venv/bin/python -m benchmarks\.agent_throughput\b.*',
     '{command} --presets=test --abstract_presets= --batch_sizes=test=8 '
     '--steps=8 --repeats=2 --results_dir=$PWD/results'),
]

# What each README's blocks must have made (globs, in the scratch directory).
_MADE = {
    'README.md': [
        'runs/main/finetune/results.md', 'runs/main/eval_return.png',
        'runs/offline/eval.jsonl',
        'runs/ft/eval.jsonl', 'runs/si/results.md',
        'runs/si/episodes/*/dataset.json', 'runs/si_next/eval.jsonl',
        'runs/multitask/results.md',
        'runs/acme_local/logs/learner/logs.csv',
        'runs/acme_local/checkpoints/learner/checkpoint',
        'runs/acme_distributed/logs/learner/logs.csv',
        'runs/acme_distributed/checkpoints/learner/checkpoint',
        'runs/acme_offline/logs/learner/logs.csv'],
    'environments/README.md': ['data/cartpole_swingup_expert/dataset.json',
                               'data/suite/suite.json',
                               'data/suite/cartpole_swingup/medium_replay/'
                               'dataset.json',
                               'data/cartpole_swingup_expert.npz'],
    'benchmarks/README.md': [
        f'results/{name}.{ext}' for ext in ('json', 'png')
        for name in ('system_throughput', 'env_throughput',
                     'agent_throughput')],
}


def blocks(readme: str) -> List[Tuple[str, str]]:
  """(language, text) of every fenced block of `readme`, in order."""
  with open(os.path.join(ROOT, readme)) as f:
    text = f.read()
  return [(m.group(1), m.group(2)) for m in
          re.finditer(r'^```(\w*)\n(.*?)^```', text, re.S | re.M)]


def commands(script: str) -> List[str]:
  """The commands of a shell block: continuations joined, comments and the
  `# ...` tails dropped."""
  joined = re.sub(r'\\\n\s*', '', script)
  found = []
  for line in joined.splitlines():
    line = line.split(' #')[0].strip()
    if line and not line.startswith('#'):
      found.append(line)
  return found


def shrink(command: str) -> Optional[str]:
  """What `command` runs as here (None: not run); KeyError if unknown."""
  for pattern, replacement in _SHRINK:
    if re.fullmatch(pattern, command):
      if replacement is None:
        return None
      return replacement.format(root=shlex.quote(ROOT), command=command)
  raise KeyError(f'no rule in tests/test_docs.py for the command: {command}')


def _run(argv: List[str], cwd: str, env: dict, what: str) -> None:
  start = time.monotonic()
  result = subprocess.run(argv, cwd=cwd, env=env, text=True, timeout=900,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  assert result.returncode == 0, (
      f'{what} exited {result.returncode}:\n{result.stdout[-6000:]}')
  print(f'{time.monotonic() - start:5.0f}s  {what}')  # Shown by pytest -rP.


def run_readme(readme: str, scratch: str) -> int:
  """Runs `readme`'s runnable blocks in `scratch`; returns how many ran."""
  os.symlink(os.path.join(ROOT, '.venv'), os.path.join(scratch, '.venv'))
  token = uuid.uuid4().hex
  env = dict(os.environ, PAC_EXAMPLE_STEPS=EXAMPLE_STEPS,
             **{processes.TOKEN_VARIABLE: token},
             PATH=os.path.join(ROOT, '.venv', 'bin') + os.pathsep +
             os.environ['PATH'])
  ran = 0
  for index, (language, text) in enumerate(blocks(readme)):
    if language not in RUNNABLE:
      continue
    what = f'{readme} block {index} ({language})'
    if language == 'python':
      path = os.path.join(scratch, f'block_{index}.py')
      with open(path, 'w') as f:
        f.write(text)
      _run([sys.executable, path], scratch, env, what)
      ran += 1
    else:
      for command in commands(text):
        shrunk = shrink(command)
        if shrunk is not None:
          _run(['bash', '-c', 'set -euo pipefail\n' + shrunk], scratch, env,
               f'{what}: {shrunk}')
          ran += 1
    assert not processes.processes_with(token), f'{what} left processes behind'
  return ran


def test_every_readme_command_has_a_rule():
  for readme in READMES:
    for language, text in blocks(readme):
      if language in ('bash', 'sh'):
        for command in commands(text):
          shrink(command)  # KeyError names the command.


def test_only_known_block_languages():
  """A typo in a fence (```pyhton) would silently skip a block."""
  for readme in READMES:
    for language, _ in blocks(readme):
      assert language in RUNNABLE + ('text', ''), (readme, language)


def test_make_bench_is_the_documented_benchmarks():
  with open(os.path.join(ROOT, 'Makefile')) as f:
    makefile = f.read()
  recipe = re.search(r'^bench:.*\n((?:\t.*\n)+)', makefile, re.M).group(1)
  modules = re.findall(r'-m (benchmarks\.\w+)', recipe)
  documented = [m for _, text in blocks('benchmarks/README.md')
                for c in commands(text)
                for m in re.findall(r'-m (benchmarks\.\w+)', c)]
  # The evidence sweeps are not throughput benchmarks: `make scaling`,
  # `make multitask`, `make offline_suite`, `make finetune` and
  # `make defaults_sweep` run them.
  sweeps = ['benchmarks.scaling', 'benchmarks.multitask',
            'benchmarks.offline_suite', 'benchmarks.finetune',
            'benchmarks.defaults_sweep']
  assert sorted(modules + sweeps) == sorted(documented)
  for sweep in sweeps:
    target = sweep.split('.')[1]
    assert re.search(rf'^{target}:.*\n\t.*-m {sweep}\b', makefile, re.M)


def test_shrinking_keeps_the_documented_command():
  command = ('.venv/bin/python -m launchers.run --mode=offline --task=t '
             '--dataset=d --run_dir=r --max_learner_steps=3000')
  shrunk = shrink(command)
  assert shrunk.startswith(command)
  assert shrunk.index('--max_learner_steps=16') > shrunk.index('=3000')
  assert shrink('make test') is None
  with pytest.raises(KeyError, match='rm -rf'):
    shrink('rm -rf data')


def test_commands_join_continuations_and_drop_comments():
  assert commands('# data\npython -m a \\\n    --b 1  # why\nmake run\n') == [
      'python -m a --b 1', 'make run']


@pytest.mark.integration
@pytest.mark.parametrize('readme', [
    readme for readme in READMES
    if any(language in RUNNABLE for language, _ in blocks(readme))])
def test_readme_runs(readme, tmp_path):
  assert run_readme(readme, str(tmp_path)) > 0
  for pattern in _MADE[readme]:
    made = glob.glob(str(tmp_path / pattern))
    assert made and all(os.path.getsize(path) for path in made), pattern
