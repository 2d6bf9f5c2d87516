"""Lesson 12's machinery: events and webhook calls read back, the chain figure, the probe, the kill and the clean-up."""

import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import psutil
import pytest
from prefect import flow
from prefect.automations import Automation, CallWebhook, DoNothing, EventTrigger
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from prefect.events import ReceivedEvent, emit_event

from lessons_src.background import BackgroundProcess
from lessons_src.pairs.p05_concurrency_limits import ensure_limit, read_limit
from lessons_src.pairs.p12_events_and_automations import (
    delete_automations,
    delete_blocks,
    delete_deployments,
    event_table,
    hook_calls,
    kill_machine,
    plot_event_chain,
    read_events,
    remove_lesson_objects,
    short_id,
    state_times,
    wait_for,
    wait_until_active,
)
from lessons_src.serving import load_served_flow, read_deployment

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUN_ID = "0f3a2b1c-1111-2222-3333-444455556666"


def _event(name: str, seconds: float, related: list[dict] | None = None, payload: dict | None = None) -> ReceivedEvent:
    return ReceivedEvent(
        event=name,
        occurred=T0 + timedelta(seconds=seconds),
        received=T0 + timedelta(seconds=seconds + 0.01),
        resource={"prefect.resource.id": f"prefect.flow-run.{RUN_ID}", "prefect.resource.name": "brave-fox"},
        related=related or [],
        payload=payload or {},
    )


# ---- without a server ----


def test_short_id_cuts_each_uuid_to_eight_characters():
    assert short_id(f"prefect.flow-run.{RUN_ID}") == "prefect.flow-run.0f3a2b1c…"
    assert short_id("lesson-12.order.7") == "lesson-12.order.7"


def test_event_table_has_a_row_per_event_timed_from_the_first():
    flow_resource = {
        "prefect.resource.id": "prefect.flow.x",
        "prefect.resource.role": "flow",
        "prefect.resource.name": "load",
    }
    tag = {"prefect.resource.id": f"prefect.tag.{RUN_ID}", "prefect.resource.role": "tag"}
    table = event_table([_event("prefect.flow-run.Running", 0.5, [flow_resource, tag], {"k": 1}), _event("x", 0.0)])
    assert list(table.columns) == ["+s", "event", "resource", "name", "related (role: name)", "payload"]
    assert table["+s"].tolist() == [0.5, 0.0]
    assert table.loc[0, "resource"] == "prefect.flow-run.0f3a2b1c…" and table.loc[0, "name"] == "brave-fox"
    assert table.loc[0, "related (role: name)"] == "flow: load, tag: prefect.tag.0f3a2b1c…"
    assert table.loc[0, "payload"] == "{'k': 1}" and table.loc[1, "payload"] == ""


def test_event_table_counts_from_a_given_origin():
    table = event_table([_event("x", 2.0)], origin=T0)
    assert table["+s"].tolist() == [2.0]


def test_the_chain_is_drawn_in_the_order_things_happened():
    steps = [("late", T0 + timedelta(seconds=3)), ("first", T0), ("epoch", T0.timestamp() + 1)]
    ax = plot_event_chain(steps, "t").axes[0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["first", "epoch", "late"]
    assert sorted(round(bar.get_width(), 2) for bar in ax.patches) == [1.0, 2.0]
    assert [text.get_text() for text in ax.texts] == ["+1.0 s", "+2.0 s"] and ax.get_xlabel() == "seconds since: first"


def test_short_gaps_are_labelled_in_milliseconds_and_a_lone_step_is_refused():
    ax = plot_event_chain([("a", T0), ("b", T0 + timedelta(milliseconds=42))], "t").axes[0]
    assert [text.get_text() for text in ax.texts] == ["+42 ms"]
    with pytest.raises(ValueError, match="at least two steps"):
        plot_event_chain([("a", T0)], "t")


def test_wait_for_returns_the_value_or_says_what_it_waited_for():
    values = iter(range(10))
    assert wait_for(lambda: next(values), lambda n: n >= 3, 5, "three") == 3
    with pytest.raises(TimeoutError, match="still waiting for a miracle; read 0"):
        wait_for(lambda: 0, bool, 0.3, "a miracle")


def test_kill_machine_kills_a_process_and_what_it_started_at_once():
    sleeper = "import time; time.sleep(60)"
    child = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleeper!r}]); time.sleep(60)"
    machine = BackgroundProcess([sys.executable, "-c", child], "p12-machine").start()
    machine_pid = machine.pid
    wait_for(lambda: _children(machine_pid), bool, 10, "its child process")
    started = time.monotonic()
    killed = kill_machine(machine)
    assert time.monotonic() - started < 2 and len(killed) == 2 and not machine.running
    assert machine.process.returncode == -9 or sys.platform == "win32"
    with pytest.raises(RuntimeError, match="is not running"):
        kill_machine(machine)


def _children(pid: int) -> set[int]:
    return {child.pid for child in psutil.Process(pid).children(recursive=True)}


# ---- against the course server and the demo API ----

PREFIX = "test-p12-"


@pytest.fixture
def clean(course_server):
    """Delete everything named test-p12-... before and after the test."""
    remove_lesson_objects(PREFIX)
    yield
    remove_lesson_objects(PREFIX)


