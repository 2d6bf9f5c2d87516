"""Exercises for pair 02 (retries): graders read Prefect's task-run records and the demo API's calls per key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
from prefect import Task, flow, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from lessons_src.checks import (
    Exercise,
    ExerciseSet,
    call_answer,
    expect,
    require_signature,
    require_solved,
    require_task,
    run_flow,
    short,
)
from lessons_src.demo_api import DemoAPI, start_demo_api
from lessons_src.pairs.p02_retries import RetryHistory, retry_histories
from lessons_src.runs import task_runs
from lessons_src.tolerances import RETRY_STAMPING_FEW_CLIENTS_S, RETRY_STAMPING_S

http = httpx.Client(timeout=2.0)
# Exercise 3's client gives up after this long, so a call the service delays 4x as long times out, while a healthy
# answer does not: 10 threads took at most 10 ms quiet and 26 ms beside 8 CPU burners (2026-12-02, 300 calls each),
# and CI has stalled a healthy call for far longer than that (lesson 03 once saw one outlast 1.5 s).
CLIENT_TIMEOUT_S = 0.5

# ---- reference solutions (shown by ex.solution(n)) ----


def survive_options() -> dict:
    return {"retries": 2, "retry_delay_seconds": 0.1}


def backoff_options() -> dict:
    return {"retries": 4, "retry_delay_seconds": exponential_backoff(backoff_factor=0.05)}


def retry_transient(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False, _sync=True)  # the exception, in a sync or an async task
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
# Exercises 1 and 2 run one call at a time: a scheduled wait may read short by Prefect's stamping gap for few clients.
TOLERANCE_S = RETRY_STAMPING_FEW_CLIENTS_S
# Exercise 4's required spread: the 0.05 s its text states, and never less than RETRY_STAMPING_S, the most that
# clients without jitter were measured to differ by (their stamping gaps), so no jitter cannot pass.
MIN_JITTER_SPREAD_S = max(0.05, RETRY_STAMPING_S)


@task
def fetch_weather(url: str) -> dict:
    """The task the checks of exercises 1, 2 and 4 put your retry options on."""
    response = http.get(url)
    response.raise_for_status()
    return response.json()


@task
def fetch_weather_fast(url: str) -> dict:
    """The task the check of exercise 3 runs with your retry_condition_fn: its client waits only 0.5 s."""
    response = http.get(url, timeout=CLIENT_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


@task
async def fetch_weather_async(url: str) -> dict:
    """The async copy of that task, on which exercise 3's check runs your retry_condition_fn once more."""
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        response = await client.get(url)
    response.raise_for_status()
    return response.json()


def _api() -> DemoAPI:
    return start_demo_api()


def _key(label: str) -> str:
    """Return a key no earlier check used, so the demo API counts this check's calls from zero."""
    return f"ex02-{label}-{uuid4().hex[:8]}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wait_list(waits: Any, what: str) -> list[float]:
    """Return `waits` as a list of seconds, or fail saying what Prefect accepts and what arrived."""
    expect(
        isinstance(waits, list) and all(_is_number(w) and w >= 0 for w in waits),
        f"{what} should be a list of seconds such as [0.05, 0.1]; got {type(waits).__name__} {short(waits)}",
    )
    expect(len(waits) <= 50, f"{what} holds {len(waits)} waits; Prefect allows at most 50")
    return [float(w) for w in waits]


def _configured_waits(options: Mapping[str, Any]) -> list[float]:
    """Return the wait before each retry that these options configure (before any jitter)."""
    retries = options.get("retries", 0)
    delay = options.get("retry_delay_seconds", 0)
    if callable(delay):
        waits = _wait_list(delay(retries), f"retry_delay_seconds({retries})")
    elif isinstance(delay, list):
        waits = _wait_list(delay, "retry_delay_seconds")
    else:
        expect(
            _is_number(delay) and delay >= 0,
            "retry_delay_seconds should be a number of seconds, a list of them or exponential_backoff(...); got "
            f"{type(delay).__name__} {short(delay)}"
            + (": Prefect accepts a list, not a tuple" if isinstance(delay, tuple) else ""),
        )
        return [float(delay)] * retries
    return [waits[min(i, len(waits) - 1)] for i in range(retries)] if waits else [0.0] * retries


