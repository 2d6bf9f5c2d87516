"""The CPU-bound job is deterministic and its calibration scales with the time asked for."""

import pytest

from lessons_src.pairs.p04_concurrency import crunch, iterations_for


def test_crunch_is_deterministic_and_matches_the_formula():
    expected = 0
    for i in range(1000):
        expected = (expected + i * i) % 1_000_003
    assert crunch(1000) == expected == crunch(1000)
    assert crunch(0) == 0


def test_iterations_for_scales_with_the_seconds_asked_for():
    short, long = iterations_for(0.01), iterations_for(0.1)
    assert short >= 1 and long > 2 * short  # ten times the time, with a wide margin for a busy machine


def test_iterations_for_rejects_non_positive_seconds():
    with pytest.raises(ValueError, match="positive"):
        iterations_for(0)
