"""Test helpers shared across suites (no hub imports at module level)."""
