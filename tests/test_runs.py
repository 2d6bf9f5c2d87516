import time
import uuid

import pytest
from prefect import flow, task

from lessons_src.runs import flow_run_id_of, flow_run_logs, peak_overlap, read_flow_run, recorded_events, task_runs
from lessons_src.tolerances import EVENTS_QUIET_S


@task
def nap(i: int) -> int:
    time.sleep(0.2)
    return i


@task
def explode() -> None:
    raise ValueError("boom")


@flow(log_prints=True)
def fan_out(n: int) -> list[int]:
    print(f"fanning out {n}")
    return [f.result() for f in nap.map(range(n))]


@flow
def partly_failing() -> str:
    explode.submit().wait()
    nap(1)
    return "done"


def test_task_runs_are_read_back_with_times_states_and_overlap(course_server):
    state = fan_out(4, return_state=True)
    runs = task_runs(state, expected=4)
    assert len(runs) == 4
    assert all(r.state == "Completed" and r.seconds and r.seconds >= 0.19 for r in runs)
    assert [r.start for r in runs] == sorted(r.start for r in runs)
    assert peak_overlap(runs) >= 2
    assert read_flow_run(state).state_name == "Completed"
    assert any("fanning out 4" in m for m in flow_run_logs(state, contains="fanning out 4"))


def test_failed_task_runs_keep_their_state(course_server):
    state = partly_failing(return_state=True)
    assert sorted(r.state for r in task_runs(state, expected=2)) == ["Completed", "Failed"]


def test_sequential_runs_do_not_overlap():
    from datetime import UTC, datetime, timedelta

    from lessons_src.runs import TaskRunRecord

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        TaskRunRecord("a", "a", "Completed", t0 + timedelta(seconds=i), t0 + timedelta(seconds=i + 1), 1, ())
        for i in range(3)
    ]
    assert peak_overlap(runs) == 1


def test_flow_run_id_of_accepts_ids_and_explains_wrong_types():
    run_id = uuid.uuid4()
    assert flow_run_id_of(run_id) == run_id
    assert flow_run_id_of(str(run_id)) == run_id
    with pytest.raises(TypeError, match="return_state=True"):
        flow_run_id_of(42)


def test_span_covers_first_start_to_last_end_and_needs_timed_runs():
    from datetime import UTC, datetime, timedelta

    from lessons_src.runs import TaskRunRecord, span_seconds

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        TaskRunRecord("a", "a", "Completed", t0, t0 + timedelta(seconds=1), 1, ()),
        TaskRunRecord("b", "b", "Completed", t0 + timedelta(seconds=0.5), t0 + timedelta(seconds=2.5), 1, ()),
    ]
    assert span_seconds(runs) == 2.5
    with pytest.raises(ValueError, match="start and an end"):
        span_seconds([TaskRunRecord("c", "c", "Pending", None, None, 0, ())])


def test_poll_until_returns_the_first_settled_value_and_times_out_with_the_reason():
    from lessons_src.runs import poll_until

    values = iter([1, 2, 3, 4])
    assert poll_until(lambda: next(values), lambda v: v >= 3, timeout=5, why=str) == 3
    with pytest.raises(TimeoutError, match="still 0"):
        poll_until(lambda: 0, lambda v: v > 0, timeout=0.2, why=lambda v: f"still {v}")


def test_without_a_count_the_reader_waits_until_the_records_stop_changing(course_server):
    from lessons_src.tolerances import RECORDING_QUIET_S

    state = fan_out(4, return_state=True)
    started = time.monotonic()
    runs = task_runs(state)  # right after the flow returned: the records may still be on their way
    assert len(runs) == 4, f"read {len(runs)} task runs without a count; expected all 4 once the list stood still"
    assert time.monotonic() - started >= RECORDING_QUIET_S


def test_or_fewer_returns_what_is_recorded_instead_of_raising(course_server):
    state = partly_failing(return_state=True)
    runs = task_runs(state, expected=5, timeout=1.0, or_fewer=True)
    assert len(runs) == 2, f"{len(runs)} task runs; the flow made 2"
    with pytest.raises(TimeoutError, match="2 task runs recorded"):
        task_runs(state, expected=5, timeout=1.0)


def test_recorded_events_waits_for_the_expected_count_and_returns_fewer_after_the_timeout(course_server):
    from datetime import UTC, datetime

    from prefect.events import emit_event

    since, resource = datetime.now(UTC), f"course.test.{uuid.uuid4().hex}"
    for _ in range(3):
        emit_event("course.test.ping", resource={"prefect.resource.id": resource})
    found = recorded_events("course.test.ping", resource, since, expected=3, timeout=15)
    assert len(found) == 3, f"{len(found)} of 3 emitted events recorded within 15 s"
    assert recorded_events("course.test.ping", resource, since, expected=4, timeout=0.5) == found
    started = time.monotonic()
    assert recorded_events("course.test.other", resource, since, expected=1, timeout=30) == []
    waited = time.monotonic() - started
    assert EVENTS_QUIET_S <= waited < 10, f"waited {waited:.1f} s for events that never come; expected about 3 s"


def test_unchanged_for_is_true_only_once_a_value_has_held_that_long():
    from lessons_src.runs import unchanged_for

    steady = unchanged_for(0.3)
    assert not steady(1), "a value just seen has not held yet"
    time.sleep(0.35)
    assert steady(1), "the same value for 0.35 s has held for 0.3 s"
    assert not steady(2), "a new value starts the wait again"


def test_recorded_events_finds_events_that_occur_while_it_waits(course_server):
    """EventOccurredFilter's `until` defaults to when the filter is built: a filter built once would miss these."""
    import threading
    from datetime import UTC, datetime

    from prefect.events import emit_event

    since, resource = datetime.now(UTC), f"course.test.{uuid.uuid4().hex}"
    later = threading.Timer(1.0, lambda: emit_event("course.test.late", resource={"prefect.resource.id": resource}))
    later.start()
    found = recorded_events("course.test.late", resource, since, expected=1, timeout=15)
    later.join()
    assert len(found) == 1, f"{len(found)} events found; expected the one emitted 1 s after the wait began"
