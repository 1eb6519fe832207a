"""Reverb tables for offline and online data, and the iterator that mixes them.

PAC trains on two sources: an `offline` table filled once from a dataset (in
shuffled blocks of transitions, see `make_offline_table`), and an `online`
table filled by actors. Every learner batch takes exactly
`round(f * batch_size)` transitions from `online` and the rest from `offline`,
where `f` is the online fraction at the learner's current step (it may follow a
schedule). Exact per-batch counts, rather than a per-item coin flip, make the
mixture reproducible and keep both tables' rate limiters honest: each table is
sampled only as much as the learner consumes from it.

A multi-task run has one offline table per task (`offline/<task>`), and the
offline rows of a batch are shared out among them by weights, again exactly
(`apportion`): every batch holds floor or ceil of `weight * rows` rows of each
task.
"""

import math
import queue
import sys
import threading
import weakref
from typing import (Callable, Dict, Iterator, Mapping, Optional, Sequence,
                    Tuple)

from acme import adders as acme_adders
from acme import specs
from acme import types as acme_types
from acme.adders import reverb as adders_reverb
import numpy as np
import reverb
import tensorflow as tf
import tree

OFFLINE_TABLE = 'offline'
ONLINE_TABLE = 'online'


def offline_table(task: Optional[str] = None) -> str:
  """The offline table of `task` in a multi-task run; `offline` otherwise."""
  return OFFLINE_TABLE if task is None else f'{OFFLINE_TABLE}/{task}'


def apportion(rows: int, weights: Sequence[float], step: int
              ) -> Tuple[int, ...]:
  """`rows` shared out by `weights` (summing to 1), exactly, at `step`.

  Each share gets floor(w * rows); the rows left over go one each to the
  shares with the largest remainders, ties broken in an order that rotates
  with `step`. So every share is floor or ceil of w * rows, the shares sum to
  `rows`, and equal weights get equal totals over every len(weights) steps.
  """
  quotas = [w * rows for w in weights]
  counts = [int(q) for q in quotas]
  k = len(weights)
  order = sorted(range(k), key=lambda i: (-(quotas[i] - counts[i]),
                                          (i - step) % k))
  for i in order[:rows - sum(counts)]:
    counts[i] += 1
  return tuple(counts)


def transition_signature(
    environment_spec: specs.EnvironmentSpec) -> acme_types.Transition:
  """The online table's signature: Acme's n-step transition, no extras."""
  return adders_reverb.NStepTransitionAdder.signature(environment_spec)


def example_batch(environment_spec: specs.EnvironmentSpec,
                  batch_size: int) -> acme_types.Transition:
  """Zeros shaped and typed as a batch of `MixedReplayIterator` ([B, ...])."""
  return tree.map_structure(
      lambda spec: np.zeros((batch_size, *spec.shape),
                            spec.dtype.as_numpy_dtype),
      transition_signature(environment_spec))


class TransitionPacker:
  """Packs transitions into one 2-D array per dtype, and back.

  The offline table stores blocks of transitions (see `make_offline_table`).
  Each Reverb column costs its own chunk and its own work per insert, so a
  block is stored as a few columns, one [block_size, D] array per dtype
  (float32 for proprioception, uint8 for pixels, ...), instead of one column
  per field: inserting then costs the same for a 2-field and a 20-field
  observation. Fields keep the order of `tree.flatten(transition_signature)`.
  """

  def __init__(self, signature: acme_types.Transition):
    """`signature`: a `Transition` of `tf.TensorSpec`, as the online table's."""
    self._structure = signature
    leaves = tree.flatten(self._structure)
    self._dtypes = sorted({np.dtype(leaf.dtype.as_numpy_dtype).name
                           for leaf in leaves})
    # For every leaf: (its group, its slice of the group's columns, shape).
    self._layout = []
    widths = {name: 0 for name in self._dtypes}
    for leaf in leaves:
      name = np.dtype(leaf.dtype.as_numpy_dtype).name
      shape = tuple(leaf.shape)
      size = int(np.prod(shape, dtype=np.int64))
      self._layout.append((self._dtypes.index(name),
                           slice(widths[name], widths[name] + size), shape))
      widths[name] += size
    self._widths = [widths[name] for name in self._dtypes]

  @classmethod
  def for_spec(cls, environment_spec: specs.EnvironmentSpec
               ) -> 'TransitionPacker':
    return cls(transition_signature(environment_spec))

  def pack(self, transitions: acme_types.Transition) -> Tuple[np.ndarray, ...]:
    """[N, ...] fields (no extras) -> one [N, D_g] array per dtype group."""
    leaves = tree.flatten(transitions)
    rows = leaves[0].shape[0]
    groups = [np.empty((rows, width), name)
              for name, width in zip(self._dtypes, self._widths)]
    for leaf, (group, columns, _) in zip(leaves, self._layout):
      groups[group][:, columns] = leaf.reshape(rows, -1)
    return tuple(groups)

  def unpack(self, groups: Sequence[np.ndarray]) -> acme_types.Transition:
    """[..., D_g] arrays -> a `Transition` of [..., *field shape] arrays."""
    leaves = [groups[group][..., columns].reshape(
        groups[group].shape[:-1] + shape)
              for group, columns, shape in self._layout]
    return acme_types.Transition(*tree.unflatten_as(
        tuple(self._structure), leaves))

  def signature(self, block_size: int) -> Tuple[tf.TensorSpec, ...]:
    return tuple(tf.TensorSpec((block_size, width), tf.as_dtype(name))
                 for name, width in zip(self._dtypes, self._widths))


