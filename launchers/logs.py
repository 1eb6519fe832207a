"""Loggers that write into the run directory: CSV and TensorBoard, per label.

Acme's default logger writes CSV under `~/acme/<uid>`; a run here keeps every
artefact in its own run directory instead, so a run can be resumed, compared and
deleted as one folder.
"""

import os

from acme.utils import loggers
from acme.utils.loggers import aggregators
from acme.utils.loggers import csv as csv_logger
from acme.utils.loggers import filters
from acme.utils.loggers import tf_summary
import numpy as np


def _to_scalars(values):
  """0-d values become Python floats/ints (TensorBoard rejects bools)."""
  def scalar(v):
    v = np.asarray(v).item() if np.ndim(v) == 0 else v
    return float(v) if isinstance(v, bool) else v
  return {k: scalar(v) for k, v in values.items()}


def make_logger(run_dir: str, label: str, steps_key: str,
                time_delta: float = 1.0) -> loggers.Logger:
  """CSV (`<run_dir>/logs/<label>/logs.csv`) and TensorBoard (`<run_dir>/tb`).

  `time_delta` throttles writes (seconds); 0 writes every call. Nothing goes to
  the terminal: the run's controller prints one status line per evaluation.
  """
  csv = csv_logger.CSVLogger(run_dir, label=label, add_uid=False,
                             flush_every=1)
  tensorboard = tf_summary.TFSummaryLogger(
      logdir=os.path.join(run_dir, 'tb'), label=label, steps_key=steps_key)
  logger = aggregators.Dispatcher([csv, tensorboard], _to_scalars)
  logger = filters.NoneFilter(logger)
  return filters.TimeFilter(logger, time_delta)
