"""Pair 03 helpers: state histories and task runs (NotReady included) as recorded; waiting for demo API requests."""

import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from prefect import flow, task

from lessons_src.pairs.p03_error_handling_and_states import (
    flow_run_history,
    state_counts,
    task_run_histories,
    wait_for_requests,
)
from lessons_src.runs import TaskRunRecord, task_runs

ATTEMPTS: dict[str, int] = {}


@task(retries=1, retry_delay_seconds=0)
def fails_once(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise RuntimeError("first attempt fails")
    return key


@task
def always_fails() -> int:
    raise RuntimeError("upstream fails")


@task
def downstream(value: int) -> int:
    return value


@flow
def retried_once(key: str) -> str:
    return fails_once(key)


@flow
def upstream_fails() -> str:
    upstream = always_fails.submit()
    blocked = downstream.submit(upstream)
    blocked.wait()
    return blocked.state.name


def test_histories_show_every_state(course_server):
    state = retried_once("histories", return_state=True)
    assert flow_run_history(state) == ["Pending", "Running", "Completed"]
    (history,) = task_run_histories(state).values()
    assert history[-1] == "Completed" and "Retrying" in history


def test_task_runs_count_not_ready_as_settled(course_server):
    state = upstream_fails(return_state=True)
    assert state.result(_sync=True) == "NotReady"
    records = task_runs(state, expected=2)
    assert sorted(r.state for r in records) == ["Failed", "NotReady"]


def _record(state: str) -> TaskRunRecord:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return TaskRunRecord("t", "k", state, start, start + timedelta(seconds=1), 1, ())


def test_state_counts_most_common_first():
    counts = state_counts([_record("Failed"), _record("Completed"), _record("Completed")])
    assert counts == {"Completed": 2, "Failed": 1} and list(counts) == ["Completed", "Failed"]


def test_readers_reject_what_is_not_a_run():
    with pytest.raises(TypeError, match="return_state=True"):
        flow_run_history(42)


class _CountingAPI:
    """Stands in for the demo API: each stats() call reports the next request total."""

    def __init__(self, totals) -> None:
        self.totals = iter(totals)

    def stats(self) -> SimpleNamespace:
        return SimpleNamespace(total=next(self.totals))


def test_wait_for_requests_returns_once_enough_arrived():
    assert wait_for_requests(_CountingAPI([0, 1, 3]), 3, timeout=5) == 3


def test_wait_for_requests_says_how_many_arrived_when_it_gives_up():
    with pytest.raises(TimeoutError, match="received 1 of 3 requests"):
        wait_for_requests(_CountingAPI(itertools.repeat(1)), 3, timeout=0.2)
