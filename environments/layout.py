"""Names shared by the dataset writer and reader (see environments/README.md).

  <dataset>/
    dataset.json   sidecar metadata, written last: its presence marks a finished
                   dataset (task, policy, seed, per-episode returns, spec, ...)
    steps/         EnvLogger's Riegeli files: metadata.riegeli and one
                   timestamped shard directory with steps.riegeli,
                   step_offsets.riegeli, episode_index.riegeli,
                   episode_metadata.riegeli (several shard
                   directories when written in parallel, read in name order)
    cache/         a decoded copy of the steps (see cache.py), written on first
                   read; removable at any time

A run writes into a hidden sibling `.<name>.incomplete-XXXXXXXX` and renames it
to `<dataset>` only once everything is on disk.
"""

FORMAT = 'pac-rlds-envlogger'
FORMAT_VERSION = 1
METADATA_FILE = 'dataset.json'
CACHE_DIR = 'cache'
STEPS_DIR = 'steps'
LOGGER_METADATA_FILE = 'metadata.riegeli'  # EnvLogger's, inside STEPS_DIR.
INCOMPLETE_MARKER = '.incomplete-'
