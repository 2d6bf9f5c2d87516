"""Exercises for pair 12 (events and automations): graders read events, automations, webhook calls and flow runs."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psutil
from prefect import flow
from prefect.automations import (
    Automation,
    CallWebhook,
    EventTrigger,
    SequenceTrigger,
)
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.events import DeploymentEventTrigger, emit_event
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelling
from pydantic import ValidationError

from lessons_src.checks import CheckFailed, CourseProblem, Exercise, ExerciseSet, expect, run_coroutine, run_flow, short
from lessons_src.demo_api import DemoAPI, start_demo_api
from lessons_src.pairs.p05_concurrency_limits import delete_limit, ensure_limit, read_limit
from lessons_src.pairs.p12_events_and_automations import (
    ACTION_LATENCY_S,
    delete_automations,
    delete_blocks,
    hook_calls,
    read_events,
    remove_lesson_objects,
    wait_until_active,
)
from lessons_src.runs import poll_until
from lessons_src.serving import (
    DeploymentSpec,
    ServeProcess,
    deployment_flow_runs,
    load_served_flow,
    read_deployment,
    serve_deployments,
)

PREFIX = "ex12-"
# A sequence trigger orders its triggers' firings by when the server evaluated them, and the server evaluates events
# that arrive together concurrently: the check leaves this long between events whose order matters, as a real backup
# would (its started and verified events minutes apart). On 2026-12-01, with no gap 7 of 12 tries fired out of order,
# with 0.3 s none of 12; 1 s leaves room for a busier machine.
EVENT_GAP_S = 1.0
report = load_served_flow("report", "event_jobs.py")
extract = load_served_flow("extract", "event_jobs.py")
clean_up_flow = load_served_flow("clean_up", "event_jobs.py")


@flow(name="ex12-nightly")
async def nightly(fail: bool) -> str:
    """The flow exercise 2 watches: it fails when told to."""
    if fail:
        raise RuntimeError("the nightly load failed")
    return "loaded"


@flow(name="ex12-other")
async def other_job() -> None:
    """Another flow that fails: exercise 2's automation must leave it alone."""
    raise RuntimeError("another flow failed")


# ---- reference solutions (shown by ex.solution(n)) ----


def report_shipment(order_id: int, carrier: str) -> None:
    emit_event(
        "ex12.order.shipped",
        resource={"prefect.resource.id": f"ex12.order.{order_id}", "prefect.resource.name": f"order {order_id}"},
        related=[{"prefect.resource.id": "ex12.customer.ada", "prefect.resource.role": "customer"}],
        payload={"carrier": carrier},
    )


async def alert_on_failure(block_id):
    automation = Automation(
        name="ex12-alert",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": "ex12-nightly"},
        ),
        actions=[CallWebhook(block_document_id=block_id, payload='{"run": "{{ flow_run.name }}"}')],
    )
    return await automation.create()


async def alert_on_declines(block_id):
    automation = Automation(
        name="ex12-declines",
        trigger=EventTrigger(
            expect={"ex12.payment.declined"},
            match={"prefect.resource.id": "ex12.customer.*"},
            for_each={"prefect.resource.id"},
            threshold=3,
            within=timedelta(seconds=60),
        ),
        actions=[CallWebhook(block_document_id=block_id, payload='{"customer": "{{ event.resource.id }}"}')],
    )
    return await automation.create()


async def alert_on_verified_backup(block_id):
    backup = {"prefect.resource.id": "ex12.backup.nightly"}
    automation = Automation(
        name="ex12-backup",
        trigger=SequenceTrigger(
            triggers=[
                EventTrigger(expect={"ex12.backup.started"}, match=backup),
                EventTrigger(expect={"ex12.backup.verified"}, match=backup),
            ],
            within=timedelta(seconds=60),
        ),
        actions=[CallWebhook(block_document_id=block_id)],
    )
    return await automation.create()


async def chained_report():
    after_extract = DeploymentEventTrigger(
        expect={"prefect.flow-run.Completed"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": "extract"},
        parameters={"source": "{{ event.resource.name }}"},
    )
    return await report.to_deployment("ex12-report", triggers=[after_extract])


async def cancel(flow_run_id):
    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, Cancelling())


# ---- calling the learner's code ----


