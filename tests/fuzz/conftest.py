"""Hypothesis profiles for the fuzz tests (each test sets its own ``max_examples``, >= 50).

``ci``, the default, is derandomized: the same examples on every run, so a failure is
reproducible from the log alone; no deadline (shared CI machines stall) and no example
database. ``explore`` draws fresh random examples on every run and keeps failures in the local
example database: ``HYPOTHESIS_PROFILE=explore pytest tests/fuzz``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
