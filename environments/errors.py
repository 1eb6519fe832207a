"""Exceptions raised by the `environments` package.

Every error a caller can fix by changing an input (a task name, a policy name, a
dataset path, a spec) derives from `DatasetError`, itself a `ValueError`, so a
caller can catch the whole family at once (the CLI does, and prints one line).
Library failures underneath (dm_control, EnvLogger, Riegeli, protobuf, JSON) are
re-raised as one of these with `from e`, never surfaced raw.
"""


class DatasetError(ValueError):
  """Base class: a bad task, policy, dataset path, dataset file or spec."""


class UnknownTaskError(DatasetError):
  """A task name that is not a supported `<domain>_<task>` suite task."""


class UnknownPolicyError(DatasetError):
  """A behaviour policy name that does not exist for the requested task."""


class DatasetNotFoundError(DatasetError):
  """The dataset path does not exist."""


class NotADatasetError(DatasetError):
  """The path exists but is not a finished dataset (e.g. an unfinished run)."""


class DatasetExistsError(DatasetError):
  """Refusing to write over an existing directory."""


class CorruptDatasetError(DatasetError):
  """A dataset file is truncated, damaged or inconsistent with its metadata."""


class MissingFieldError(DatasetError):
  """Metadata or step data lacks a required field."""


class DatasetSpecError(DatasetError):
  """A dataset's spec differs from the spec it is checked against."""
