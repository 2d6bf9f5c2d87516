"""Pair 12's checks grade what the server recorded, reject near misses with a message naming what arrived, and accept
right answers written otherwise.

Right answers in other forms pass: resources as Prefect's own objects, a sync function creating with `_sync=True`,
`within` in seconds, an `after` trigger for a sequence, another template for the run's name, and a cancellation made
by `prefect flow-run cancel`. Every answer is graded twice with the same verdict (the automations, runs and webhook
calls the first grading left must not decide the second), and no serve process stays behind.
"""

import subprocess
import sys
from datetime import timedelta

import pytest
from prefect.automations import Automation, CallWebhook, CompoundTrigger, EventTrigger, SequenceTrigger
from prefect.client.orchestration import get_client
from prefect.events import DeploymentEventTrigger, RelatedResource, emit_event
from prefect.states import Cancelled, Cancelling

from lessons_src.exercises import exercises
from lessons_src.exercises.e12_events_and_automations import clean_up, report
from lessons_src.serving import running_serve_processes

EX = exercises("12")
ADA = {"prefect.resource.id": "ex12.customer.ada", "prefect.resource.role": "customer"}
BACKUP = {"prefect.resource.id": "ex12.backup.nightly"}
NIGHTLY_RUNS = {"prefect.resource.id": "prefect.flow-run.*"}
NIGHTLY_FLOW = {"prefect.resource.role": "flow", "prefect.resource.name": "ex12-nightly"}
EXTRACT_FLOW = {"prefect.resource.role": "flow", "prefect.resource.name": "extract"}


@pytest.fixture(scope="module", autouse=True)
def clean_up_after_the_module():
    """Stop the serve process exercise 6's checks started and delete every ex12-... object, then prove it."""
    yield
    clean_up()
    assert running_serve_processes() == []


def _alert(block_id, trigger, payload='{"run": "{{ flow_run.name }}"}'):
    automation = Automation(
        name="ex12-alert", trigger=trigger, actions=[CallWebhook(block_document_id=block_id, payload=payload)]
    )
    return automation.create()


def _declines(block_id, payload='{"customer": "{{ event.resource.id }}"}', **trigger):
    automation = Automation(
        name="ex12-declines",
        trigger=EventTrigger(
            expect={"ex12.payment.declined"}, match={"prefect.resource.id": "ex12.customer.*"}, **trigger
        ),
        actions=[CallWebhook(block_document_id=block_id, payload=payload)],
    )
    return automation.create()


def _backup(block_id, trigger):
    return Automation(name="ex12-backup", trigger=trigger, actions=[CallWebhook(block_document_id=block_id)]).create()


def _started():
    return EventTrigger(expect={"ex12.backup.started"}, match=BACKUP)


def _verified():
    return EventTrigger(expect={"ex12.backup.verified"}, match=BACKUP)


# ---- wrong answers ----


def shipment_resource_as_text(order_id, carrier):
    emit_event("ex12.order.shipped", resource=f"ex12.order.{order_id}", related=[ADA], payload={"carrier": carrier})


def shipment_id_key(order_id, carrier):
    resource = {"id": f"ex12.order.{order_id}", "name": f"order {order_id}"}
    emit_event("ex12.order.shipped", resource=resource, related=[ADA], payload={"carrier": carrier})


def shipment_related_without_role(order_id, carrier):
    resource = {"prefect.resource.id": f"ex12.order.{order_id}", "prefect.resource.name": f"order {order_id}"}
    emit_event("ex12.order.shipped", resource=resource, related=[{"prefect.resource.id": "ex12.customer.ada"}])


def shipment_carrier_as_a_label(order_id, carrier):
    resource = {"prefect.resource.id": f"ex12.order.{order_id}", "prefect.resource.name": f"order {order_id}"}
    emit_event("ex12.order.shipped", resource={**resource, "carrier": carrier}, related=[ADA])


def shipment_misnamed(order_id, carrier):
    resource = {"prefect.resource.id": f"ex12.order.{order_id}", "prefect.resource.name": f"order {order_id}"}
    emit_event("ex12.order.ship", resource=resource, related=[ADA], payload={"carrier": carrier})


def shipment_without_the_order(order_id, carrier):
    resource = {"prefect.resource.id": "ex12.order", "prefect.resource.name": f"order {order_id}"}
    emit_event("ex12.order.shipped", resource=resource, related=[ADA], payload={"carrier": carrier})


def alert_lowercase_failed(block_id):
    return _alert(
        block_id, EventTrigger(expect={"prefect.flow-run.failed"}, match=NIGHTLY_RUNS, match_related=NIGHTLY_FLOW)
    )


def alert_on_any_flow(block_id):
    return _alert(block_id, EventTrigger(expect={"prefect.flow-run.Failed"}, match=NIGHTLY_RUNS))


