"""Launchpad programs for PAC (importing it also imports `agents`)."""

import agents as _agents  # noqa: F401  (compat aliases, compilation cache)