def _options(answer: Any) -> dict:
    """Return the options dict a learner's function returns (or the dict itself), stopping if it holds TODO."""
    options = call_answer(answer) if callable(answer) else answer
    expect(
        isinstance(options, dict),
        f"the function should return a dict of task options such as {{'retries': 2}}; got "
        f"{type(options).__name__} {short(options)}",
    )
    return require_solved(options)


def _task_with(options: dict, longest_total_wait: float = 2.0, longest_wait: float | None = None) -> Task:
    """Return fetch_weather with the learner's retry options, or fail saying which option is wrong or too slow."""
    unknown = sorted(set(options) - set(RETRY_OPTIONS))
    expect(
        not unknown,
        f"{', '.join(map(str, unknown))} is not a retry option of a Prefect 3 task; use {', '.join(RETRY_OPTIONS[:3])}",
    )
    retries = options.get("retries")
    expect(
        isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0,
        f"retries should be a whole number such as 2; got {type(retries).__name__} {short(retries)}",
    )
    waits = _configured_waits(options)
    jitter = options.get("retry_jitter_factor")
    expect(
        jitter is None or (_is_number(jitter) and jitter >= 0),
        f"retry_jitter_factor should be a number of 0 or more, such as 1.0; got {type(jitter).__name__} "
        f"{short(jitter)}",
    )
    condition = options.get("retry_condition_fn")
    expect(
        condition is None or callable(condition),
        f"retry_condition_fn should be a function; got {type(condition).__name__}",
    )
    stretch = 1 + (jitter or 0.0)  # Prefect may wait up to delay × (1 + retry_jitter_factor)
    if longest_wait is not None:
        expect(
            max(waits, default=0.0) * stretch <= longest_wait,
            f"a wait can reach {max(waits, default=0.0) * stretch:.2f} s (delay × (1 + retry_jitter_factor)); keep "
            f"every wait at most {longest_wait:g} s",
        )
    expect(
        sum(waits) * stretch <= longest_total_wait + 1e-9,  # configured waits are exact: only float rounding
        f"these options can wait up to {sum(waits) * stretch:.2f} s in all before giving up (waits {short(waits)} s"
        + (f" × up to {stretch:g} with jitter" if jitter else "")
        + f"); the budget is {longest_total_wait:.1f} s here: start smaller, grow slower or retry less",
    )
    return fetch_weather.with_options(**options)


def _single_call(configured: Task, url: str) -> RetryHistory:
    """Run one call of `configured` in a flow and return its retry history as Prefect recorded it."""

    @flow(name="ex02-one-call")
    def one_call() -> None:
        configured.with_options(task_run_name="call")(url, return_state=True)

    _, state = run_flow(one_call)
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
        len(history.retry_delays) == history.run_count - 1,
        "Prefect retried at once, without waiting (no AwaitingRetry state was recorded); give the service a "
        "moment between attempts with retry_delay_seconds (0.05 s or more)",
    )
    expect(
        min(history.retry_delays) >= 0.05 - TOLERANCE_S,
        f"Prefect waited {list(history.retry_delays)} s before the retries; each wait should be at least 0.05 s",
    )
    return (
        f"Completed on attempt {history.run_count} (run_count), the service received {calls} calls, and Prefect "
        f"waited {list(history.retry_delays)} s between them."
    )


