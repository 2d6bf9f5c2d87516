"""Lesson 12's machinery: read events and webhook calls back, draw a chain of events, kill a 'machine', clean up."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pandas as pd
import psutil
from matplotlib.figure import Figure
from prefect.automations import Automation, CallWebhook, EventTrigger
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from prefect.events import ReceivedEvent, emit_event
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventRelatedFilter,
    EventResourceFilter,
)
from prefect.exceptions import ObjectNotFound

from lessons_src.background import BackgroundProcess
from lessons_src.checks import short
from lessons_src.demo_api import DemoAPI
from lessons_src.pairs.p05_concurrency_limits import remove_course_objects
from lessons_src.plots import new_axes
from lessons_src.runs import poll_until

PAGE = 50  # the most events the server returns in one page
# How long after an event an automation's action may come and still count as "at once". On 2026-12-01 (2 cores shared
# with other work, PostgreSQL course server): a webhook call arrived 0.04-0.18 s after its event (9 calls), a run was
# created 0.07-0.13 s after it (6 runs), a proactive trigger fired 0.4-0.9 s after its window closed (9 windows).
# Ten times the slowest call, about twice the slowest proactive firing, for a busier machine.
ACTION_LATENCY_S = 2.0
LANE_COLOURS = ("#3a7bd5", "#2e9d5b", "#f0a030", "#9b59b6", "#d64545", "#8c8c8c")


def read_events(
    since: datetime,
    names: Sequence[str] = (),
    prefixes: Sequence[str] = (),
    resource: str | None = None,
    related: str | None = None,
    expected: int = 1,
    until: str | None = None,
    timeout: float = 10.0,
) -> list[ReceivedEvent]:
    """Return the events since `since`, oldest first, once `expected` (and one named `until`) are recorded.

    Filters, all optional: event `names` or name `prefixes`, the primary `resource` id, a `related` resource id.
    Events reach the database in batches (every second on the course server), so a reader waits for them; after
    `timeout` s it returns what is recorded. Each read asks up to an hour ahead: an `EventOccurredFilter` left without
    `until` stops at the moment it was built, and would miss every event that happens while it waits.
    """
    name_filter = EventNameFilter(name=list(names) or None, prefix=list(prefixes) or None)
    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(hours=1)),
        event=name_filter if names or prefixes else None,
        resource=EventResourceFilter(id=[resource]) if resource else None,
        related=EventRelatedFilter(id=[related]) if related else None,
    )
    with get_client(sync_client=True) as client:

        def done(found: list[ReceivedEvent]) -> bool:
            return len(found) >= expected and (until is None or any(event.event == until for event in found))

        def read() -> list[ReceivedEvent]:
            page = client.read_events(event_filter, limit=PAGE)
            found = list(page.events)
            while page.next_page is not None:
                page = client.read_events_page(str(page.next_page))
                found += page.events
            return sorted(found, key=lambda event: event.occurred)

        try:
            return poll_until(read, done, timeout, str)
        except TimeoutError:
            return read()


def hook_calls(api: DemoAPI, name: str, since: datetime, expected: int = 1, timeout: float = 10.0) -> list[dict]:
    """Return the calls webhook `name` received since `since`, once `expected` arrived, or those after `timeout` s.

    A check that nothing arrives passes `expected=1` and a short `timeout`: it gets the empty list back.
    """

    def read() -> list[dict]:
        return [call for call in api.hook_calls(name) if call["received"] >= since.timestamp()]

    try:
        return poll_until(read, lambda calls: len(calls) >= expected, timeout, str)
    except TimeoutError:
        return read()


UUID_TAIL = re.compile(r"([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def short_id(resource_id: str) -> str:
    """Return a resource id with each UUID cut to its first 8 characters, e.g. 'prefect.flow-run.0f3a2b1c…'."""
    return UUID_TAIL.sub(r"\1…", resource_id)


def wait_until_active(api: DemoAPI, prefix: str, timeout: float = 15.0) -> float:
    """Wait until the server acts on every automation created so far; return the seconds it took.

    The server's trigger service loads a new automation a moment after `create()` returns (PostgreSQL notifies it at
    once; on SQLite it reloads every 5 s), and events that arrive before are not counted. A probe automation named
    `prefix + "probe"`, created after them, calls the demo API's webhook receiver: once a probe event makes it call,
    the automations before it are loaded too. The probe is deleted again.
    """
    started = time.monotonic()
    name = f"{prefix}probe"
    resource = f"course.probe.{uuid4()}"
    block_id = Webhook(url=api.hook_url(name)).save(name, overwrite=True, _sync=True)
    trigger = EventTrigger(expect={"course.probe"}, match={"prefect.resource.id": resource})
    probe = Automation(name=name, trigger=trigger, actions=[CallWebhook(block_document_id=block_id)])
    probe.create(_sync=True)
    since = datetime.now(UTC)
    try:

        def probe_once() -> list[dict]:
            emit_event("course.probe", resource={"prefect.resource.id": resource})
            return hook_calls(api, name, since, expected=1, timeout=0.1)

        wait_for(probe_once, bool, timeout, f"the probe automation {name!r} to call its webhook")
    finally:
        probe.delete(_sync=True)
        delete_blocks(name)
    return time.monotonic() - started


def _related_text(event: ReceivedEvent) -> str:
    """Return an event's related resources as "role: name" (or their short id), comma-separated."""
    return ", ".join(f"{r.role}: {r.get('prefect.resource.name') or short_id(r.id)}" for r in event.related)


