"""Lesson 11's machinery: the server's late-run setting, and a figure of where each pool run's time went."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime

import httpx
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lessons_src.plots import OTHER_COLOUR, STATE_COLOURS, new_axes
from lessons_src.workers import PoolRun

WAITING_COLOUR = "#c8c8c8"  # Scheduled: no worker has taken the run yet
STARTING_COLOUR = "#f0a030"  # Pending: a worker took it and is starting its process


def server_settings() -> dict:
    """Return the settings the running Prefect server uses, as its `/admin/settings` endpoint reports them."""
    response = httpx.get(f"{os.environ['PREFECT_API_URL']}/admin/settings", timeout=10)
    response.raise_for_status()
    return response.json()


def late_after_seconds() -> float:
    """Return how long after its slot the server renames a run nobody started Late, plus its check period."""
    late_runs = server_settings()["server"]["services"]["late_runs"]
    after = late_runs["after_seconds"]  # an ISO 8601 duration such as 'PT5S'
    return float(after.removeprefix("PT").removesuffix("S")) + float(late_runs["loop_seconds"])


def plot_run_phases(
    runs: Sequence[PoolRun], title: str, origin: datetime | None = None, origin_label: str = "the first run was created"
) -> Figure:
    """Draw one lane per run: waiting for a worker, its process starting, then running (coloured by final state).

    Time counts from `origin` (described by `origin_label`), by default from the first run's creation.
    """
    drawn = sorted((r for r in runs if r.end is not None), key=lambda r: r.created)
    if not drawn:
        raise ValueError("Nothing to draw: none of the runs has ended.")
    zero = origin or min(r.created for r in drawn)
    figure, ax = new_axes((9.0, 1.1 + 0.4 * len(drawn)))
    for lane, run in enumerate(drawn):
        points = [run.created, run.pending or run.running or run.end, run.running or run.end, run.end]
        offsets = [(moment - zero).total_seconds() for moment in points]
        colours = (WAITING_COLOUR, STARTING_COLOUR, STATE_COLOURS.get(run.state, OTHER_COLOUR))
        for start, end, colour in zip(offsets, offsets[1:], colours, strict=False):
            ax.barh(lane, max(end - start, 0.02), left=start, height=0.6, color=colour, edgecolor="white")
    ax.set_yticks(range(len(drawn)), [f"{r.name} ({r.worker or 'no worker'})" for r in drawn], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"seconds since {origin_label}")
    ax.set_title(title)
    legend = [("waiting for a worker (Scheduled)", WAITING_COLOUR), ("process starting (Pending)", STARTING_COLOUR)]
    legend += [(state, STATE_COLOURS.get(state, OTHER_COLOUR)) for state in sorted({r.state for r in drawn})]
    ax.legend(
        handles=[Patch(color=colour, label=label) for label, colour in legend],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
    )
    return figure