def waits_grow(waits: list[float]) -> bool:
    """Whether measured waits rise: none shorter than the one before, the last longer than the first, beyond noise.

    Measured waits carry Prefect's stamping gap (TOLERANCE_S): a fixed 0.1 s delay was once read [0.098, 0.1, 0.1,
    0.1] s in CI, which must not count as growing.
    """
    steady = all(later >= earlier - TOLERANCE_S for earlier, later in zip(waits, waits[1:], strict=False))
    return steady and waits[-1] > waits[0] + TOLERANCE_S


def _grade_backoff(answer: Any) -> str:
    options = _options(answer)
    expect(
        not options.get("retry_jitter_factor"),
        "leave jitter out of this one (exercise 4 adds it): with jitter the waits may not grow",
    )
    configured = _task_with(options, longest_total_wait=1.0)  # every wait counts: a longer outage would use them
    key = _key("backoff")
    history = _single_call(configured, _api().url_for("/weather/oslo", fail_first=4, key=key))
    waits = list(history.retry_delays)
    expect(
        history.state == "Completed",
        f"the task run ended {history.state} after {history.run_count} attempts; the service fails its first 4 "
        "calls, so the fifth must be allowed",
    )
    expect(bool(waits), "Prefect retried at once, without waiting (no AwaitingRetry state was recorded)")
    expect(waits[0] >= 0.05 - TOLERANCE_S, f"the first wait was {waits[0]} s; make it 0.05 s or more")
    expect(
        waits_grow(waits),
        f"Prefect waited {waits} s: the waits should grow, each at least as long as the one before and the last "
        f"longer than the first by more than {TOLERANCE_S} s (a rising list or exponential_backoff)",
    )
    expect(
        sum(waits) <= 1.0 + TOLERANCE_S,
        f"Prefect waited {sum(waits):.2f} s in all ({waits}); the budget is 1.0 s: start smaller or grow slower",
    )
    return f"Completed on attempt {history.run_count}; Prefect waited {waits} s, {sum(waits):.2f} s in all."


CONDITION_CASES = {  # what the demo API answers for each key, and how many calls a right condition lets through
    "502 once": ({"fail_first": 1, "fail_status": 502}, 2),
    "503 twice": ({"fail_first": 2}, 3),
    "time-out": ({"delay": 4 * CLIENT_TIMEOUT_S}, 3),
    "404": ({"status": 404}, 1),
    "400": ({"status": 400}, 1),
}
ASYNC_CASE = ("503 twice, async task", {"fail_first": 2}, 3)
# Each failure handed to your function directly, as Prefect hands it (first, so an error in your code shows its line),
# with the answer a right condition gives: the live cases' failures, then ones the demo API cannot produce on demand.
DIRECT_CASES: dict[str, tuple[int | Exception, bool]] = {
    "500 Internal Server Error": (500, True),
    "502 Bad Gateway": (502, True),
    "503 Service Unavailable": (503, True),
    "504 Gateway Timeout": (504, True),
    "429 Too Many Requests": (429, True),
    "httpx.ReadTimeout": (httpx.ReadTimeout("timed out"), True),
    "httpx.ConnectTimeout": (httpx.ConnectTimeout("timed out while connecting"), True),
    "400 Bad Request": (400, False),
    "401 Unauthorized": (401, False),
    "403 Forbidden": (403, False),
    "404 Not Found": (404, False),
    "409 Conflict": (409, False),
    "422 Unprocessable Entity": (422, False),
    "KeyError from the task's own code": (KeyError("temperature_c"), False),
}


@dataclass(frozen=True)
class _Raised:
    """An exception the learner's function raised (not returned) when the check handed it a failure."""

    error: Exception


DIRECT_TASK_RUN = TaskRun(name="direct-call", task_key="fetch_weather_fast", dynamic_key="0", run_count=1)


def _failed_state(failure: int | Exception) -> Failed:
    """Return the Failed state Prefect's engine hands to retry_condition_fn for this failure (see `can_retry`)."""
    if isinstance(failure, int):
        request = httpx.Request("GET", "http://demo.invalid/weather/oslo")
        failure = httpx.HTTPStatusError(
            f"{failure} error", request=request, response=httpx.Response(failure, request=request)
        )
    return Failed(data=failure, message=f"Task run encountered unexpected exception: {failure!r}")