def test_read_events_filters_by_name_resource_and_related_and_waits_for_late_ones(course_server):
    since = datetime.now(UTC)
    mark = uuid4().hex[:8]
    customer = {"prefect.resource.id": f"test-p12.customer.{mark}", "prefect.resource.role": "customer"}
    emit_event("test-p12.order.placed", resource={"prefect.resource.id": f"test-p12.order.{mark}"}, related=[customer])
    emit_event("test-p12.order.shipped", resource={"prefect.resource.id": f"test-p12.order.{mark}"}, payload={"n": 1})
    emit_event("test-p12.order.shipped", resource={"prefect.resource.id": f"test-p12.other.{mark}"})
    shipped = read_events(since, names=["test-p12.order.shipped"], resource=f"test-p12.order.{mark}")
    assert [(e.event, e.payload) for e in shipped] == [("test-p12.order.shipped", {"n": 1})]
    by_customer = read_events(since, prefixes=["test-p12.order."], related=customer["prefect.resource.id"])
    assert [e.event for e in by_customer] == ["test-p12.order.placed"]
    both = read_events(since, prefixes=["test-p12.order."], resource=f"test-p12.order.{mark}", expected=2)
    assert [e.event for e in both] == ["test-p12.order.placed", "test-p12.order.shipped"]  # oldest first
    started = time.monotonic()
    assert read_events(since, names=["test-p12.never"], timeout=0.5) == []
    assert time.monotonic() - started < 2
    # an event that happens while the reader waits is found (a filter's default `until` is the moment it was built)
    later = datetime.now(UTC)
    emitter = _emit_after(1.5, "test-p12.order.late", f"test-p12.order.{mark}")
    late = read_events(later, names=["test-p12.order.late"], timeout=10)
    emitter.join()
    assert [e.event for e in late] == ["test-p12.order.late"]


def _emit_after(seconds: float, name: str, resource: str):
    thread = threading.Thread(target=lambda: (time.sleep(seconds), emit_event(name, {"prefect.resource.id": resource})))
    thread.start()
    return thread


def test_read_events_waits_until_the_named_event_is_there(course_server):
    since = datetime.now(UTC)
    mark = uuid4().hex[:8]
    emit_event("test-p12.step.one", resource={"prefect.resource.id": f"test-p12.job.{mark}"})
    emitter = _emit_after(1.5, "test-p12.step.two", f"test-p12.job.{mark}")
    found = read_events(since, prefixes=["test-p12.step."], resource=f"test-p12.job.{mark}", until="test-p12.step.two")
    emitter.join()
    assert [e.event for e in found] == ["test-p12.step.one", "test-p12.step.two"]


def test_hook_calls_since_a_moment_and_none_after_a_short_wait(demo_api):
    name = f"{PREFIX}{uuid4().hex[:8]}"
    httpx.post(demo_api.hook_url(name), json={"old": True})
    since = datetime.now(UTC)
    assert hook_calls(demo_api, name, since, timeout=0.3) == []
    httpx.post(demo_api.hook_url(name), json={"new": True})
    assert [call["body"] for call in hook_calls(demo_api, name, since)] == [{"new": True}]


def test_state_times_are_the_first_moment_of_each_state(course_server):
    @flow(name="test-p12-states")
    def quick() -> int:
        return 1

    run_id = quick(return_state=True).state_details.flow_run_id
    times = state_times(run_id)
    assert list(times) == ["Pending", "Running", "Completed"]
    assert times["Pending"] <= times["Running"] <= times["Completed"]


def test_wait_until_active_proves_a_new_automation_acts_and_removes_its_probe(demo_api, clean):
    hook = f"{PREFIX}hook"
    block_id = Webhook(url=demo_api.hook_url(hook)).save(hook, overwrite=True)
    trigger = EventTrigger(expect={"test-p12.ping"}, match={"prefect.resource.id": "test-p12.pinged"})
    Automation(name=f"{PREFIX}ping", trigger=trigger, actions=[CallWebhook(block_document_id=block_id)]).create()
    seconds = wait_until_active(demo_api, PREFIX)
    since = datetime.now(UTC)
    emit_event("test-p12.ping", resource={"prefect.resource.id": "test-p12.pinged"})
    assert len(hook_calls(demo_api, hook, since)) == 1 and 0 < seconds < 15
    with get_client(sync_client=True) as client:
        assert client.read_automations_by_name(f"{PREFIX}probe") == []
        assert [b.name for b in client.read_block_documents() if b.name == f"{PREFIX}probe"] == []


def test_the_clean_up_deletes_automations_blocks_deployments_and_limits_by_prefix(clean):
    for name in (f"{PREFIX}auto", "other-p12-auto"):
        Automation(name=name, trigger=EventTrigger(expect={"test-p12.never"}), actions=[DoNothing()]).create()
    Webhook(url="http://127.0.0.1:9/hook").save(f"{PREFIX}block", overwrite=True)
    load_served_flow("extract", "event_jobs.py").to_deployment(f"{PREFIX}deployment").apply()
    ensure_limit(f"{PREFIX}limit", 1)
    removed = remove_lesson_objects(PREFIX)
    assert removed == [f"{PREFIX}auto", f"{PREFIX}block", f"extract/{PREFIX}deployment", f"{PREFIX}limit"]
    assert read_deployment(f"extract/{PREFIX}deployment") is None and read_limit(f"{PREFIX}limit") is None
    assert delete_automations(PREFIX) == [] and delete_blocks(PREFIX) == [] and delete_deployments(PREFIX) == []
    assert delete_automations("other-p12-") == ["other-p12-auto"]
    with pytest.raises(ValueError, match="too short"):
        remove_lesson_objects("ex")
