"""`benchmarks.gpu_placement` on this CPU machine: with the learner asked onto
the CPU, every node group's process computes there and holds no GPU memory.

The driver is stood in for by an `nvidia-smi` that reports no process (what
the real one reports on a GPU machine where no process holds memory); the
GPU half of the check ran on an H200 (benchmarks/results/gpu_placement.json).
"""

import os
import stat

import pytest

from benchmarks import gpu_placement
from launchers import placement


def test_every_group_computes_on_the_cpu_when_the_learner_is_asked_there(
    tmp_path, monkeypatch):
  smi = tmp_path / 'nvidia-smi'
  smi.write_text('#!/bin/sh\necho\n')
  smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
  monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
  records = gpu_placement.check('cpu')
  assert [r['group'] for r in records] == ['learner', *placement.CPU_GROUPS]
  for record in records:
    assert record['backend'] == 'cpu' and record['platforms'] == ['cpu']
    assert record['array_on'] == ['cpu'] and record['gpu_memory_mib'] == 0


@pytest.mark.skipif(placement.cuda_available(), reason='JAX has CUDA here')
def test_without_cuda_the_check_says_so_and_exits_2(capsys):
  assert gpu_placement.main() == 2
  assert 'no CUDA plugin' in capsys.readouterr().out
