"""Pair 03: read state histories back from the Prefect server, count final states, wait for demo API requests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import TaskRunSort
from prefect.states import State

from lessons_src.demo_api import DemoAPI
from lessons_src.runs import TaskRunRecord, flow_run_id_of, poll_until
from lessons_src.tolerances import RECORDS_DEADLINE_S


def flow_run_history(run: State | FlowRun | UUID | str) -> list[str]:
    """Return the names of the states a flow run went through, oldest first."""
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(flow_run_id_of(run))
    return [s.name for s in sorted(states, key=lambda s: s.timestamp)]


def task_run_histories(run: State | FlowRun | UUID | str, timeout: float = RECORDS_DEADLINE_S) -> dict[str, list[str]]:
    """Return each task run's name mapped to the names of its states, oldest first, once each history is final."""
    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id_of(run)]))
    with get_client(sync_client=True) as client:

        def read() -> dict[str, list[State]]:
            runs = client.read_task_runs(flow_run_filter=flow_filter, sort=TaskRunSort.EXPECTED_START_TIME_ASC)
            return {r.name: sorted(client.read_task_run_states(r.id), key=lambda s: s.timestamp) for r in runs}

        histories = poll_until(  # task-run states reach the server as events, a moment after the run ends
            read,
            lambda found: bool(found) and all(h and h[-1].is_final() for h in found.values()),
            timeout,
            lambda found: f"The task runs of flow run {flow_run_id_of(run)} have no final state after {timeout:.0f} s.",
        )
    return {name: [s.name for s in history] for name, history in histories.items()}


def state_counts(records: Iterable[TaskRunRecord]) -> dict[str, int]:
    """Count task runs per final state name, most common first."""
    return dict(Counter(r.state for r in records).most_common())


def wait_for_requests(api: DemoAPI, count: int, timeout: float = 10.0) -> int:
    """Return once the demo API has received `count` requests since its last reset (TimeoutError after `timeout` s)."""
    return poll_until(
        lambda: api.stats().total,
        lambda received: received >= count,
        timeout,
        lambda received: f"The demo API received {received} of {count} requests within {timeout:.0f} s.",
    )
