"""Exercises for pair 02 (retries): graders read Prefect's task-run records and the demo API's calls per key."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any
from uuid import uuid4

import httpx
from prefect import Task, flow, task
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from lessons_src.checks import (
    CheckFailed,
    Exercise,
    ExerciseSet,
    expect,
    require_solved,
    require_task,
    run_flow,
    short,
)
from lessons_src.demo_api import DemoAPI, start_demo_api
from lessons_src.logs import quiet_console
from lessons_src.retry_demo import RetryHistory, retry_histories
from lessons_src.runs import task_runs

http = httpx.Client(timeout=2.0)

# ---- reference solutions (shown by ex.solution(n)) ----


def survive_options() -> dict:
    return {"retries": 2, "retry_delay_seconds": 0.1}


def backoff_options() -> dict:
    return {"retries": 4, "retry_delay_seconds": exponential_backoff(backoff_factor=0.05)}


def retry_transient(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False)
    if isinstance(error, httpx.TimeoutException):
        return True
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return status >= 500 or status == 429
    return False


def jitter_options() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0.2, "retry_jitter_factor": 1.0}


@task(retries=2, retry_delay_seconds=0.05)
def pay(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    headers = {"Idempotency-Key": payment_id}  # the same key on every attempt of this payment
    response = http.post(url, json={"order_id": order_id, "amount": amount}, headers=headers)
    response.raise_for_status()
    return response.json()


# ---- graders ----

RETRY_OPTIONS = ("retries", "retry_delay_seconds", "retry_jitter_factor", "retry_condition_fn")
TOLERANCE_S = 0.02  # Prefect stamps a retry's state and its scheduled time a few milliseconds apart


@task
def fetch_weather(url: str) -> dict:
    """The task the checks of exercises 1, 2 and 4 put your retry options on."""
    response = http.get(url)
    response.raise_for_status()
    return response.json()


@task
def fetch_weather_fast(url: str) -> dict:
    """The task the check of exercise 3 runs with your retry_condition_fn: its client waits only 0.1 s."""
    response = http.get(url, timeout=0.1)
    response.raise_for_status()
    return response.json()


def _api() -> DemoAPI:
    return start_demo_api()


def _key(label: str) -> str:
    """Return a key no earlier check used, so the demo API counts this check's calls from zero."""
    return f"ex02-{label}-{uuid4().hex[:8]}"


def _run_quietly(checked_flow: Any) -> tuple[Any, Any]:
    """Run a check's flow with Prefect's console logs hidden (the server still stores them)."""
    with quiet_console(logging.CRITICAL):
        return run_flow(checked_flow)


def _configured_waits(options: Mapping[str, Any]) -> list[float]:
    """Return the wait before each retry that these options configure (before any jitter)."""
    retries = options.get("retries", 0)
    delay = options.get("retry_delay_seconds", 0)
    if callable(delay):
        delay = delay(retries)
    if isinstance(delay, int | float):
        return [float(delay)] * retries
    waits = [float(d) for d in delay]
    return [waits[min(i, len(waits) - 1)] for i in range(retries)] if waits else [0.0] * retries


def _options(answer: Any) -> dict:
    """Return the options dict a learner's function returns (or the dict itself), stopping if it holds TODO."""
    options = answer() if callable(answer) else answer
    expect(isinstance(options, dict), f"the function should return a dict of task options, not {short(options)}")
    return require_solved(options)


def _task_with(options: dict, longest_total_wait: float = 2.0) -> Task:
    """Return fetch_weather with the learner's retry options, or fail saying which option is wrong."""
    expect(isinstance(options, dict), f"the answer should be a dict of task options, not {type(options).__name__}")
    unknown = sorted(set(options) - set(RETRY_OPTIONS))
    expect(
        not unknown,
        f"{', '.join(unknown)} is not a retry option of a Prefect 3 task; use {', '.join(RETRY_OPTIONS[:3])}",
    )
    retries = options.get("retries")
    expect(
        isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0,
        f"retries should be a whole number, got {short(retries)}",
    )
    waits = _configured_waits(options)
    jitter = options.get("retry_jitter_factor") or 0.0
    expect(
        sum(waits) * (1 + jitter) <= longest_total_wait,
        f"these options can wait up to {sum(waits) * (1 + jitter):.2f} s in all; scale the waits down for the "
        f"classroom (at most {longest_total_wait:g} s in total here)",
    )
    return fetch_weather.with_options(**options)


def _single_call(configured: Task, url: str) -> RetryHistory:
    """Run one call of `configured` in a flow and return its retry history as Prefect recorded it."""

    @flow(name="ex02-one-call")
    def one_call() -> None:
        configured.with_options(task_run_name="call")(url, return_state=True)

    _, state = _run_quietly(one_call)
    return retry_histories(state, expected=1)["call"]


