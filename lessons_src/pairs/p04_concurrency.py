"""A CPU-bound pure-Python job for the concurrency lessons, importable by worker processes."""

from __future__ import annotations

import time


def crunch(iterations: int) -> int:
    """Do `iterations` steps of integer arithmetic in a pure-Python loop, holding the GIL throughout."""
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


def iterations_for(seconds: float, probe: int = 200_000) -> int:
    """Return how many `crunch` iterations take about `seconds` on this machine, from the best of three probes."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        crunch(probe)
        best = min(best, time.perf_counter() - start)
    return max(1, round(probe * seconds / best))
