"""Matplotlib figures the lessons draw from measured data: measured vs ideal, run timelines, requests in flight."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

STATE_COLOURS = {
    "Completed": "#2e9d5b",
    "Cached": "#7fc8a0",
    "Failed": "#d64545",
    "Crashed": "#8b1e1e",
    "TimedOut": "#9b59b6",
    "Cancelled": "#8c8c8c",
    "Retrying": "#f0a030",
    "AwaitingRetry": "#f0a030",
    "Running": "#3a7bd5",
}
OTHER_COLOUR = "#555555"


class Interval(Protocol):
    """Anything with a name, a state name and a start and end (datetimes or epoch seconds)."""

    name: str
    state: str
    start: datetime | float | None
    end: datetime | float | None


def _seconds(moment: datetime | float) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def new_axes(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Create a figure through pyplot (so Jupyter knows how to show it) and close it, so it shows only once."""
    figure, ax = plt.subplots(figsize=figsize, layout="constrained")
    plt.close(figure)
    return figure, ax


def assign_lanes(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """Give each (start, end) interval the lowest lane free at its start, so overlapping intervals never share one."""
    lane_ends: list[float] = []
    lanes = [0] * len(intervals)
    for index in sorted(range(len(intervals)), key=lambda i: intervals[i][0]):
        start, end = intervals[index]
        if end < start:
            raise ValueError(f"interval {index} ends ({end}) before it starts ({start})")
        free = next((lane for lane, busy_until in enumerate(lane_ends) if busy_until <= start), None)
        if free is None:
            free = len(lane_ends)
            lane_ends.append(end)
        lane_ends[free] = end
        lanes[index] = free
    return lanes


def plot_measured_vs_ideal(
    labels: Sequence[str],
    measured: Sequence[float],
    ideal: Sequence[float],
    title: str,
    unit: str = "s",
    value_format: str = "%.2f",
) -> Figure:
    """Draw measured values beside their ideal values as paired bars, each labelled with its number."""
    if not (len(labels) == len(measured) == len(ideal)) or not labels:
        raise ValueError(
            "labels, measured and ideal need the same non-zero length; "
            f"got {len(labels)}, {len(measured)}, {len(ideal)}"
        )
    figure, ax = new_axes((max(5.0, 1.6 * len(labels) + 2), 3.6))
    positions = range(len(labels))
    width = 0.38
    bars_measured = ax.bar([p - width / 2 for p in positions], measured, width, label="measured", color="#3a7bd5")
    bars_ideal = ax.bar(
        [p + width / 2 for p in positions],
        ideal,
        width,
        label="ideal",
        color="#c8c8c8",
        edgecolor="#555555",
        hatch="//",
    )
    for bars in (bars_measured, bars_ideal):
        ax.bar_label(bars, fmt=f"{value_format} {unit}" if unit else value_format, fontsize=8, padding=2)
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(loc="upper right")
    ax.margins(y=0.15)
    return figure


def plot_timeline(runs: Sequence[Interval], title: str, limit: int | None = None) -> Figure:
    """Draw runs as bars on lanes (one lane per concurrent slot), coloured by final state, time from the first start."""
    timed = [r for r in runs if r.start is not None and r.end is not None]
    if not timed:
        raise ValueError("Nothing to draw: none of the runs has both a start and an end time.")
    origin = min(_seconds(r.start) for r in timed)
    spans = [(_seconds(r.start) - origin, _seconds(r.end) - origin) for r in timed]
    lanes = assign_lanes(spans)
    figure, ax = new_axes((8.0, 0.9 + 0.32 * (max(lanes) + 1)))
    for run, (start, end), lane in zip(timed, spans, lanes, strict=True):
        ax.barh(
            lane,
            max(end - start, 0.002),
            left=start,
            height=0.7,
            color=STATE_COLOURS.get(run.state, OTHER_COLOUR),
            edgecolor="white",
        )
    if limit is not None:
        ax.axhline(limit - 0.5, color="black", linestyle="--", linewidth=1)
        ax.text(0, limit - 0.45, f"limit = {limit}", fontsize=8, va="bottom")
    ax.set_yticks(range(max(lanes) + 1))
    ax.set_ylim(-0.6, max(max(lanes), (limit or 0) - 1) + 0.8)
    ax.invert_yaxis()
    ax.set_ylabel("lane (concurrent slot)")
    ax.set_xlabel("seconds since the first run started")
    ax.set_title(title)
    states = sorted({r.state for r in timed})
    ax.legend(
        handles=[Patch(color=STATE_COLOURS.get(s, OTHER_COLOUR), label=s) for s in states],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title="final state",
    )
    return figure


def plot_in_flight(times: Sequence[float], counts: Sequence[int], title: str, limit: int | None = None) -> Figure:
    """Draw how many requests were in flight over time as a step line, with an optional limit line."""
    if len(times) != len(counts) or not times:
        raise ValueError(f"times and counts need the same non-zero length; got {len(times)} and {len(counts)}")
    origin = times[0]
    figure, ax = new_axes((8.0, 3.0))
    ax.step([t - origin for t in times], counts, where="post", color="#3a7bd5", label="in flight")
    if limit is not None:
        ax.axhline(limit, color="#d64545", linestyle="--", label=f"limit = {limit}")
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("requests in flight")
    ax.set_ylim(0, max(max(counts), limit or 0) + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # requests come whole
    ax.set_title(title)
    ax.legend(loc="upper right")
    return figure