def _refusal(error: ValidationError) -> str:
    """Return a pydantic refusal in one line: where, and what was wrong (without the input it echoes back)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or error.title
    return f"{error.title} {where}: {first['msg'].removeprefix('Value error, ')}"


def _call(answer: Any, *args: Any) -> Any:
    """Call the learner's function as a notebook would: an `async def` on an event loop, a plain `def` right here."""
    expect(callable(answer), f"your answer should be a function; got {short(answer)}")
    try:
        value = run_coroutine(answer(*args)) if inspect.iscoroutinefunction(answer) else answer(*args)
    except ValidationError as error:  # Prefect's models refused what the answer built
        why = _refusal(error)
        if error.title == "Automation" and "id" in why:
            why += " (prefect.events.Automation is the bare schema: import Automation from prefect.automations)"
        raise CheckFailed(f"Prefect refused what your code built: {why}") from None
    if inspect.iscoroutine(value):
        value.close()
        raise CheckFailed(
            "your function returned a coroutine: in a notebook `create()`, `to_deployment()` and the client's "
            "methods must be awaited. Write `async def ...:` and `await` them."
        )
    return value


def _api() -> DemoAPI:
    """Return the demo API (started if needed): its webhook receiver records what the automations send."""
    try:
        return start_demo_api()
    except Exception as error:  # a course service that will not start is no fault of the answer
        raise CourseProblem(f"the demo API did not start ({error}); run `python -m lessons_src doctor`") from None


def _the_automation(name: str) -> Automation:
    """Return the one automation named `name` on the server, or fail saying what is there instead."""
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(name)
    expect(
        found,
        f"the server has no automation named {name!r}. Did the function create it? In a notebook `create()` returns a "
        "coroutine: `await automation.create()` (or `acreate()`), inside `async def`.",
    )
    expect(len(found) == 1, f"the server has {len(found)} automations named {name!r}; create one")
    return found[0]


@contextmanager
def _automation_from(answer: Any, name: str) -> Iterator[tuple[DemoAPI, Automation]]:
    """Give the learner's function a webhook block `name`; yield the automation it created, once active; delete both.

    The block points at the demo API's webhook receiver of the same name, whose calls the grader then reads.
    """
    api = _api()
    delete_automations(name)
    block_id = Webhook(url=api.hook_url(name)).save(name, overwrite=True, _sync=True)
    try:
        _call(answer, block_id)
        automation = _the_automation(name)
        expect(automation.enabled, f"{name!r} is disabled (paused); create it enabled")
        wait_until_active(api, PREFIX)
        yield api, automation
    finally:
        delete_automations(name)
        delete_blocks(name)


def _bodies(calls: list[dict]) -> list[Any]:
    """Return what each webhook call carried."""
    return [call["body"] for call in calls]


# ---- exercise 1: a custom event ----


class _Refusals(logging.Handler):
    """Keep the messages of the errors `emit_event` logs instead of raising (it returns None)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            if len(lines) >= 3:  # pydantic: "1 validation error for Event", the field, what was wrong [type=...]
                self.reasons.append(f"{lines[1]}: {lines[2].split(' [type=')[0].removeprefix('Value error, ')}")
            else:
                self.reasons.append(lines[0] if lines else type(error).__name__)


def _emit_quietly(answer: Any, *args: Any) -> list[str]:
    """Call the learner's function; return why `emit_event` refused their events (it logs, and sends nothing)."""
    logger = logging.getLogger("prefect.events.utilities")
    refusals = _Refusals()
    logger.addHandler(refusals)
    previous = logger.propagate
    logger.propagate = False  # the refusal is told in the check's message, not as a logged traceback
    try:
        _call(answer, *args)
    finally:
        logger.propagate = previous
        logger.removeHandler(refusals)
    return refusals.reasons