def _grade_survive(answer: Any) -> str:
    configured = _task_with(_options(answer))
    key = _key("survive")
    history = _single_call(configured, _api().url_for("/weather/oslo", fail_first=2, key=key))
    calls = _api().stats().attempts(key)
    expect(
        history.state == "Completed",
        f"the task run ended {history.state} after {history.run_count} attempts ({calls} calls reached the "
        "service), and the service fails the first 2 calls: allow enough retries for a third attempt",
    )
    expect(
        len(history.retry_delays) == history.run_count - 1 and min(history.retry_delays) >= 0.05 - TOLERANCE_S,
        f"Prefect retried without waiting (scheduled waits {list(history.retry_delays)}); give the service a "
        "moment between attempts with retry_delay_seconds (0.05 s or more)",
    )
    return (
        f"Completed on attempt {history.run_count} (run_count), the service received {calls} calls, and Prefect "
        f"waited {list(history.retry_delays)} s between them."
    )


def _grade_backoff(answer: Any) -> str:
    options = _options(answer)
    expect(
        not options.get("retry_jitter_factor"),
        "leave jitter out of this one (exercise 4 adds it): with jitter the waits may not grow",
    )
    configured = _task_with(options)
    key = _key("backoff")
    history = _single_call(configured, _api().url_for("/weather/oslo", fail_first=4, key=key))
    waits = list(history.retry_delays)
    expect(
        history.state == "Completed",
        f"the task run ended {history.state} after {history.run_count} attempts; the service fails its first 4 "
        "calls, so the fifth must be allowed",
    )
    expect(bool(waits) and waits[0] >= 0.05 - TOLERANCE_S, f"the first wait was {waits[:1]} s; make it 0.05 s or more")
    expect(
        all(later >= earlier - TOLERANCE_S for earlier, later in zip(waits, waits[1:], strict=False))
        and waits[-1] > waits[0],
        f"Prefect waited {waits} s: the waits should grow (a rising list or exponential_backoff), not stay equal",
    )
    expect(
        sum(waits) <= 1.0 + TOLERANCE_S,
        f"Prefect waited {sum(waits):.2f} s in all ({waits}); the budget is 1.0 s: start smaller or grow slower",
    )
    return f"Completed on attempt {history.run_count}; Prefect waited {waits} s, {sum(waits):.2f} s in all."


CONDITION_CASES = {
    "502 once": ({"fail_first": 1, "fail_status": 502}, 2),
    "503 twice": ({"fail_first": 2}, 3),
    "time-out": ({"delay": 0.3}, 3),
    "404": ({"status": 404}, 1),
    "400": ({"status": 400}, 1),
}


def _asks_for_429(condition: Callable[..., Any]) -> bool:
    """Call the condition as Prefect would after a 429 answer, with the same kind of Failed state Prefect builds."""
    request = httpx.Request("GET", "http://demo.invalid/weather/oslo")
    error = httpx.HTTPStatusError(
        "429 Too Many Requests", request=request, response=httpx.Response(429, request=request)
    )
    return bool(condition(fetch_weather_fast, None, Failed(data=error, message="Task run encountered an exception")))


def _grade_condition(answer: Any) -> str:
    expect(callable(answer), f"the answer should be a function, not {type(answer).__name__}")
    keys = {case: _key(case.replace(" ", "-")) for case in CONDITION_CASES}
    configured = fetch_weather_fast.with_options(retries=2, retry_delay_seconds=0.05, retry_condition_fn=answer)

    @flow(name="ex02-which-failures", task_runner=ThreadPoolTaskRunner(max_workers=len(CONDITION_CASES)))
    def which_failures() -> bool:
        futures = [
            configured.with_options(task_run_name=case).submit(
                _api().url_for("/weather/berlin", key=keys[case], **behaviour)
            )
            for case, (behaviour, _) in CONDITION_CASES.items()
        ]
        for future in futures:
            future.wait()
        return _asks_for_429(answer)  # inside the flow, as in Prefect's engine, state.result() returns a value

    retries_429, state = _run_quietly(which_failures)
    task_runs(state, expected=len(CONDITION_CASES))
    stats = _api().stats()
    calls = {case: stats.attempts(keys[case]) for case in CONDITION_CASES}
    signature_hint = ""
    if len(inspect.signature(answer).parameters) != 3:
        signature_hint = " Prefect calls it as fn(task, task_run, state): a different signature is an error, and "
        signature_hint += "Prefect treats an error as 'do not retry'."
    for case, (_, expected) in CONDITION_CASES.items():
        if calls[case] == expected:
            continue
        if expected == 1:
            raise CheckFailed(
                f"the {case} call reached the service {calls[case]} times: a 4xx answer will not change on retry, "
                "so your function should return False for it"
            )
        raise CheckFailed(
            f"the {case} call reached the service {calls[case]} time(s), expected {expected}: your function should "
            f"return True for it (5xx answers and httpx.TimeoutException are worth retrying).{signature_hint}"
        )
    expect(
        retries_429 is True,
        "your function returned False for a 429 Too Many Requests answer; a 429 means 'slow down and retry'",
    )
    return f"the service received {calls}: 5xx and time-outs retried, 4xx not, and 429 would be retried."


