"""The pair 02 helpers read retry histories (waits and every state) from Prefect and draw the demo API's records."""

import logging
import time

import pytest
from matplotlib.figure import Figure
from prefect import flow, task

from lessons_src.logs import quiet_console
from lessons_src.pairs.p02_retries import (
    RetryHistory,
    arrivals,
    plot_attempts,
    plot_request_counts,
    plot_retry_waits,
    plot_success_curve,
    retry_histories,
)
from lessons_src.tolerances import RETRY_STAMPING_FEW_CLIENTS_S

REQUESTS = [
    {"key": "a", "arrived": 10.3, "status": 200},
    {"key": "a", "arrived": 10.0, "status": 503},
    {"key": "b", "arrived": 10.1, "status": 404},
    {"key": None, "arrived": 10.2, "status": 200},
]


def test_arrivals_are_the_keys_requests_oldest_first():
    assert arrivals(REQUESTS, "a") == [(10.0, 503), (10.3, 200)]
    assert arrivals(REQUESTS, "missing") == []


def test_total_delay_sums_the_scheduled_waits():
    assert RetryHistory("x", "Completed", 3, (0.1, 0.2)).total_delay == pytest.approx(0.3)


def test_plot_attempts_draws_one_row_per_label():
    figure = plot_attempts(REQUESTS, {"first": "a", "second": "b"}, "attempts")
    assert isinstance(figure, Figure)
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["first", "second"]


def test_plot_attempts_needs_logged_requests():
    with pytest.raises(ValueError, match="no request"):
        plot_attempts(REQUESTS, {"none": "missing"}, "attempts")


def test_other_plots_return_figures():
    assert isinstance(plot_success_curve([0, 1], [0.5, 0.8], [0.5, 0.75], 40, "curve"), Figure)
    assert isinstance(plot_retry_waits({"no jitter": [0.2, 0.2], "jitter": [0.1, 0.3]}, "waits"), Figure)
    counts = {"plain": {"404": 3, "503": 2}, "condition": {"404": 1, "503": 2}}
    figure = plot_request_counts(counts, "counts")
    assert "5 requests" in [text.get_text() for text in figure.axes[0].texts]


_failures_left = {"count": 0}


@task(retries=2, retry_delay_seconds=[0.05, 0.1], task_run_name="fails-twice")
def fails_twice() -> str:
    if _failures_left["count"] > 0:
        _failures_left["count"] -= 1
        raise RuntimeError("not yet")
    return "ok"


@flow
def one_retried_task() -> str:
    return fails_twice()


def test_retry_histories_reads_the_scheduled_waits(course_server):
    _failures_left["count"] = 2
    with quiet_console(logging.CRITICAL):
        state = one_retried_task(return_state=True)
    history = retry_histories(state, expected=1)["fails-twice"]
    assert history.state == "Completed" and history.run_count == 3
    assert history.retry_delays == pytest.approx((0.05, 0.1), abs=RETRY_STAMPING_FEW_CLIENTS_S)
    assert history.states == (
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed"
    )  # fmt: skip


@task(timeout_seconds=0.2, retries=1, retry_delay_seconds=0.05, task_run_name="times-out")
def times_out() -> None:
    time.sleep(1.0)  # called directly in a sync flow, so it runs in the main thread, where it can be interrupted


@flow
def one_timed_out_task() -> None:
    times_out(return_state=True)


def test_a_timed_out_attempt_with_a_retry_left_is_not_recorded_timed_out(course_server):
    with quiet_console(logging.CRITICAL):
        state = one_timed_out_task(return_state=True)
    history = retry_histories(state, expected=1)["times-out"]
    assert history.states == ("Pending", "Running", "AwaitingRetry", "Retrying", "TimedOut"), history
    assert history.run_count == 2