def _require_condition(answer: Any) -> None:
    """Stop at once, saying why, if Prefect would never call `answer` or would call it with the wrong arguments."""
    expect(
        callable(answer),
        f"retry_condition_fn should be something Prefect can call (a def, async def, lambda or other callable); got "
        f"{type(answer).__name__} {short(answer)}",
    )
    require_signature(
        answer,
        (None, None, None),
        "retry_condition_fn",
        "three arguments: Prefect calls it as fn(task, task_run, state). A different signature raises a TypeError "
        "inside Prefect, which logs it and does not retry",
    )


def _grade_condition(answer: Any) -> str:
    _require_condition(answer)
    async_name, async_behaviour, async_expected = ASYNC_CASE
    keys = {case: _key(case.replace(" ", "-")) for case in [*CONDITION_CASES, async_name]}
    options = {"retries": 2, "retry_delay_seconds": 0.05, "retry_condition_fn": answer}

    @flow(name="ex02-which-failures", task_runner=ThreadPoolTaskRunner(max_workers=len(keys)))
    def which_failures() -> dict[str, Any]:
        futures = [
            fetch_weather_fast.with_options(task_run_name=case, **options).submit(
                _api().url_for("/weather/berlin", key=keys[case], **behaviour)
            )
            for case, (behaviour, _) in CONDITION_CASES.items()
        ]
        futures.append(
            fetch_weather_async.with_options(task_run_name=async_name, **options).submit(
                _api().url_for("/weather/berlin", key=keys[async_name], **async_behaviour)
            )
        )
        answers = {}  # inside a sync flow, as Prefect calls it for a sync task: state.result() returns a value
        for case, (failure, _) in DIRECT_CASES.items():
            try:
                answers[case] = call_answer(answer, fetch_weather_fast, DIRECT_TASK_RUN, _failed_state(failure))
            except Exception as error:  # re-raised outside the flow, so the check reports your line
                answers[case] = _Raised(error)
        for future in futures:
            future.wait()
        return answers

    answers, state = run_flow(which_failures)
    expect(isinstance(answers, dict), f"the check's flow ended {state.name}: {short(answers)}")
    for case, (_, wanted) in DIRECT_CASES.items():
        given = answers[case]
        if isinstance(given, _Raised):
            raise given.error  # reported as your code's error, with its line
        expect(
            bool(given) == wanted,
            f"for a failure with {case} your function returned {short(given)}; expected {wanted}: "
            + (
                "5xx, 429 and time-outs are worth retrying"
                if wanted
                else "retry only 5xx, 429 and time-outs (a 4xx, or a bug in the task, will not change on retry)"
            ),
        )
    task_runs(state, expected=len(keys))
    stats = _api().stats()
    calls = {case: stats.attempts(key) for case, key in keys.items()}
    for case, (_, expected) in CONDITION_CASES.items():
        expect(
            calls[case] == expected,
            f"the {case} call reached the service {calls[case]} time(s) with retries=2, expected {expected}, though "
            "your function answered right when the check handed it that failure (with task_run.run_count=1): does "
            "its answer depend on the attempt, or on something outside its arguments?",
        )
    expect(
        calls[async_name] == async_expected,
        f"the same 503-twice call from an async task reached the service {calls[async_name]} time(s), expected "
        f"{async_expected}: in an async task Prefect calls your function inside an event loop, where "
        "state.result(...) returns a coroutine, not the exception. Read it with "
        "state.result(raise_on_failure=False, _sync=True), or write async def and await "
        "state.aresult(raise_on_failure=False).",
    )
    return (
        f"the service received {calls}: 5xx and time-outs retried, 4xx not, also in an async task; and your "
        f"function answered right for each of the {len(DIRECT_CASES)} failures the check handed it (among them 500, "
        "429, 504, 401, 403, 409, 422 and a connect time-out)."
    )