def alert_on_the_run_name(block_id):
    trigger = EventTrigger(expect={"prefect.flow-run.Failed"}, match={"prefect.resource.name": "ex12-nightly"})
    return _alert(block_id, trigger)


def alert_on_every_state(block_id):
    trigger = EventTrigger(expect={"prefect.flow-run.*"}, match=NIGHTLY_RUNS, match_related=NIGHTLY_FLOW)
    return _alert(block_id, trigger)


def alert_with_a_text_body(block_id):
    trigger = EventTrigger(expect={"prefect.flow-run.Failed"}, match=NIGHTLY_RUNS, match_related=NIGHTLY_FLOW)
    return _alert(block_id, trigger, payload="run {{ flow_run.name }} failed")


def alert_not_awaited(block_id):
    trigger = EventTrigger(expect={"prefect.flow-run.Failed"}, match=NIGHTLY_RUNS, match_related=NIGHTLY_FLOW)
    automation = Automation(name="ex12-alert", trigger=trigger, actions=[CallWebhook(block_document_id=block_id)])
    return automation.create(_sync=False)  # what a plain `def` gets in a notebook: a coroutine


def alert_from_the_bare_schema(block_id):
    from prefect.events import Automation as SchemaOnly  # the schema, not prefect.automations.Automation

    trigger = EventTrigger(expect={"prefect.flow-run.Failed"}, match=NIGHTLY_RUNS, match_related=NIGHTLY_FLOW)
    return SchemaOnly(name="ex12-alert", trigger=trigger, actions=[CallWebhook(block_document_id=block_id)])


def declines_counted_together(block_id):
    return _declines(block_id, threshold=3, within=timedelta(seconds=60))


def declines_threshold_two(block_id):
    return _declines(block_id, for_each={"prefect.resource.id"}, threshold=2, within=timedelta(seconds=60))


def declines_without_a_window(block_id):
    return _declines(block_id, for_each={"prefect.resource.id"}, threshold=3)


def declines_named_customer(block_id):
    payload = '{"customer": "{{ event.resource.name }}"}'
    return _declines(block_id, payload, for_each={"prefect.resource.id"}, threshold=3, within=60)


def backup_compound(block_id):
    return _backup(block_id, CompoundTrigger(triggers=[_started(), _verified()], require="all", within=60))


def backup_reversed_sequence(block_id):
    return _backup(block_id, SequenceTrigger(triggers=[_verified(), _started()], within=60))


def backup_verified_alone(block_id):
    return _backup(block_id, _verified())


async def chain_by_deployment_name():
    trigger = DeploymentEventTrigger(
        expect={"prefect.flow-run.Completed"},
        match_related={"prefect.resource.role": "deployment", "prefect.resource.name": "extract"},
        parameters={"source": "{{ event.resource.name }}"},
    )
    return await report.to_deployment("ex12-report", triggers=[trigger])


async def chain_with_the_run_id():
    trigger = DeploymentEventTrigger(
        expect={"prefect.flow-run.Completed"},
        match_related=EXTRACT_FLOW,
        parameters={"source": "{{ event.resource.id }}"},
    )
    return await report.to_deployment("ex12-report", triggers=[trigger])


async def chain_on_every_state():
    trigger = DeploymentEventTrigger(
        expect={"prefect.flow-run.*"}, match_related=EXTRACT_FLOW, parameters={"source": "{{ event.resource.name }}"}
    )
    return await report.to_deployment("ex12-report", triggers=[trigger])


async def chain_with_a_plain_event_trigger():
    trigger = EventTrigger(
        expect={"prefect.flow-run.Completed"},
        match_related=EXTRACT_FLOW,
        parameters={"source": "{{ event.resource.name }}"},
    )
    return await report.to_deployment("ex12-report", triggers=[trigger])


async def chain_with_prefect_2s_trigger():
    from prefect.events.schemas.deployment_triggers import DeploymentTrigger  # Prefect 2's name

    return await report.to_deployment(
        "ex12-report", triggers=[DeploymentTrigger(expect={"prefect.flow-run.Completed"})]
    )


async def chain_without_a_trigger():
    return await report.to_deployment("ex12-report")


async def cancel_by_forcing_cancelled(flow_run_id):
    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, Cancelled(), force=True)


async def cancel_by_deleting(flow_run_id):
    async with get_client() as client:
        await client.delete_flow_run(flow_run_id)


