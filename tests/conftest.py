"""Shared fixtures: the course server for tests that run flows, and the Agg backend for plots."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture
def course_server():
    """Start or reuse the course's Prefect server and point this test process at it (again, for every test)."""
    from lessons_src import setup

    return setup(quiet=True)