JITTER_CLIENTS = 10


def _grade_jitter(answer: Any) -> str:
    configured = _task_with(_options(answer), longest_wait=0.5)
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

    _, state = run_flow(herd)
    histories = retry_histories(state, expected=JITTER_CLIENTS)
    failed = [h.name for h in histories.values() if h.state != "Completed"]
    expect(not failed, f"{len(failed)} of {JITTER_CLIENTS} clients ended Failed; each needs one retry to succeed")
    expect(
        all(h.retry_delays for h in histories.values()),
        "Prefect retried at once, without a wait to spread (no AwaitingRetry state was recorded); keep "
        "retry_delay_seconds=0.2 and add retry_jitter_factor",
    )
    waits = sorted(h.retry_delays[0] for h in histories.values())
    spread = waits[-1] - waits[0]
    expect(
        spread >= MIN_JITTER_SPREAD_S,
        f"all {JITTER_CLIENTS} clients waited {waits[0]:.3f}–{waits[-1]:.3f} s before their retry (a spread of "
        f"{spread:.3f} s, under {MIN_JITTER_SPREAD_S} s), so they return together; raise retry_jitter_factor so "
        "Prefect spreads the waits",
    )
    average = sum(waits) / len(waits)
    expect(
        average >= 0.1,
        f"the average wait was {average:.2f} s, under 0.1 s; keep the delay near 0.2 s and let jitter spread it",
    )
    return f"the {JITTER_CLIENTS} retries were spread over {spread:.2f} s (waits {waits[0]:.2f}–{waits[-1]:.2f} s)."


PAYMENT_ORDER, PAYMENT_AMOUNT = 5, 20.0  # two instalments of the same order, for the same amount


def _grade_pay(answer: Any) -> str:
    require_task(answer, "pay")
    payments = [_key("payment"), _key("payment")]
    urls = {payment_id: _api().url_for("/payments", malformed=True, key=payment_id) for payment_id in payments}

    @flow(name="ex02-pay-twice")
    def pay_twice() -> dict[str, str]:
        errors = {}
        for payment_id in payments:  # one after the other, as an application would pay two instalments
            future = answer.submit(urls[payment_id], payment_id, PAYMENT_ORDER, PAYMENT_AMOUNT)
            future.wait()
            error = future.state.result(raise_on_failure=False)
            errors[payment_id] = f"{type(error).__name__}: {error}" if isinstance(error, Exception) else ""
        return errors

    errors, state = run_flow(pay_twice)
    expect(isinstance(errors, dict), f"the check's flow ended {state.name}: {short(errors)}")
    stats = _api().stats()
    for number, payment_id in enumerate(payments, start=1):
        statuses = [r["status"] for r in stats.requests if r["key"] == payment_id]
        charged = statuses.count(201)
        expect(
            bool(statuses),
            f"payment {number} never reached the service: the task ended with {errors[payment_id] or 'no error'}",
        )
        expect(
            len(statuses) >= 2,
            f"payment {number} reached the service {len(statuses)} time(s): the garbled answer should make the "
            "task fail and retry (keep retries=2 and return response.json())",
        )
        expect(
            charged == 1,
            f"payment {number} was charged {charged} times in {len(statuses)} calls (statuses {statuses}); expected "
            "once: send the same Idempotency-Key header on every attempt of a payment, and a different one for each "
            "payment: take it from payment_id (the order id is the same for both instalments here)",
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
                "Prefect calls fn(task, task_run, state); state.result(raise_on_failure=False, _sync=True) is the "
                "exception, in a sync and in an async task (without _sync=True an async task gives a coroutine).",
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
                "The key must be the same on every attempt of one payment, and differ between payments (even two "
                "payments of the same order): build it from payment_id.",
            ],
            solution=[pay],
            answer=lambda: pay,
        ),
    ],
)
