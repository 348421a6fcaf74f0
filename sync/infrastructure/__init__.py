"""Adapters of the sync engine: shared rate limits, locks, tables."""