JITTER_CLIENTS = 10


def _grade_jitter(answer: Any) -> str:
    configured = _task_with(_options(answer), longest_total_wait=0.5)
    keys = [_key(f"herd-{i}") for i in range(JITTER_CLIENTS)]

    @flow(name="ex02-herd", task_runner=ThreadPoolTaskRunner(max_workers=JITTER_CLIENTS))
    def herd() -> None:
        futures = [
            configured.with_options(task_run_name=f"client-{i}").submit(
                _api().url_for("/weather/paris", fail_first=1, key=key)
            )
            for i, key in enumerate(keys)
        ]
        for future in futures:
            future.wait()

    _, state = _run_quietly(herd)
    histories = retry_histories(state, expected=JITTER_CLIENTS)
    failed = [h.name for h in histories.values() if h.state != "Completed"]
    expect(not failed, f"{len(failed)} of {JITTER_CLIENTS} clients ended Failed; each needs one retry to succeed")
    waits = sorted(h.retry_delays[0] for h in histories.values())
    spread = waits[-1] - waits[0]
    expect(
        spread >= 0.05,
        f"all {JITTER_CLIENTS} clients waited {waits[0]:.2f}–{waits[-1]:.2f} s before their retry, so they return "
        "together; add retry_jitter_factor so Prefect spreads the waits",
    )
    average = sum(waits) / len(waits)
    expect(average >= 0.1, f"the average wait was {average:.2f} s; keep it near 0.2 s and let jitter spread it")
    return f"the {JITTER_CLIENTS} retries were spread over {spread:.2f} s (waits {waits[0]:.2f}–{waits[-1]:.2f} s)."


def _grade_pay(answer: Any) -> str:
    require_task(answer, "pay")
    payments = {_key("payment"): (5, 19.99), _key("payment"): (6, 42.0)}
    urls = {payment_id: _api().url_for("/payments", malformed=True, key=payment_id) for payment_id in payments}

    @flow(name="ex02-pay-twice")
    def pay_twice() -> None:
        for payment_id, (order_id, amount) in payments.items():
            answer(urls[payment_id], payment_id, order_id, amount, return_state=True)

    _run_quietly(pay_twice)
    stats = _api().stats()
    for number, payment_id in enumerate(payments, start=1):
        statuses = [r["status"] for r in stats.requests if r["key"] == payment_id]
        charged = statuses.count(201)
        expect(
            len(statuses) >= 2,
            f"payment {number} reached the service {len(statuses)} time(s): the garbled answer should make the "
            "task fail and retry (keep retries=2 and return response.json())",
        )
        expect(
            charged == 1,
            f"payment {number} was charged {charged} times in {len(statuses)} calls: send the same Idempotency-Key "
            "header on every attempt, taken from payment_id (not made up inside the task)",
        )
    return "each payment was charged once; its retries were answered as replays of the first charge."


EXERCISES = ExerciseSet(
    pair="02",
    title="Retries",
    exercises=[
        Exercise(
            1,
            "survive a flaky service",
            _grade_survive,
            hints=[
                "The service fails the first 2 calls, so the task needs 3 attempts: retries counts the extra ones.",
                'For example {"retries": 2, "retry_delay_seconds": 0.1}.',
            ],
            solution=[survive_options],
            answer=lambda: survive_options,
        ),
        Exercise(
            2,
            "back off within a budget",
            _grade_backoff,
            hints=[
                "Four failures need retries=4. The waits must grow and add up to at most 1 s.",
                "A list like [0.05, 0.1, 0.2, 0.4], or exponential_backoff(backoff_factor=0.05) from prefect.tasks.",
            ],
            solution=[backoff_options],
            answer=lambda: backoff_options,
        ),
        Exercise(
            3,
            "retry only what is worth retrying",
            _grade_condition,
            hints=[
                "Prefect calls fn(task, task_run, state); state.result(raise_on_failure=False) is the exception.",
                "httpx.TimeoutException for time-outs; httpx.HTTPStatusError has .response.status_code.",
                "Return True for status >= 500 or == 429, and for time-outs; False for everything else.",
            ],
            solution=[retry_transient],
            answer=lambda: retry_transient,
        ),
        Exercise(
            4,
            "add jitter",
            _grade_jitter,
            hints=[
                "retry_jitter_factor=f makes Prefect pick each wait at random, up to (1 + f) times the delay.",
                "Prefect may wait up to delay × (1 + f): with a 0.2 s delay, f = 1 stays under 0.5 s.",
            ],
            solution=[jitter_options],
            answer=lambda: jitter_options,
        ),
        Exercise(
            5,
            "make a payment safe to retry",
            _grade_pay,
            hints=[
                "The service honours an Idempotency-Key header: a repeated key returns the first charge.",
                "The key must be the same on every attempt of one payment, and differ between payments: payment_id.",
            ],
            solution=[pay],
            answer=lambda: pay,
        ),
    ],
)