def _grade_shipment(answer: Any) -> str:
    order_id = 4711
    since = datetime.now(UTC)
    refused = _emit_quietly(answer, order_id, "DHL")
    if refused:
        raise CheckFailed(
            f"emit_event refused your event and sent nothing: {refused[0]}. A resource is a dict naming it with "
            "'prefect.resource.id'; each related resource also has a 'prefect.resource.role'"
        )
    found = read_events(since, names=["ex12.order.shipped"], expected=1, timeout=5)
    if not found:
        others = [e for e in read_events(since, expected=1, timeout=0) if not e.event.startswith("prefect.")]
        seen = ", ".join(f"{e.event!r} about {e.resource.id!r}" for e in others) or "none"
        raise CheckFailed(f"the server received no 'ex12.order.shipped' event; events of your own it received: {seen}")
    expect(len(found) == 1, f"the server received {len(found)} 'ex12.order.shipped' events; emit one per call")
    [event] = found
    expected_id = f"ex12.order.{order_id}"
    expect(
        event.resource.id == expected_id,
        f"the event is about {event.resource.id!r}; expected {expected_id!r} (the order's id in the resource id)",
    )
    name = event.resource.get("prefect.resource.name")
    expect(
        name == f"order {order_id}",
        f"the resource's name is {name!r}; expected 'order {order_id}' (the label prefect.resource.name)",
    )
    customers = [r for r in event.related if r.role == "customer"]
    expect(
        [r.id for r in customers] == ["ex12.customer.ada"],
        f"related resources in the role 'customer': {[r.id for r in customers]}; expected ['ex12.customer.ada'] "
        "(related=[{'prefect.resource.id': ..., 'prefect.resource.role': 'customer'}])",
    )
    expect(
        event.payload == {"carrier": "DHL"},
        f"the payload is {event.payload!r}; expected {{'carrier': 'DHL'}}: the carrier goes in payload=, not in the "
        "resource's labels",
    )
    return f"The server received 'ex12.order.shipped' about {expected_id} (order {order_id}), for ada, by DHL."


# ---- exercise 2: alert on failures ----


def _expects_failed(automation: Automation) -> None:
    """Fail with the fix when the trigger does not expect the exact event name `prefect.flow-run.Failed`."""
    expected = getattr(automation.trigger, "expect", set())
    near = sorted(e for e in expected if e.lower() == "prefect.flow-run.failed" and e != "prefect.flow-run.Failed")
    expect(
        not near,
        f"the trigger expects {near}: event names are case-sensitive, and the state's is 'prefect.flow-run.Failed'",
    )


def _grade_alert(answer: Any) -> str:
    with _automation_from(answer, "ex12-alert") as (api, automation):
        _expects_failed(automation)
        since = datetime.now(UTC)
        _, failed = run_flow(nightly, True)
        run_flow(nightly, False)
        run_flow(other_job)
        calls = hook_calls(api, "ex12-alert", since, expected=2, timeout=ACTION_LATENCY_S)
    with get_client(sync_client=True) as client:
        failed_name = client.read_flow_run(failed.state_details.flow_run_id).name
    expect(
        calls,
        "the webhook was never called after a run of ex12-nightly failed. Compare the trigger with the event: "
        "expect={'prefect.flow-run.Failed'}; the run's flow is a related resource (role 'flow', name "
        "'ex12-nightly'): match_related, since the run itself is named like 'brave-fox'",
    )
    expect(
        len(calls) == 1,
        f"the webhook was called {len(calls)} times ({_bodies(calls)}) for one failed run of ex12-nightly among three "
        "runs: a completed run of it and a failed run of ex12-other count too. Expect only Failed, and match the "
        "flow with match_related",
    )
    body = calls[0]["body"]
    expect(
        isinstance(body, dict) and body.get("run") == failed_name,
        f"the webhook received {short(body)}; expected JSON with 'run': {failed_name!r}, the failed run's name "
        '(payload=\'{"run": "{{ flow_run.name }}"}\')',
    )
    return f"One call for the failed run {failed_name!r} of ex12-nightly, none for the others: {body}."


# ---- exercise 3: thresholds per customer ----


def _grade_declines(answer: Any) -> str:
    with _automation_from(answer, "ex12-declines") as (api, automation):
        trigger = automation.trigger
        within = getattr(trigger, "within", None)
        expect(
            within == timedelta(seconds=60),
            f"the trigger's window (within) is {within}; expected 60 s: three declines within a minute",
        )
        since = datetime.now(UTC)
        for customer in ["ada", "bob", "ada", "cy", "bob", "bob"]:  # ada 2, bob 3, cy 1
            emit_event("ex12.payment.declined", resource={"prefect.resource.id": f"ex12.customer.{customer}"})
        calls = hook_calls(api, "ex12-declines", since, expected=2, timeout=ACTION_LATENCY_S)
    expect(calls, "the webhook was never called, though bob had 3 declined payments within a second")
    bodies = _bodies(calls)
    expect(
        getattr(trigger, "for_each", None) or bodies == [{"customer": "ex12.customer.bob"}],
        f"the webhook received {bodies}; expected one call, for bob alone (ada had 2 declined, bob 3, cy 1). Without "
        "for_each the trigger counts every customer's events together: the third of anyone's fired it",
    )
    expect(
        len(calls) == 1,
        f"the webhook was called {len(calls)} times ({bodies}); expected once, for bob alone (ada had 2, cy 1): "
        f"the threshold is {getattr(trigger, 'threshold', '?')}",
    )
    expect(
        bodies == [{"customer": "ex12.customer.bob"}],
        f"the webhook received {short(bodies[0])}; expected {{'customer': 'ex12.customer.bob'}}: the triggering "
        'event\'s resource id (payload=\'{"customer": "{{ event.resource.id }}"}\')',
    )
    return "One call, for bob (3 declined within 60 s); none for ada (2) or cy (1)."


