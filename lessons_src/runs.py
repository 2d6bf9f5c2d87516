"""Read back what Prefect recorded (task runs, logs, events) through the Prefect client."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun, TaskRun
from prefect.client.schemas.sorting import TaskRunSort
from prefect.states import State

from lessons_src.tolerances import EVENTS_QUIET_S, RECORDING_QUIET_S, RECORDS_DEADLINE_S

T = TypeVar("T")


@dataclass(frozen=True)
class TaskRunRecord:
    """One task run as the Prefect server recorded it."""

    name: str
    task_key: str
    state: str
    start: datetime | None
    end: datetime | None
    run_count: int
    tags: tuple[str, ...]

    @property
    def seconds(self) -> float | None:
        """Wall time between the run's start and end, if it ran."""
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()


def flow_run_id_of(run: State | FlowRun | UUID | str) -> UUID:
    """Return the flow-run id from a flow's final state (`return_state=True`), a FlowRun or an id."""
    if isinstance(run, State):
        if run.state_details.flow_run_id is None:
            raise ValueError("This state belongs to no flow run; call the flow with return_state=True.")
        return run.state_details.flow_run_id
    if isinstance(run, FlowRun):
        return run.id
    if isinstance(run, UUID):
        return run
    if isinstance(run, str):
        return UUID(run)
    raise TypeError(
        "Pass the state a flow returns with `my_flow(return_state=True)`, a FlowRun or a flow-run id, "
        f"not {type(run).__name__}."
    )


def _record(run: TaskRun) -> TaskRunRecord:
    return TaskRunRecord(
        name=run.name,
        task_key=run.task_key,
        state=run.state.name if run.state else "Unknown",
        start=run.start_time,
        end=run.end_time,
        run_count=run.run_count,
        tags=tuple(run.tags),
    )


def read_flow_run(run: State | FlowRun | UUID | str) -> FlowRun:
    """Return the server's record of a flow run."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id_of(run))


def poll_until(read: Callable[[], T], done: Callable[[T], bool], timeout: float, why: Callable[[T], str]) -> T:
    """Call `read` every 0.1 s until `done(value)` and return that value; after `timeout` s raise TimeoutError(why).

    Prefect records task runs from events, a moment after they happen, so readers wait for the records to settle.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(why(value))
        time.sleep(0.1)


def unchanged_for(seconds: float) -> Callable[[object], bool]:
    """Return a test that is true once the value it is handed has stayed the same for `seconds` seconds."""
    last: dict[str, Any] = {"value": object(), "since": 0.0}

    def steady(value: object) -> bool:
        now = time.monotonic()
        if value != last["value"]:
            last.update(value=value, since=now)
        return now - last["since"] >= seconds

    return steady


def _settled(run: TaskRun) -> bool:
    """A task run is settled when final, or NotReady: its upstream failed, so it will never run."""
    return run.state is not None and (run.state.is_final() or run.state.name == "NotReady")


def settled_task_runs(
    run: State | FlowRun | UUID | str,
    expected: int | None = None,
    timeout: float = RECORDS_DEADLINE_S,
    or_fewer: bool = False,
) -> list[TaskRun]:
    """Return the Prefect client's TaskRun objects of a flow run once all are settled and `expected` exist.

    Without `expected`, the list must also stay the same for RECORDING_QUIET_S: task runs reach the server as events, a
    moment after they happen, so an empty list right after a flow returns proves nothing. With `or_fewer`, return
    what is recorded after `timeout` s instead of raising (a wrong answer may make fewer task runs than expected).
    """
    flow_run_id = flow_run_id_of(run)
    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    quiet = unchanged_for(RECORDING_QUIET_S)

    def recorded(runs: list[TaskRun]) -> bool:
        if not all(_settled(r) for r in runs):
            return False
        if expected is not None:
            return len(runs) >= expected
        return quiet(frozenset(r.id for r in runs))

    with get_client(sync_client=True) as client:

        def read() -> list[TaskRun]:
            return client.read_task_runs(
                flow_run_filter=flow_filter, sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200
            )

        try:
            return poll_until(
                read,
                recorded,
                timeout,
                lambda runs: (
                    f"Flow run {flow_run_id} has {len(runs)} task runs recorded (expected {expected}), "
                    f"{sum(not _settled(r) for r in runs)} not final after {timeout:.0f} s."
                ),
            )
        except TimeoutError:
            if not or_fewer:
                raise
            return read()


def task_runs(
    run: State | FlowRun | UUID | str,
    expected: int | None = None,
    timeout: float = RECORDS_DEADLINE_S,
    or_fewer: bool = False,
) -> list[TaskRunRecord]:
    """Return a flow run's task runs by start time, once recorded and settled (see `settled_task_runs`)."""
    records = [_record(r) for r in settled_task_runs(run, expected, timeout, or_fewer)]
    return sorted(records, key=lambda r: (r.start is None, r.start.timestamp() if r.start else 0.0))


def span_seconds(records: list[TaskRunRecord]) -> float:
    """Return the seconds from the first run's start to the last run's end."""
    timed = [r for r in records if r.start and r.end]
    if not timed:
        raise ValueError("None of these task runs has both a start and an end time.")
    return (max(r.end for r in timed) - min(r.start for r in timed)).total_seconds()


def peak_overlap(records: list[TaskRunRecord]) -> int:
    """Return the largest number of these runs that were running at the same moment."""
    events = sorted(
        [(r.start.timestamp(), 1) for r in records if r.start and r.end]
        + [(r.end.timestamp(), -1) for r in records if r.start and r.end]
    )
    peak = current = 0
    for _, change in events:  # at equal times an end (-1) sorts before a start (+1)
        current += change
        peak = max(peak, current)
    return peak


def flow_run_logs(
    run: State | FlowRun | UUID | str, contains: str | None = None, timeout: float = RECORDS_DEADLINE_S
) -> list[str]:
    """Return the log messages stored for a flow run, waiting up to `timeout` s for one containing `contains`."""
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id_of(run)]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            messages = [log.message for log in client.read_logs(log_filter=log_filter)]
            if contains is None or any(contains in m for m in messages) or time.monotonic() > deadline:
                return messages
            time.sleep(0.2)


def recorded_events(event: str, resource_id: str, since: datetime, expected: int, timeout: float = 10.0) -> list[Any]:
    """Return the events named `event` about resource `resource_id` since `since`, once `expected` are recorded.

    Events reach the server's database in batches (the event persister flushes every
    `PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL` s). Fewer are returned when the count stays the same for
    EVENTS_QUIET_S, or after `timeout` s.
    """
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    quiet = unchanged_for(EVENTS_QUIET_S)
    with get_client(sync_client=True) as client:

        def read() -> list[Any]:
            event_filter = EventFilter(
                occurred=EventOccurredFilter(since=since),  # its `until` is now: built anew, so later events count
                event=EventNameFilter(name=[event]),
                resource=EventResourceFilter(id=[resource_id]),
            )
            return client.read_events(event_filter, limit=50).events  # the most one page holds

        try:
            return poll_until(read, lambda found: len(found) >= expected or quiet(len(found)), timeout, str)
        except TimeoutError:
            return read()
