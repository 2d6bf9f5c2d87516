"""Pair 02 helpers: read each task run's retry history from Prefect and draw the demo API's attempts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from lessons_src.runs import settled_task_runs
from lessons_src.tolerances import RECORDS_DEADLINE_S

STATUS_COLOURS = {200: "#2e9d5b", 201: "#2e9d5b", 429: "#f0a030"}
FAILURE_COLOUR = "#d64545"


@dataclass(frozen=True)
class RetryHistory:
    """One task run's attempts as Prefect recorded them: final state, run_count, scheduled waits and every state."""

    name: str
    state: str
    run_count: int
    retry_delays: tuple[float, ...]
    states: tuple[str, ...] = ()

    @property
    def total_delay(self) -> float:
        """Seconds Prefect scheduled to wait between attempts, summed."""
        return sum(self.retry_delays)


def retry_histories(
    run: State | FlowRun | UUID | str, expected: int | None = None, timeout: float = RECORDS_DEADLINE_S
) -> dict[str, RetryHistory]:
    """Return each task run of a flow run by name, with its states in order and the delay of each AwaitingRetry."""
    runs = settled_task_runs(run, expected, timeout)
    with get_client(sync_client=True) as client:
        histories = {}
        for task_run in runs:
            states = sorted(client.read_task_run_states(task_run.id), key=lambda s: s.timestamp)
            delays = tuple(
                round((s.state_details.scheduled_time - s.timestamp).total_seconds(), 3) + 0.0  # never -0.0
                for s in states
                if s.name == "AwaitingRetry" and s.state_details.scheduled_time is not None
            )
            histories[task_run.name] = RetryHistory(
                name=task_run.name,
                state=task_run.state.name if task_run.state else "Unknown",
                run_count=task_run.run_count,
                retry_delays=delays,
                states=tuple(s.name for s in states),
            )
    return histories


def arrivals(requests: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, int]]:
    """Return (arrival time, status) of every request the demo API logged for `key`, oldest first."""
    return sorted((r["arrived"], r["status"]) for r in requests if r["key"] == key)


def plot_attempts(requests: Sequence[Mapping[str, Any]], rows: Mapping[str, str], title: str) -> Figure:
    """Draw one row per label: a dot at each arrival of its key's requests at the demo API, coloured by status."""
    series = {label: arrivals(requests, key) for label, key in rows.items()}
    moments = [moment for points in series.values() for moment, _ in points]
    if not moments:
        raise ValueError("The demo API logged no request for these keys.")
    origin = min(moments)
    figure, ax = plt.subplots(figsize=(8.0, 1.0 + 0.55 * len(rows)), layout="constrained")
    plt.close(figure)
    for row, points in enumerate(series.values()):
        offsets = [moment - origin for moment, _ in points]
        ax.plot(offsets, [row] * len(points), color="#bbbbbb", linewidth=1, zorder=1)
        colours = [STATUS_COLOURS.get(status, FAILURE_COLOUR) for _, status in points]
        ax.scatter(offsets, [row] * len(points), c=colours, s=70, zorder=2, edgecolors="white")
        for number, offset in enumerate(offsets, start=1):
            ax.annotate(str(number), (offset, row), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.set_xlabel("seconds since the first request (arrival times logged by the demo API)")
    ax.set_title(title)
    ax.scatter([], [], c=FAILURE_COLOUR, label="failed (5xx)")
    ax.scatter([], [], c=STATUS_COLOURS[200], label="succeeded")
    ax.legend(loc="lower right", fontsize=8)
    return figure


def plot_success_curve(
    retries: Sequence[int], measured: Sequence[float], theory: Sequence[float], calls: int, title: str
) -> Figure:
    """Draw the measured success rate against the theory for each number of retries."""
    figure, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    plt.close(figure)
    ax.plot(retries, theory, color="#555555", linestyle="--", marker="o", label="theory 1 − p^(n+1)")
    ax.plot(retries, measured, color="#3a7bd5", marker="s", label=f"measured over {calls} calls")
    for n, value in zip(retries, measured, strict=True):
        ax.annotate(f"{value:.2f}", (n, value), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    ax.set_xticks(list(retries))
    ax.set_xlabel("retries allowed (n)")
    ax.set_ylabel("share of calls that succeeded")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return figure


def plot_retry_waits(waits: Mapping[str, Sequence[float]], title: str) -> Figure:
    """Draw, per strategy, each client's wait before its retry as a dot on its own row (a strip plot)."""
    figure, ax = plt.subplots(figsize=(8.0, 1.2 + 0.6 * len(waits)), layout="constrained")
    plt.close(figure)
    for row, values in enumerate(waits.values()):
        spread = [row + (index % 5 - 2) * 0.08 for index in range(len(values))]
        ax.scatter(values, spread, s=28, alpha=0.75, color="#3a7bd5", edgecolors="white")
    ax.set_yticks(range(len(waits)), list(waits))
    ax.set_ylim(len(waits) - 0.5, -0.5)
    ax.set_xlim(left=0)
    ax.set_xlabel("seconds from a client's failed attempt to its retry")
    ax.set_title(title)
    return figure


def plot_request_counts(counts: Mapping[str, Mapping[str, int]], title: str) -> Figure:
    """Draw one stacked bar per variant: how many requests each case sent, with the total on top."""
    variants = list(counts)
    cases = list(next(iter(counts.values())))
    figure, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    plt.close(figure)
    bottoms = [0] * len(variants)
    colours = plt.get_cmap("tab10")
    for index, case in enumerate(cases):
        heights = [counts[variant][case] for variant in variants]
        ax.bar(variants, heights, bottom=bottoms, color=colours(index), edgecolor="white", label=case, width=0.5)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for position, total in enumerate(bottoms):
        ax.annotate(f"{total} requests", (position, total), textcoords="offset points", xytext=(0, 3), ha="center")
    ax.set_ylabel("requests received by the demo API")
    ax.set_ylim(0, max(bottoms) * 1.15)
    ax.set_title(title)
    ax.legend(title="case", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return figure
