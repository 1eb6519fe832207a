"""What the launcher tests share: a small agent and a run's outputs."""

import json
import os
from typing import List

from agents.pac import config as pac_config


def small_agent(**overrides) -> pac_config.PACConfig:
  """Small; with the launchers' fast learner path (several steps per call,
  prefetching) and blocks of 4 transitions per offline item."""
  values = dict(batch_size=16, min_replay_size=32, num_sampled_actions=4,
                variable_update_period=20, learner_steps_per_call=8,
                prefetch_batches=2, offline_block_size=4)
  values.update(overrides)
  return pac_config.PACConfig(**values)


def results(run_dir: str) -> List[dict]:
  """The run's evaluations, from its eval.jsonl."""
  with open(os.path.join(run_dir, 'eval.jsonl')) as f:
    return [json.loads(line) for line in f]


def status(run_dir: str) -> str:
  """The run's status lines."""
  with open(os.path.join(run_dir, 'status.log')) as f:
    return f.read()
