"""Reverb tables for offline and online data, and the iterator that mixes them.

PAC trains on two sources (DESIGN.md §3): an `offline` table filled once from a
dataset, and an `online` table filled by actors. Every learner batch takes exactly
`round(f * batch_size)` transitions from `online` and the rest from `offline`,
where `f` is the online fraction at the learner's current step (it may follow a
schedule). Exact per-batch counts, rather than a per-item coin flip, make the
mixture reproducible and keep both tables' rate limiters honest: each table is
sampled only as much as the learner consumes from it.
"""

import sys
from typing import Callable, Dict, Iterator, Optional, Tuple

from acme import adders as acme_adders
from acme import specs
from acme import types as acme_types
from acme.adders import reverb as adders_reverb
import jax
import numpy as np
import reverb
import tensorflow as tf
import tree

OFFLINE_TABLE = 'offline'
ONLINE_TABLE = 'online'


def transition_signature(
    environment_spec: specs.EnvironmentSpec) -> acme_types.Transition:
  """The signature both tables share: Acme's n-step transition, no extras."""
  return adders_reverb.NStepTransitionAdder.signature(environment_spec)


def make_offline_table(environment_spec: specs.EnvironmentSpec, max_size: int,
                       min_size: int) -> reverb.Table:
  """Uniform sampling over a table that a loader fills once.

  The dataset is static, so the only limit is to wait for `min_size` items
  before the first sample; the table never evicts while it is below `max_size`.
  """
  return reverb.Table(
      name=OFFLINE_TABLE,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=max_size,
      rate_limiter=reverb.rate_limiters.MinSize(min_size),
      signature=transition_signature(environment_spec))


def make_online_table(environment_spec: specs.EnvironmentSpec, max_size: int,
                      min_size: int, samples_per_insert: Optional[float],
                      error_buffer: float) -> reverb.Table:
  """FIFO-evicting, uniform table for actor data.

  With `samples_per_insert` set, a one-sided ratio limiter keeps the learner
  from sampling online data more than `samples_per_insert` times per insert
  (plus `error_buffer`), so it cannot over-fit the first few online
  transitions. Unlike Acme's `SampleToInsertRatio`, it never blocks inserts:
  actors share a small machine's cores with the learner, and an actor blocked
  in an insert after the learner has finished would also hang the program's
  stop. Without `samples_per_insert` (no online sampling, or self-improvement
  rounds that collect before they train) only `min_size` applies.
  """
  if samples_per_insert:
    # Reverb's own limiters are built the same way; none is one-sided.
    limiter = reverb.rate_limiters.RateLimiter(reverb.pybind.RateLimiter(
        samples_per_insert=samples_per_insert,
        min_size_to_sample=min_size,
        min_diff=samples_per_insert * min_size - error_buffer,
        max_diff=sys.float_info.max))
  else:
    limiter = reverb.rate_limiters.MinSize(min_size)
  return reverb.Table(
      name=ONLINE_TABLE,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=max_size,
      rate_limiter=limiter,
      signature=transition_signature(environment_spec))


def make_online_adder(client: reverb.Client, n_step: int,
                      discount: float) -> acme_adders.Adder:
  """Acme's n-step transition adder into the `online` table.

  Its discount convention (transition.discount = discount^(n-1) * prod of
  environment discounts) is the one the loss and the offline loader use.
  """
  return adders_reverb.NStepTransitionAdder(
      client=client, n_step=n_step, discount=discount,
      priority_fns={ONLINE_TABLE: None})


def insert_transitions(writer: reverb.TrajectoryWriter, table: str,
                       batch: acme_types.Transition) -> None:
  """Inserts each row of a batch of transitions as one item, then flushes.

  Rows go in as flat lists rather than nests: the per-item tree work would
  otherwise halve the rate. The writer needs `num_keep_alive_refs >= 1`.
  """
  columns = tree.flatten(batch)
  for i in range(len(batch.reward)):
    writer.append([column[i] for column in columns])
    writer.create_item(table, priority=1.0, trajectory=tree.unflatten_as(
        batch, [history[-1] for history in writer.history]))
  writer.flush()


class MixedReplayIterator(Iterator[reverb.ReplaySample]):
  """Yields `ReplaySample` batches of `batch_size`: offline rows, then online.

  `online_fraction_at(step)` gives the fraction at a learner step; the step comes
  from `step_source` (the learner wires its own step count here, so a resumed
  learner resumes the schedule too) or, without one, from the number of batches
  produced. One batched Reverb stream is kept per (table, rows) pair in use; a
  schedule that changes the split replaces the stream (at most `batch_size`
  times over a whole schedule).
  """

  def __init__(self,
               server_address: str,
               batch_size: int,
               online_fraction_at: Callable[[int], float],
               num_parallel_calls: int = 2):
    self._server_address = server_address
    self._batch_size = batch_size
    self._online_fraction_at = online_fraction_at
    self._num_parallel_calls = num_parallel_calls
    self._streams: Dict[str, Tuple[int, Iterator[reverb.ReplaySample]]] = {}
    self._batches = 0
    self.step_source: Optional[Callable[[], int]] = None

  def split(self, step: int) -> Tuple[int, int]:
    """(offline rows, online rows) of the batch drawn at `step`."""
    online = int(round(float(self._online_fraction_at(step)) *
                       self._batch_size))
    return self._batch_size - online, online

  def _stream(self, table: str, rows: int) -> Iterator[reverb.ReplaySample]:
    current = self._streams.get(table)
    if current is None or current[0] != rows:
      dataset = reverb.TrajectoryDataset.from_table_signature(
          server_address=self._server_address,
          table=table,
          max_in_flight_samples_per_worker=2 * rows,
          num_workers_per_iterator=self._num_parallel_calls)
      dataset = dataset.batch(rows, drop_remainder=True).prefetch(
          tf.data.AUTOTUNE)
      current = (rows, dataset.as_numpy_iterator())
      self._streams[table] = current
    return current[1]

  def __next__(self) -> reverb.ReplaySample:
    step = self.step_source() if self.step_source else self._batches
    offline_rows, online_rows = self.split(step)
    # Each stream decodes its table's signature into a namedtuple class of its
    # own; rebuilding Acme's `Transition` makes the parts one tree type.
    parts = [_as_acme_transition(next(self._stream(table, rows)))
             for table, rows in ((OFFLINE_TABLE, offline_rows),
                                 (ONLINE_TABLE, online_rows)) if rows]
    self._batches += 1
    if len(parts) == 1:
      return parts[0]
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *parts)


def _as_acme_transition(sample: reverb.ReplaySample) -> reverb.ReplaySample:
  return sample._replace(data=acme_types.Transition(*sample.data))