# ---- exercise 4: a sequence ----


def _backup(event: str) -> None:
    """Emit one event about the nightly backup."""
    emit_event(event, resource={"prefect.resource.id": "ex12.backup.nightly"})


def _grade_backup(answer: Any) -> str:
    with _automation_from(answer, "ex12-backup") as (api, _):
        since = datetime.now(UTC)
        _backup("ex12.backup.verified")  # an old verification first; a moment later a new backup starts, and
        time.sleep(EVENT_GAP_S)  # nothing is verified after it yet
        _backup("ex12.backup.started")
        too_soon = hook_calls(api, "ex12-backup", since, expected=1, timeout=ACTION_LATENCY_S)
        expect(
            not too_soon,
            "the webhook was called when the backup had started but nothing was verified after it (the only "
            "'verified' came before 'started'): the trigger ignores the order. A CompoundTrigger fires on both in "
            "any order; a SequenceTrigger lists its triggers in the order they must fire",
        )
        verified_at = datetime.now(UTC)
        _backup("ex12.backup.verified")
        calls = hook_calls(api, "ex12-backup", verified_at, expected=2, timeout=ACTION_LATENCY_S)
    expect(
        calls,
        "the webhook was never called, though 'ex12.backup.started' was followed by 'ex12.backup.verified' about "
        "ex12.backup.nightly, within a second",
    )
    expect(len(calls) == 1, f"the webhook was called {len(calls)} times for one verified backup; expected once")
    return "Not called for 'verified' before 'started'; called once when 'verified' followed 'started'."


# ---- exercise 5: a deployment trigger ----

REPORT = "report/ex12-report"


def _forget_report() -> None:
    """Delete the exercise's report deployment, the automations it owns and the runs they created."""
    deployment = read_deployment(REPORT)
    if deployment is None:
        return
    with get_client(sync_client=True) as client:
        for run in deployment_flow_runs(REPORT):
            client.delete_flow_run(run.id)
        client.delete_resource_owned_automations(f"prefect.deployment.{deployment.id}")
        client.delete_deployment(deployment.id)


def _report_deployment(answer: Any) -> Any:
    """Call the learner's function and return the deployment it built, checked to be ex12-report of report."""
    try:
        deployment = _call(answer)
    except ImportError as error:
        if "DeploymentTrigger" in str(error):
            raise CheckFailed(
                "Prefect 2's DeploymentTrigger is called DeploymentEventTrigger in Prefect 3 "
                "(from prefect.events import DeploymentEventTrigger)"
            ) from None
        raise
    except AttributeError as error:
        if "Trigger' object has no attribute" not in str(error):
            raise
        raise CheckFailed(
            f"to_deployment could not use your trigger ({error}): a deployment's triggers are DeploymentEventTrigger "
            "(or DeploymentCompoundTrigger, ...), which carry the automation's name and the run's parameters"
        ) from None
    expect(
        type(deployment).__name__ == "RunnerDeployment",
        f"your function returned {short(deployment)}; return what `report.to_deployment(...)` gives you",
    )
    expect(deployment.full_name == REPORT, f"the deployment is {deployment.full_name!r}; expected {REPORT!r}")
    expect(
        deployment.triggers,
        "the deployment has no trigger: pass triggers=[DeploymentEventTrigger(...)] to to_deployment",
    )
    return deployment


