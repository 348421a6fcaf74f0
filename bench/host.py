"""Where the machine's CPU time went during a measured window, from ``/proc/stat``.

Recorded with every phase because on a shared virtual machine the hypervisor's *steal* time
(the vCPU runnable but not running) moves tail latencies more than anything in the code does:
a window with 20% steal can show a p95 five times that of one with 5%. A reader of the results
needs that figure to tell a regression from a noisy neighbour.
"""

from __future__ import annotations

from pathlib import Path

PROC_STAT = Path("/proc/stat")
# Column order of the cpu lines in /proc/stat (see proc(5)); guest time is already in user.
COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

CpuTimes = dict[str, tuple[int, ...]]


def cpu_times() -> CpuTimes:
    """Cumulative ticks per CPU ("cpu" is the sum); empty where /proc/stat does not exist."""
    try:
        lines = PROC_STAT.read_text().splitlines()
    except OSError:
        return {}
    times: CpuTimes = {}
    for line in lines:
        if line.startswith("cpu"):
            name, *values = line.split()
            times[name] = tuple(int(value) for value in values[: len(COLUMNS)])
    return times


def cpu_usage(before: CpuTimes, after: CpuTimes) -> dict[str, dict[str, float]]:
    """Percent of each CPU's time between two readings: busy (user+system+irq), idle, steal."""
    usage: dict[str, dict[str, float]] = {}
    for name, end in after.items():
        start = before.get(name)
        if start is None:
            continue
        delta = dict(zip(COLUMNS, (b - a for a, b in zip(start, end, strict=False)), strict=False))
        total = sum(delta.values())
        if total <= 0:
            continue

        def share(*columns: str, total: int = total, delta: dict[str, int] = delta) -> float:
            return round(100.0 * sum(delta.get(column, 0) for column in columns) / total, 1)

        usage[name] = {
            "user": share("user", "nice"),
            "system": share("system", "irq", "softirq"),
            "idle": share("idle", "iowait"),
            "steal": share("steal"),
        }
    return usage
