"""`launchers.launching`: the one line a stopped run ends with."""

import signal

from launchers import launching
from launchers import supervision


def test_a_clean_stop_says_every_node_checkpointed():
  stop = launching.Interrupted(signal.SIGINT, '/runs/a')
  assert stop.exit_status == 130
  assert str(stop) == ('[run] stopped by SIGINT; every node checkpointed. '
                       'Rerun the same command to resume (run directory '
                       '/runs/a).')


def test_a_stop_with_a_killed_node_names_it_and_claims_no_checkpoint():
  stop = launching.Interrupted(signal.SIGTERM, '/runs/a',
                               ['learner/0 (killed by SIGKILL)'])
  assert stop.exit_status == 143
  line = str(stop)
  assert 'every node checkpointed' not in line
  assert line.startswith(
      '[run] stopped by SIGTERM; learner/0 (killed by SIGKILL) did not stop '
      f'cleanly within {supervision.STOP_NOTICE_S} s')
  assert 'what learner/0 (killed by SIGKILL) did since its last checkpoint ' \
      'is lost' in line
  assert '/runs/a/logs/nodes' in line and 'Rerun the same command' in line


def test_a_stop_that_killed_only_stateless_nodes_says_what_was_kept():
  line = str(launching.Interrupted(signal.SIGINT, '/runs/a', [
      'actor/0 (killed by SIGKILL) on host b', 'controller/0 (exit 1)']))
  assert line.startswith(
      '[run] stopped by SIGINT; the learner, replay and counter checkpointed; '
      'actor/0 (killed by SIGKILL) on host b, controller/0 (exit 1) did not '
      'stop within')
  assert "losing at most an actor's open episodes" in line
  assert 'every node checkpointed' not in line
