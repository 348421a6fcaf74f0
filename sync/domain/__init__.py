"""Sync rules with no I/O: operation kinds, budgets, backoff and batch keys."""