def _grade_chain(answer: Any) -> str:
    api = _api()
    deployment = _report_deployment(answer)
    _forget_report()
    try:
        deployment.apply(_sync=True)
        wait_until_active(api, PREFIX)
        since = datetime.now(UTC)
        _, upstream = run_flow(extract, 2)
        run_flow(clean_up_flow, "not a trigger")  # another flow completing must not start report
        if _runs_after(since, 1, ACTION_LATENCY_S):  # the first run as soon as it appears,
            time.sleep(ACTION_LATENCY_S)  # then any more a wrong trigger would create
        created = _runs_after(since, 0, 0)
        with get_client(sync_client=True) as client:
            upstream_name = client.read_flow_run(upstream.state_details.flow_run_id).name
    finally:
        _forget_report()
    expect(
        created,
        "no run of ex12-report was created when a run of the flow extract completed. The check runs extract here, "
        "without a deployment: its Completed event is related to the flow (role 'flow', name 'extract'), not to a "
        "deployment",
    )
    expect(
        len(created) == 1,
        f"{len(created)} runs of ex12-report were created for one completed run of extract (with "
        f"{[r.parameters for r in created]}): expect only prefect.flow-run.Completed, from the flow extract",
    )
    [run] = created
    expect(
        run.parameters == {"source": upstream_name},
        f"the report run got parameters {run.parameters}; expected {{'source': {upstream_name!r}}}, the name of the "
        "run that completed: parameters={'source': '{{ event.resource.name }}'} on the DeploymentEventTrigger "
        "('{{ event.resource.id }}' is the run's id)",
    )
    return f"extract's run {upstream_name!r} completed; the trigger created one report run, source={upstream_name!r}."


def _runs_after(since: datetime, at_least: int, timeout: float) -> list[Any]:
    """Return the report runs created since `since`, waiting up to `timeout` s for `at_least` of them."""

    def read() -> list[Any]:
        return deployment_flow_runs(REPORT, since) if read_deployment(REPORT) else []

    try:
        return poll_until(read, lambda runs: len(runs) >= at_least, timeout, str)
    except TimeoutError:
        return read()


# ---- exercise 6: cancel a running deployment run ----

LONG = "long-job/ex12-long"
_SERVING: list[ServeProcess] = []


def _serving() -> ServeProcess:
    """Return the serve process of the long job, started on first use and reused by later checks."""
    if _SERVING and _SERVING[0].running:
        return _SERVING[0]
    _SERVING.clear()
    _SERVING.append(serve_deployments(DeploymentSpec("event_jobs.py:long_job", "ex12-long"), limit=2))
    return _SERVING[0]


def _kill_leftovers(serving: ServeProcess) -> None:
    """Kill the flow-run processes a wrong answer left running (and marked nothing)."""
    for pid in serving.flow_run_pids():
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            continue


def _state_of(flow_run_id: UUID) -> str | None:
    """Return the run's state name, or None if the run no longer exists."""
    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(flow_run_id).state_name
        except ObjectNotFound:
            return None


def _eventually(read: Any, done: Any, timeout: float) -> Any:
    """Return `read()` once `done` holds for it, or whatever it returns after `timeout` s."""
    try:
        return poll_until(read, done, timeout, str)
    except TimeoutError:
        return read()


def _grade_cancel(answer: Any) -> str:
    api = _api()
    serving = _serving()
    delete_limit("ex12-gpu")  # a fresh limit: slots a wrong answer left taken stay with the old one
    ensure_limit("ex12-gpu", 5)
    since = datetime.now(UTC)
    parameters = {"seconds": 60, "hook_url": api.hook_url("ex12-cancel"), "limit": "ex12-gpu"}
    flow_run = run_deployment(LONG, parameters=parameters, timeout=0, _sync=True)
    try:
        poll_until(lambda: _state_of(flow_run.id), lambda state: state == "Running", 60, str)
        poll_until(lambda: read_limit("ex12-gpu").active_slots, lambda n: n == 1, 10, str)
        _call(answer, flow_run.id)
        state = _eventually(lambda: _state_of(flow_run.id), lambda state: state != "Running", 15)
        state = _eventually(lambda: _state_of(flow_run.id), lambda state: state != "Cancelling", 20)
        # a cancelled run's process stops before its state is Cancelled (the hooks run in between); a run marked
        # Cancelled or deleted by hand keeps its process: a short wait tells the two apart
        stopped = state != "Running"
        processes = _eventually(lambda: len(serving.flow_run_pids()), lambda count: count == 0, 3 if stopped else 0)
        calls = hook_calls(api, "ex12-cancel", since, expected=1, timeout=1)
        slots = read_limit("ex12-gpu").active_slots
    finally:
        _kill_leftovers(serving)
    expect(
        state is not None,
        "the run is gone from the server, but its process ran on (killed by the check): deleting a run does not stop "
        "it. Ask for cancellation: set the state Cancelling",
    )
    expect(
        state != "Running",
        "the run was still Running 15 s after your function returned: nothing asked the server to cancel it. "
        "In a notebook the client's set_flow_run_state returns a coroutine: await it",
    )
    expect(
        processes == 0 and calls,
        f"the server says {state}, but the run's process ran on (killed by the check), its on_cancellation hook "
        f"never ran and it held its slot ({slots} taken): you wrote the final state yourself, and nobody stopped the "
        "run. Set the state Cancelling: the serve process then stops the run, runs its hooks and records Cancelled",
    )
    expect(state == "Cancelled", f"the run ended {state}; expected Cancelled")
    expect(slots == 0, f"{slots} slot(s) of ex12-gpu still taken after the cancellation; expected 0")
    return (
        f"Cancelled: the serve process stopped the run's process, its hook said {calls[0]['body']['hook']!r}, and "
        "its slot is free."
    )