def cancel_not_awaited(flow_run_id):
    get_client().set_flow_run_state(flow_run_id, Cancelling())  # in a notebook, a coroutine nobody awaits


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, shipment_resource_as_text, "sent nothing: resource: Input should be a valid dictionary"),
        (1, shipment_id_key, "Resources must include the prefect.resource.id label"),
        (1, shipment_related_without_role, "Related Resources must include the prefect.resource.role label"),
        (1, shipment_carrier_as_a_label, "the payload is {}; expected {'carrier': 'DHL'}"),
        (
            1,
            shipment_misnamed,
            "received no 'ex12.order.shipped' event; events of your own it received: 'ex12.order.ship'",
        ),
        (1, shipment_without_the_order, "the event is about 'ex12.order'; expected 'ex12.order.4711'"),
        (2, alert_lowercase_failed, "event names are case-sensitive"),
        (2, alert_on_any_flow, "the webhook was called 2 times"),
        (2, alert_on_the_run_name, "the webhook was never called after a run of ex12-nightly failed"),
        (2, alert_on_every_state, "for one failed run of ex12-nightly among three runs"),
        (2, alert_with_a_text_body, "the webhook received 'run "),
        (2, alert_not_awaited, "returned a coroutine"),
        (2, alert_from_the_bare_schema, "import Automation from prefect.automations"),
        (3, declines_counted_together, "Without for_each the trigger counts every customer's events together"),
        (3, declines_threshold_two, "the threshold is 2"),
        (3, declines_without_a_window, "the trigger's window (within) is 0:00:00; expected 60 s"),
        (3, declines_named_customer, "expected {'customer': 'ex12.customer.bob'}"),
        (4, backup_compound, "the trigger ignores the order"),
        (4, backup_reversed_sequence, "the trigger ignores the order"),
        (4, backup_verified_alone, "the trigger ignores the order"),
        (5, chain_by_deployment_name, "no run of ex12-report was created"),
        (5, chain_with_the_run_id, "('{{ event.resource.id }}' is the run's id)"),
        (5, chain_on_every_state, "3 runs of ex12-report were created"),
        (5, chain_with_a_plain_event_trigger, "a deployment's triggers are DeploymentEventTrigger"),
        (5, chain_with_prefect_2s_trigger, "is called DeploymentEventTrigger in Prefect 3"),
        (5, chain_without_a_trigger, "the deployment has no trigger"),
        (6, cancel_by_forcing_cancelled, "you wrote the final state yourself"),
        (6, cancel_by_deleting, "the run is gone from the server"),
        (6, cancel_not_awaited, "still Running 15 s after your function returned"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")  # cancel_not_awaited's, on purpose
def test_wrong_answers_are_rejected_twice_alike(graded, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


# ---- right answers, written differently from the reference ----


def shipment_with_prefect_objects(order_id, carrier):
    return emit_event(
        event="ex12.order.shipped",
        resource={
            "prefect.resource.id": f"ex12.order.{order_id}",
            "prefect.resource.name": f"order {order_id}",
            "x": "1",
        },
        related=[RelatedResource(root=ADA)],
        payload=dict(carrier=carrier),
    )


def alert_created_synchronously(block_id):
    trigger = EventTrigger(expect=["prefect.flow-run.Failed"], match_related=NIGHTLY_FLOW, posture="Reactive")
    automation = Automation(
        name="ex12-alert",
        trigger=trigger,
        actions=[CallWebhook(block_document_id=block_id, payload='{"run": "{{ event.resource.name }}"}')],
    )
    return automation.create(_sync=True)


async def declines_within_seconds(block_id):
    return await Automation(
        name="ex12-declines",
        trigger=EventTrigger(
            expect={"ex12.payment.declined"},
            for_each=["prefect.resource.id"],
            threshold=3,
            within=60,
            posture="Reactive",
        ),
        actions=[CallWebhook(block_document_id=block_id, payload='{"customer": "{{ event.resource.id }}"}')],
    ).acreate()


async def backup_with_after(block_id):
    trigger = EventTrigger(after={"ex12.backup.started"}, expect={"ex12.backup.verified"}, match=BACKUP, within=60)
    return await Automation(
        name="ex12-backup", trigger=trigger, actions=[CallWebhook(block_document_id=block_id)]
    ).acreate()


def chain_with_the_flow_run_template():
    trigger = DeploymentEventTrigger(
        name="ex12-after-extract",
        expect={"prefect.flow-run.Completed"},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=[EXTRACT_FLOW],
        parameters={"source": "{{ flow_run.name }}"},
    )
    return report.to_deployment("ex12-report", triggers=[trigger], _sync=True)


def cancel_from_the_command_line(flow_run_id):
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "flow-run", "cancel", str(flow_run_id)], capture_output=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, shipment_with_prefect_objects),
        (2, alert_created_synchronously),
        (3, declines_within_seconds),
        (4, backup_with_after),
        (5, chain_with_the_flow_run_template),
        (6, cancel_from_the_command_line),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome
