"""BUILD stays in step with the tree: every module and test has a target."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('agents', 'environments', 'launchers', 'benchmarks')


def _targets():
  """Evaluates BUILD (Starlark is Python syntax) with recording rule stubs."""
  targets = []

  def rule(kind):
    def record(**kwargs):
      targets.append((kind, kwargs))
    return record

  namespace = {'py_library': rule('py_library'), 'py_test': rule('py_test'),
               'py_binary': rule('py_binary'),
               'requirement': lambda name: f'@pip//{name}',
               'load': lambda *args, **kwargs: None,
               'package': lambda **kwargs: None}
  exec(compile((ROOT / 'BUILD').read_text(), 'BUILD', 'exec'), namespace)  # pylint: disable=exec-used
  return targets


def _python_files(*roots):
  return {str(p.relative_to(ROOT)) for root in roots
          for p in (ROOT / root).rglob('*.py') if '__pycache__' not in p.parts}


def test_every_module_is_in_a_library_or_binary():
  covered = {src for kind, t in _targets() if kind != 'py_test'
             for src in t.get('srcs', [])}
  missing = sorted(_python_files(*PACKAGES) - covered)
  assert not missing, f'Python modules with no BUILD target: {missing}'


def test_every_test_file_has_a_py_test():
  covered = {src for kind, t in _targets() if kind == 'py_test'
             for src in t.get('srcs', [])}
  tests = {f for f in _python_files('tests')
           if os.path.basename(f).startswith('test_')}
  missing = sorted(tests - covered)
  assert not missing, f'Test files with no py_test target: {missing}'


def test_build_names_only_existing_files_and_known_deps():
  targets = _targets()
  names = {t['name'] for _, t in targets}
  for kind, t in targets:
    for src in t.get('srcs', []):
      assert (ROOT / src).is_file(), f'{kind} {t["name"]}: no file {src}'
    for dep in t.get('deps', []):
      if dep.startswith(':'):
        assert dep[1:] in names, f'{kind} {t["name"]}: unknown dep {dep}'


def test_third_party_deps_are_pinned_in_requirements():
  pinned = set()
  for name in ('requirements.txt', 'requirements-nodeps.txt'):
    for line in (ROOT / name).read_text().splitlines():
      if '==' in line and not line.startswith('#'):
        pinned.add(line.split('==')[0].strip().lower().replace('_', '-'))
  for kind, t in _targets():
    for dep in t.get('deps', []):
      if dep.startswith('@pip//'):
        package = dep[len('@pip//'):].lower().replace('_', '-')
        assert package in pinned, f'{kind} {t["name"]}: {package} not pinned'


def test_target_names_are_unique():
  names = [t['name'] for _, t in _targets()]
  assert len(names) == len(set(names)), 'duplicate BUILD target names'
