"""Benchmarks of the hub's hot read paths (run ``make bench``); results land in bench/results."""