def clean_up() -> int:
    """Stop the exercises' serve process and delete every ex12-... object; return how many serve processes ran."""
    running = sum(1 for serving in _SERVING if serving.running)
    for serving in _SERVING:
        serving.stop()
    _SERVING.clear()
    remove_lesson_objects(PREFIX)
    return running


EXERCISES = ExerciseSet(
    pair="12",
    title="Events and automations",
    exercises=[
        Exercise(
            1,
            "emit a custom event",
            _grade_shipment,
            hints=[
                "`emit_event(name, resource={...}, related=[...], payload={...})`; a resource is a dict whose "
                "'prefect.resource.id' names it, and 'prefect.resource.name' gives it a name.",
                "Each related resource needs 'prefect.resource.id' and 'prefect.resource.role' ('customer'); the "
                "carrier goes in payload={'carrier': carrier}.",
            ],
            solution=[report_shipment],
            answer=lambda: report_shipment,
        ),
        Exercise(
            2,
            "a webhook call when a flow's run fails",
            _grade_alert,
            hints=[
                "`Automation(name=..., trigger=EventTrigger(...), actions=[CallWebhook(block_document_id=block_id, "
                "payload=...)])`, then `return await automation.create()` (from prefect.automations).",
                "expect={'prefect.flow-run.Failed'}, match={'prefect.resource.id': 'prefect.flow-run.*'}, and the flow "
                "by its related resource: match_related={'prefect.resource.role': 'flow', 'prefect.resource.name': "
                "'ex12-nightly'}. payload='{\"run\": \"{{ flow_run.name }}\"}'.",
            ],
            solution=[alert_on_failure],
            answer=lambda: alert_on_failure,
        ),
        Exercise(
            3,
            "three declined payments per customer within a minute",
            _grade_declines,
            hints=[
                "EventTrigger takes threshold=3 and within=timedelta(seconds=60); for_each={'prefect.resource.id'} "
                "counts each customer (each event's resource) on its own.",
                "match={'prefect.resource.id': 'ex12.customer.*'}; payload='{\"customer\": \"{{ event.resource.id "
                "}}\"}'.",
            ],
            solution=[alert_on_declines],
            answer=lambda: alert_on_declines,
        ),
        Exercise(
            4,
            "started, then verified: a sequence",
            _grade_backup,
            hints=[
                "A SequenceTrigger(triggers=[first, second], within=...) fires when its triggers fire in that order; "
                "a CompoundTrigger ignores the order.",
                "Each trigger is an EventTrigger(expect={...}, match={'prefect.resource.id': 'ex12.backup.nightly'}).",
            ],
            solution=[alert_on_verified_backup],
            answer=lambda: alert_on_verified_backup,
        ),
        Exercise(
            5,
            "a deployment trigger: report after extract",
            _grade_chain,
            hints=[
                "`await report.to_deployment('ex12-report', triggers=[DeploymentEventTrigger(...)])`; the trigger "
                "takes expect=, match_related= and parameters=.",
                "The check calls extract here, with no deployment: match_related={'prefect.resource"
                ".role': 'flow', 'prefect.resource.name': 'extract'}; parameters={'source': '{{ event.resource.name "
                "}}'}.",
            ],
            solution=[chained_report],
            answer=lambda: chained_report,
        ),
        Exercise(
            6,
            "cancel a running deployment run",
            _grade_cancel,
            hints=[
                "Cancelling is a request: set the run's state to Cancelling, as `prefect flow-run cancel <id>` does; "
                "the process running it does the rest.",
                "`async with get_client() as client: await client.set_flow_run_state(flow_run_id, Cancelling())` "
                "(from prefect.states import Cancelling).",
            ],
            solution=[cancel],
            answer=lambda: cancel,
        ),
    ],
)