def num_blocks(num_transitions: int, block_size: int) -> int:
  return -(-num_transitions // block_size)


def make_offline_table(environment_spec: specs.EnvironmentSpec,
                       max_transitions: int, min_transitions: int,
                       block_size: int, name: str = OFFLINE_TABLE
                       ) -> reverb.Table:
  """Uniform sampling over blocks of `block_size` transitions.

  The table is filled once by `insert_offline`, which shuffles the dataset
  before cutting it into blocks, so every block is a random sample of the
  data and a batch of b blocks is b * block_size transitions each drawn
  uniformly (the rows of one block always travel together). One item per
  block instead of per transition is what makes filling the table fast
  (Reverb's cost is per item and per column). `block_size=1` stores one
  transition per item. Sizes are given in transitions; `name` is the
  table's (`offline_table(task)` in a multi-task run).
  """
  return reverb.Table(
      name=name,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=num_blocks(max_transitions, block_size),
      rate_limiter=reverb.rate_limiters.MinSize(
          num_blocks(min_transitions, block_size)),
      signature=TransitionPacker.for_spec(environment_spec).signature(
          block_size))


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


_FLUSH_EVERY = 24


def insert_offline(client: reverb.Client, transitions: acme_types.Transition,
                   packer: TransitionPacker, block_size: int,
                   rng: np.random.Generator,
                   on_progress: Callable[[int], None] = lambda n: None,
                   table: str = OFFLINE_TABLE) -> int:
  """Shuffles `transitions` [N, ...] into blocks and inserts them as items
  of `table`.

  When N is not a multiple of `block_size`, the last block is completed with
  the first transitions of the shuffled order (so at most block_size - 1
  transitions appear twice). Calls `on_progress(transitions inserted)` as it
  goes; returns the number of items (blocks) inserted.
  """
  count = len(transitions.reward)
  order = rng.permutation(count)
  order = np.concatenate([order, order[:(-count) % block_size]])
  groups = [g.reshape((-1, block_size) + g.shape[1:]) for g in packer.pack(
      tree.map_structure(lambda x: x[order], transitions._replace(extras=())))]
  blocks = groups[0].shape[0]
  with client.trajectory_writer(num_keep_alive_refs=1) as writer:
    for i in range(blocks):
      writer.append([g[i] for g in groups])
      if i == 0:  # Live views of the columns: no tree work per item.
        columns = tree.flatten(writer.history)
      writer.create_item(table, 1.0, [c[-1] for c in columns])
      if (i + 1) % _FLUSH_EVERY == 0:
        # At most 2 * _FLUSH_EVERY items in flight: Reverb logs a warning
        # for every item added while ~50 or more are pending.
        writer.flush(block_until_num_items=_FLUSH_EVERY)
        if (i + 1) % (16 * _FLUSH_EVERY) == 0:
          on_progress(min((i + 1) * block_size, count))
    writer.flush()
  on_progress(count)
  return blocks


class _Fetcher:
  """Calls `next` on iterators in a daemon thread of its own.

  A Reverb stream whose server has gone blocks inside C++ for good, where
  neither Launchpad's stop (a `SystemExit` raised asynchronously in the
  learner's thread) nor Ctrl-C can reach it. The caller waits here in
  Python, in slices of `poll_s`, so both still end it; the daemon thread
  left blocked does not keep the process alive. The thread holds no iterator
  between calls and ends at `close` (its owner's collection), so a dropped
  stream and its server connections are freed as they were without it.
  """

  def __init__(self, poll_s: float = 0.2):
    self._poll_s = poll_s
    self._requests: queue.Queue = queue.Queue()  # (request id, iterator)
    self._results: queue.Queue = queue.Queue()  # (request id, ok, value)
    self._last_id = 0
    self._thread: Optional[threading.Thread] = None
    self._closed = False

  def _serve(self) -> None:
    while True:
      request = self._requests.get()
      if request is None:  # `close`.
        return
      request_id, iterator = request
      del request
      try:
        result = (request_id, True, next(iterator))
      except BaseException as error:  # pylint: disable=broad-except
        result = (request_id, False, error)  # Raised by `next`.
      del iterator
      self._results.put(result)
      del result

  @property
  def closed(self) -> bool:
    return self._closed

  def close(self) -> None:
    """Ends the thread once its current call (if any) returns; a call
    waiting here, and any later one, ends with StopIteration."""
    self._closed = True
    self._requests.put(None)

  def next(self, iterator: Iterator):
    if self._closed:
      raise StopIteration
    if self._thread is None:
      self._thread = threading.Thread(target=self._serve, daemon=True,
                                      name='reverb-fetch')
      self._thread.start()
    self._last_id += 1
    self._requests.put((self._last_id, iterator))
    while True:
      try:
        request_id, ok, value = self._results.get(timeout=self._poll_s)
      except queue.Empty:
        if self._closed:
          raise StopIteration from None
        continue
      if request_id != self._last_id:
        continue  # The answer to a call that was interrupted: stale.
      if ok:
        return value
      raise value


# Batches each stream reads ahead. A fixed size, with tf.data's autotuning
# off: an autotuned iterator's model thread sleeps between optimisations for
# longer the longer it runs (up to a minute), and dropping the iterator waits
# for it to wake, so a learner stopping after a long run spent 20-30 s in
# `close` (measured: 16 s to drop a stream read for 25 s; 0 s without it) and
# was killed at the end of its stop notice. Throughput is the same within
# noise (4,200 vs 4,500 batches/s of 8 items on one core, far above what a
# learner consumes).
_PREFETCH_BATCHES = 2
_STREAM_OPTIONS = tf.data.Options()
_STREAM_OPTIONS.autotune.enabled = False


class MixedReplayIterator(Iterator[acme_types.Transition]):
  """Yields `Transition` batches of `batch_size`: offline rows, then online.

  `online_fraction_at(step)` gives the online share at a learner step. The
  iterator counts the batches it yields from a starting step, read once from
  `step_source` on the first batch (the learner wires its restorable step
  count there, so a resumed learner resumes the schedule too) or 0 without
  one; batch j is drawn for step start + j, which stays exact when a learner
  prefetches batches ahead of its steps.

  Offline rows come from ceil(rows / block_size) sampled blocks (unpacked,
  surplus rows of the last block dropped), online rows from as many sampled
  transitions. With `offline_weights` ({table: weight}, a multi-task run's
  per-task tables) the offline rows are shared out by `apportion`, each
  table's rows in a fixed number of blocks (for its ceil(weight * rows)), so
  its stream is kept from batch to batch; the parts come in the order of
  `offline_weights`. The blocks' layout is read from the server (the online table's
  signature), so the iterator needs nothing but the server's address. One batched Reverb stream is kept per table; a schedule that
  changes a table's count replaces its stream (at most `batch_size` times
  over a whole schedule).
  """

  def __init__(self,
               server_address: str,
               batch_size: int,
               online_fraction_at: Callable[[int], float],
               block_size: int,
               num_parallel_calls: int = 2,
               wait_timeout_ms: int = 1000,
               offline_weights: Optional[Mapping[str, float]] = None):
    weights = dict(offline_weights or {OFFLINE_TABLE: 1.0})
    total = sum(weights.values())
    if not weights or min(weights.values()) <= 0:
      raise ValueError(f'offline_weights must be positive, got {weights}')
    self._offline_weights = {table: w / total for table, w in weights.items()}
    self._server_address = server_address
    self._wait_timeout_ms = wait_timeout_ms
    # Checked at each wait's timeout: True ends the iteration (StopIteration).
    self.should_stop: Callable[[], bool] = lambda: False
    self._info: Optional[Dict[str, object]] = None
    self._batch_size = batch_size
    self._online_fraction_at = online_fraction_at
    self._packer: Optional[TransitionPacker] = None
    self._block_size = block_size
    self._num_parallel_calls = num_parallel_calls
    self._streams: Dict[str, Tuple[int, Iterator[reverb.ReplaySample]]] = {}
    self._next_step: Optional[int] = None
    self.step_source: Optional[Callable[[], int]] = None
    self._fetcher = _Fetcher()
    weakref.finalize(self, self._fetcher.close)

  def split(self, step: int) -> Tuple[int, int]:
    """(offline rows, online rows) of the batch drawn at `step`."""
    online = int(round(float(self._online_fraction_at(step)) *
                       self._batch_size))
    return self._batch_size - online, online

  def offline_split(self, step: int) -> Dict[str, int]:
    """Rows of each offline table in the batch drawn at `step`."""
    rows, _ = self.split(step)
    return dict(zip(self._offline_weights, apportion(
        rows, list(self._offline_weights.values()), step)))

  def _server_info(self) -> Dict[str, object]:
    if self._info is None:  # Once: later streams need no server round trip.
      self._info = reverb.Client(self._server_address).server_info()
    return self._info

  def _sample(self, table: str, items: int) -> reverb.ReplaySample:
    """The next `items` items of `table`, waiting as long as it takes.

    Waits return to Python every `wait_timeout_ms`: a stream held that long by
    the rate limiter ends and a new one is made. That is what lets a stop
    request (Launchpad raises `SystemExit` in the waiting thread) end a
    learner whose tables receive no more inserts.
    """
    while True:
      current = self._streams.get(table)
      try:
        if current is None or current[0] != items:
          signature = self._server_info()[table].signature
          dataset = reverb.TrajectoryDataset(
              server_address=self._server_address, table=table,
              dtypes=tree.map_structure(lambda x: x.dtype, signature),
              shapes=tree.map_structure(lambda x: x.shape, signature),
              max_in_flight_samples_per_worker=2 * items,
              num_workers_per_iterator=self._num_parallel_calls,
              rate_limiter_timeout_ms=self._wait_timeout_ms)
          dataset = dataset.batch(items, drop_remainder=True).prefetch(
              _PREFETCH_BATCHES).with_options(_STREAM_OPTIONS)
          current = (items, dataset.as_numpy_iterator())
          self._streams[table] = current
        return self._fetcher.next(current[1])
      except StopIteration:  # Held by the rate limiter: wait on a new one,
        self._streams.pop(table, None)
        if self._fetcher.closed or self.should_stop():  # unless stopping.
          raise

  def close(self) -> None:
    """Drops every stream (their server connections close) and ends the
    iteration: a call in progress and any later one raise StopIteration.
    The learner node calls it when it stops, so that a stopped program
    (e.g. every node a thread of one process, under `test_mt`) leaves no
    stream reading from its stopped server."""
    self._fetcher.close()
    self._streams.clear()

  def __next__(self) -> acme_types.Transition:
    if self._next_step is None:
      self._next_step = self.step_source() if self.step_source else 0
    step = self._next_step
    offline_rows, online_rows = self.split(step)
    self._next_step += 1
    parts = []
    for table, rows in self.offline_split(step).items():
      if not rows:
        continue
      if self._packer is None:
        self._packer = TransitionPacker(
            self._server_info()[ONLINE_TABLE].signature)
      most = math.ceil(self._offline_weights[table] * offline_rows)
      blocks = self._sample(table, num_blocks(most, self._block_size))
      sampled = self._packer.unpack(blocks.data)  # [blocks, block_size, ...]
      parts.append(tree.map_structure(
          lambda x, n=rows: x.reshape((-1,) + x.shape[2:])[:n], sampled))
    if online_rows:
      # Each stream decodes its signature into a namedtuple class of its
      # own; rebuilding Acme's `Transition` makes the parts one tree type.
      parts.append(acme_types.Transition(
          *self._sample(ONLINE_TABLE, online_rows).data))
    if len(parts) == 1:
      return parts[0]
    return tree.map_structure(lambda *xs: np.concatenate(xs, axis=0), *parts)
