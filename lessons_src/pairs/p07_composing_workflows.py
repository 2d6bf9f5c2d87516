"""Read back how flows were composed: a flow run's subflow runs and its run graph, through the Prefect client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import State

from lessons_src.runs import flow_run_id_of, poll_until
from lessons_src.tolerances import RECORDS_DEADLINE_S


@dataclass(frozen=True)
class SubflowRun:
    """One subflow run as the server recorded it, with the parent's task run that stands for it."""

    id: UUID
    name: str
    flow_name: str
    state: str
    run_count: int
    retries: int | None  # the flow's retries and retry delay (s), as its run reported them to the server
    retry_delay: float | None
    parameters: dict[str, Any]
    start: datetime | None
    end: datetime | None
    tracking_task_run: str | None  # name of the parent's task run that parent_task_run_id points at, if any
    tracking_task_state: str | None

    @property
    def seconds(self) -> float | None:
        """Wall time between the run's start and end, if it ran."""
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class GraphNode:
    """One node of a flow run's graph (what the UI's run graph draws) and the nodes it depends on."""

    kind: str
    label: str
    state: str
    upstream: tuple[str, ...]


def subflow_runs(
    parent: State | FlowRun | UUID | str, expected: int | None = None, timeout: float = RECORDS_DEADLINE_S
) -> list[SubflowRun]:
    """Return the flow runs started from inside `parent`, oldest first, waiting until all are final."""
    parent_id = flow_run_id_of(parent)
    children_filter = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id]))
    parent_filter = FlowRunFilter(id=FlowRunFilterId(any_=[parent_id]))
    with get_client(sync_client=True) as client:
        runs = poll_until(
            lambda: client.read_flow_runs(flow_run_filter=children_filter, sort=FlowRunSort.START_TIME_ASC, limit=200),
            lambda runs: all(r.state is not None and r.state.is_final() for r in runs)
            and (expected is None or len(runs) >= expected),
            timeout,
            lambda runs: (
                f"Flow run {parent_id} has {len(runs)} subflow runs recorded (expected {expected}), "
                f"{sum(not (r.state and r.state.is_final()) for r in runs)} not final after {timeout:.0f} s."
            ),
        )
        flow_ids = list({r.flow_id for r in runs})
        flows = client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids))) if flow_ids else []
        parent_tasks = {t.id: t for t in client.read_task_runs(flow_run_filter=parent_filter, limit=200)}
    flow_names = {f.id: f.name for f in flows}
    records = []
    for run in runs:
        tracking = parent_tasks.get(run.parent_task_run_id) if run.parent_task_run_id else None
        records.append(
            SubflowRun(
                id=run.id,
                name=run.name,
                flow_name=flow_names.get(run.flow_id, "?"),
                state=run.state.name if run.state else "Unknown",
                run_count=run.run_count,
                retries=run.empirical_policy.retries,
                retry_delay=run.empirical_policy.retry_delay,
                parameters=dict(run.parameters),
                start=run.start_time,
                end=run.end_time,
                tracking_task_run=tracking.name if tracking else None,
                tracking_task_state=tracking.state.name if tracking and tracking.state else None,
            )
        )
    return sorted(records, key=lambda r: (r.start is None, r.start.timestamp() if r.start else 0.0))


def run_graph(run: State | FlowRun | UUID | str) -> list[GraphNode]:
    """Return the nodes of a flow run's graph as the server serves it to the UI (GET /flow_runs/{id}/graph-v2)."""
    with get_client(sync_client=True) as client:
        response = client.request("GET", "/flow_runs/{id}/graph-v2", path_params={"id": flow_run_id_of(run)})
    response.raise_for_status()
    nodes = {node_id: node for node_id, node in response.json()["nodes"]}
    ordered = sorted(nodes.values(), key=lambda node: node["start_time"])
    return [
        GraphNode(
            kind=node["kind"],
            label=node["label"],
            state=node["state_type"].title(),
            upstream=tuple(sorted({nodes[edge["id"]]["label"] for edge in node["parents"] if edge["id"] in nodes})),
        )
        for node in ordered
    ]
