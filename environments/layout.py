"""Names shared by the dataset writer and reader (see environments/README.md).

  <dataset>/
    dataset.json   sidecar metadata, written last: its presence marks a finished
                   dataset (task, policy, seed, per-episode returns, spec, ...)
    steps/         EnvLogger's Riegeli files: metadata.riegeli and one
                   timestamped shard directory with steps.riegeli,
                   step_offsets.riegeli, episode_index.riegeli,
                   episode_metadata.riegeli

A run writes into a hidden sibling `.<name>.incomplete-XXXXXXXX` and renames it
to `<dataset>` only once everything is on disk.
"""

FORMAT = 'pac-rlds-envlogger'
FORMAT_VERSION = 1
METADATA_FILE = 'dataset.json'
STEPS_DIR = 'steps'
INCOMPLETE_MARKER = '.incomplete-'