def event_table(events: Sequence[ReceivedEvent], origin: datetime | None = None) -> pd.DataFrame:
    """Return a row per event: seconds after `origin` (by default the first event), name, resource, related, payload."""
    zero = origin or (min(e.occurred for e in events) if events else datetime.now(UTC))
    rows = [
        {
            "+s": round((event.occurred - zero).total_seconds(), 3),
            "event": event.event,
            "resource": short_id(event.resource.id),
            "name": event.resource.get("prefect.resource.name", ""),
            "related (role: name)": _related_text(event),
            "payload": short(event.payload) if event.payload else "",
        }
        for event in events
    ]
    columns = ["+s", "event", "resource", "name", "related (role: name)", "payload"]
    return pd.DataFrame(rows, columns=columns)


def _epoch(moment: datetime | float) -> float:
    """Return a moment (a datetime or epoch seconds) as epoch seconds."""
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def _duration(seconds: float) -> str:
    """Return a gap as "+42 ms" under a second, "+3.1 s" above."""
    return f"+{seconds * 1000:.0f} ms" if abs(seconds) < 1 else f"+{seconds:.1f} s"


def plot_event_chain(steps: Sequence[tuple[str, datetime | float]], title: str) -> Figure:
    """Draw steps (label, moment) in the order they happened: one lane each, a bar from the step before, its gap."""
    if len(steps) < 2:
        raise ValueError(f"A chain needs at least two steps; got {len(steps)}.")
    steps = sorted(steps, key=lambda step: _epoch(step[1]))
    origin = _epoch(steps[0][1])
    offsets = [_epoch(moment) - origin for _, moment in steps]
    figure, ax = new_axes((9.0, 0.9 + 0.42 * len(steps)))
    ax.plot([0], [0], marker="D", color="black")
    for lane in range(1, len(steps)):
        start, end = offsets[lane - 1], offsets[lane]
        colour = LANE_COLOURS[(lane - 1) % len(LANE_COLOURS)]
        ax.barh(lane, max(end - start, 0.004), left=start, height=0.6, color=colour)
        ax.text(max(end, start) + 0.02 * max(offsets[-1], 0.1), lane, _duration(end - start), va="center", fontsize=8)
    ax.set_yticks(range(len(steps)), [label for label, _ in steps], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, offsets[-1] * 1.18 + 0.05)
    ax.set_xlabel(f"seconds since: {steps[0][0]}")
    ax.set_title(title)
    return figure


def state_times(flow_run_id: UUID) -> dict[str, datetime]:
    """Return when a flow run first entered each state, by state name, as the server recorded it."""
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(flow_run_id)
    first: dict[str, datetime] = {}
    for state in sorted(states, key=lambda s: s.timestamp):
        first.setdefault(state.name or state.type.value, state.timestamp)
    return first


def kill_machine(process: BackgroundProcess, timeout: float = 10.0) -> list[int]:
    """Kill a background process and every process it started at once, as a machine losing power would; return pids.

    Nothing gets the chance to report anything: no SIGTERM handler, no hook, no final state (SIGKILL on Linux and
    macOS, TerminateProcess on Windows).
    """
    if not process.running:
        raise RuntimeError(f"{process!r} is not running: there is nothing to kill.")
    root = psutil.Process(process.pid)
    doomed = [root, *root.children(recursive=True)]
    for victim in doomed:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            continue
    if process.process is not None:
        process.process.wait(timeout=timeout)  # reap it: it is this process's child
    wait_for(lambda: [v.pid for v in doomed if _alive(v)], lambda alive: not alive, timeout, "the killed processes")
    return [victim.pid for victim in doomed]


def _alive(process: psutil.Process) -> bool:
    """Return whether a process still runs code (a zombie waiting for its parent to read its status does not)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """Poll `read` until `done(value)` and return the value; after `timeout` s raise TimeoutError naming `what`."""
    return poll_until(
        read, done, timeout, lambda value: f"after {timeout:.0f} s, still waiting for {what}; read {value}"
    )


def delete_automations(prefix: str) -> list[str]:
    """Delete every automation whose name starts with `prefix` (deployment triggers included); return their names."""
    with get_client(sync_client=True) as client:
        doomed = [a for a in client.read_automations() if a.name.startswith(prefix)]
        for automation in doomed:
            try:
                client.delete_automation(automation.id)
            except ObjectNotFound:  # another process deleted it meanwhile
                continue
    return [automation.name for automation in doomed]


def delete_blocks(prefix: str) -> list[str]:
    """Delete every block document whose name starts with `prefix` (e.g. the lesson's webhook blocks); return names."""
    with get_client(sync_client=True) as client:
        doomed = [b for b in client.read_block_documents() if b.name and b.name.startswith(prefix)]
        for block in doomed:
            client.delete_block_document(block.id)
    return [block.name for block in doomed]


def delete_deployments(prefix: str) -> list[str]:
    """Delete every deployment whose name starts with `prefix`; return their full names (`flow/deployment`)."""
    with get_client(sync_client=True) as client:
        flows = {flow.id: flow.name for flow in client.read_flows()}
        doomed = [d for d in client.read_deployments() if d.name.startswith(prefix)]
        for deployment in doomed:
            client.delete_deployment(deployment.id)
    return [f"{flows.get(d.flow_id, '?')}/{d.name}" for d in doomed]


def remove_lesson_objects(prefix: str) -> list[str]:
    """Delete the automations, blocks, deployments, concurrency limits and variables named `prefix...`; return names.

    Automations go first: a deployment's triggers are automations it owns, and deleting the deployment leaves them.
    """
    if len(prefix) < 4:
        raise ValueError(f"prefix {prefix!r} is too short to be one notebook's own; use e.g. 'lesson-12-'")
    return [*delete_automations(prefix), *delete_blocks(prefix), *delete_deployments(prefix)] + remove_course_objects(
        prefix
    )
