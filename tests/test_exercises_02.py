"""Pair 02's checks pass right answers written differently (async too) and reject near misses, the same twice."""

import functools
import hashlib
import uuid

import httpx
import pytest
from prefect import task
from prefect.tasks import exponential_backoff

from lessons_src.checks import TODO
from lessons_src.exercises import exercises
from lessons_src.exercises.e02_retries import waits_grow

EX = exercises("02")
http = httpx.Client(timeout=2.0)


@pytest.mark.parametrize(
    ("waits", "grow"),
    [
        ([0.05, 0.1, 0.2, 0.4], True),  # exponential_backoff(0.05), as measured on a quiet machine
        ([0.1, 0.1, 0.2, 0.2], True),  # a rising list with steps
        ([0.1, 0.3], True),
        ([0.098, 0.1, 0.1, 0.1], False),  # a fixed 0.1 s delay as CI once measured it: noise, not growth
        ([0.1, 0.1, 0.1, 0.1], False),
        ([0.4, 0.2, 0.1, 0.05], False),
        ([0.05, 0.2, 0.1, 0.4], False),
    ],
)
def test_measured_waits_grow_only_beyond_the_stamping_noise(waits, grow):
    assert waits_grow(waits) is grow, waits


def test_template_with_todo_values_is_unsolved():
    def survive_options() -> dict:
        return {"retries": TODO, "retry_delay_seconds": TODO}

    assert EX.evaluate(1, survive_options).status == "unsolved"


# ---- right answers, written differently from the reference ----


def survive_with_a_list() -> dict:
    return {"retries": 3, "retry_delay_seconds": [0.05, 0.1, 0.2]}


async def survive_async() -> dict:
    return {"retries": 2, "retry_delay_seconds": exponential_backoff(backoff_factor=0.05)}


def backoff_short_list() -> dict:
    return {"retries": 4, "retry_delay_seconds": [0.05, 0.1]}  # the last wait repeats: 0.05, 0.1, 0.1, 0.1


def backoff_lambda() -> dict:
    return {"retries": 5, "retry_delay_seconds": lambda retries: [0.05 * (i + 1) for i in range(retries)]}


def _transient(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500 or error.response.status_code == 429
    return isinstance(error, httpx.TimeoutException)


async def retry_async_condition(task, task_run, state) -> bool:
    return _transient(await state.aresult(raise_on_failure=False))


retry_lambda = lambda task, task_run, state: _transient(state.result(raise_on_failure=False, _sync=True))  # noqa: E731


def retry_match(task, task_run, state) -> bool:
    match state.result(raise_on_failure=False, _sync=True):
        case httpx.HTTPStatusError(response=response):
            return response.status_code == 429 or 500 <= response.status_code < 600
        case httpx.TimeoutException():
            return True
    return False


def jitter_half() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0.2, "retry_jitter_factor": 0.5}


def jitter_list_two_retries() -> dict:
    return {"retries": 2, "retry_delay_seconds": [0.2], "retry_jitter_factor": 1}


@task(retries=2, retry_delay_seconds=0.05)
def pay_hashed_lowercase_header(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    headers = {"idempotency-key": hashlib.sha256(payment_id.encode()).hexdigest()}  # header names ignore case
    response = http.post(url, json={"order_id": order_id, "amount": amount}, headers=headers)
    response.raise_for_status()
    return response.json()


@task(retries=1, retry_delay_seconds=0.05)
async def pay_async(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    async with httpx.AsyncClient(timeout=2.0) as client:
        response = await client.post(
            url, json={"order_id": order_id, "amount": amount}, headers={"Idempotency-Key": f"pay-{payment_id}"}
        )
    response.raise_for_status()
    return response.json()


def _with_policy(task, task_run, state, policy: str) -> bool:
    return _transient(state.result(raise_on_failure=False, _sync=True))


condition_as_partial = functools.partial(_with_policy, policy="transient")


def retry_from_state_data(task, task_run, state) -> bool:
    return _transient(state.data)  # the Failed state Prefect builds holds the exception itself


class RetryTransient:
    def __call__(self, task, task_run, state) -> bool:
        return _transient(state.result(raise_on_failure=False, _sync=True))


def backoff_five_within_budget() -> dict:
    return {"retries": 5, "retry_delay_seconds": [0.05, 0.1, 0.15, 0.2, 0.25]}  # 0.75 s even if all are used


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, survive_with_a_list),
        (1, survive_async),
        (2, backoff_short_list),
        (2, backoff_lambda),
        (2, backoff_five_within_budget),
        (3, retry_async_condition),
        (3, retry_lambda),
        (3, retry_match),
        (3, condition_as_partial),  # Prefect 3.9 calls any callable (3.8 called only plain functions)
        (3, retry_from_state_data),
        (3, RetryTransient()),
        (4, jitter_half),
        (4, jitter_list_two_retries),
        (5, pay_hashed_lowercase_header),
        (5, pay_async),
    ],
    ids=lambda value: getattr(value, "name", getattr(value, "__name__", str(value)))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, demo_api, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


# ---- wrong answers a learner would really write ----


def too_few_retries() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0.1}


def no_wait() -> dict:
    return {"retries": 3}


def prefect1_style() -> dict:
    return {"max_retries": 3, "retry_delay_seconds": 0.1}


def fixed_waits() -> dict:
    return {"retries": 4, "retry_delay_seconds": 0.1}


def over_budget() -> dict:
    return {"retries": 4, "retry_delay_seconds": [0.1, 0.2, 0.4, 0.8]}


def backoff_too_few() -> dict:
    return {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=0.05)}


def always_retry(task, task_run, state) -> bool:
    return True


def status_only(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False)
    return isinstance(error, httpx.HTTPStatusError) and error.response.status_code >= 500


def exception_only(exc) -> bool:  # the signature many snippets online assume
    return isinstance(exc, httpx.TimeoutException | httpx.HTTPStatusError)


def forgets_429(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False)
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500
    return isinstance(error, httpx.TimeoutException)


def no_jitter() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0.2}


def jitter_without_retries() -> dict:
    return {"retries": 0, "retry_delay_seconds": 0.2, "retry_jitter_factor": 1.0}


def jitter_too_long() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0.5, "retry_jitter_factor": 1.0}


@task(retries=2, retry_delay_seconds=0.05)
def pay_new_key_each_attempt(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    response = http.post(url, json={"order_id": order_id, "amount": amount}, headers=headers)
    response.raise_for_status()
    return response.json()


@task(retries=2, retry_delay_seconds=0.05)
def pay_constant_key(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    headers = {"Idempotency-Key": "my-payment"}
    response = http.post(url, json={"order_id": order_id, "amount": amount}, headers=headers)
    response.raise_for_status()
    return response.json()


@task
def pay_without_retries(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    response = http.post(url, json={"order_id": order_id, "amount": amount}, headers={"Idempotency-Key": payment_id})
    response.raise_for_status()
    return response.json()


def waits_too_short() -> dict:
    return {"retries": 2, "retry_delay_seconds": 0.01}


def waits_as_a_tuple() -> dict:
    return {"retries": 2, "retry_delay_seconds": (0.05, 0.1)}  # Prefect takes a list, not a tuple


def shrinking_waits() -> dict:
    return {"retries": 4, "retry_delay_seconds": [0.4, 0.2, 0.1, 0.05]}


def plain_result_condition(task, task_run, state) -> bool:
    return _transient(state.result(raise_on_failure=False))  # a coroutine in an async task: never retries there


async def async_condition_without_await(task, task_run, state) -> bool:
    return _transient(state.result(raise_on_failure=False))


def not_the_two_tried_4xx(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False, _sync=True)
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500 or error.response.status_code not in (400, 404)
    return isinstance(error, httpx.TimeoutException)


def read_timeouts_only(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False, _sync=True)
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500 or error.response.status_code == 429
    return isinstance(error, httpx.ReadTimeout)


def retries_everything_but_4xx(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False, _sync=True)
    if isinstance(error, httpx.HTTPStatusError):
        return not 400 <= error.response.status_code < 500 or error.response.status_code == 429
    return True


def assumes_an_http_error(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False, _sync=True)
    return error.response.status_code >= 500 or error.response.status_code == 429


async def async_never(task, task_run, state) -> bool:
    return False  # a coroutine is truthy: the check must grade the awaited answer


def lists_the_usual_5xx(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False, _sync=True)
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in (429, 502, 503, 504)  # forgets 500 and the other 5xx
    return isinstance(error, httpx.TimeoutException)


def returns_the_exception(task, task_run, state):
    return state.result(raise_on_failure=False, _sync=True)  # truthy for every failure, 4xx too


def backoff_five_over_budget() -> dict:
    return {"retries": 5, "retry_delay_seconds": exponential_backoff(backoff_factor=0.05)}  # 1.55 s if all are used


def jitter_tiny() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0.2, "retry_jitter_factor": 0.1}


def jitter_as_text() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0.2, "retry_jitter_factor": "1.0"}


def jitter_without_delay() -> dict:
    return {"retries": 1, "retry_delay_seconds": 0, "retry_jitter_factor": 1.0}


@task(retries=2, retry_delay_seconds=0.05)
def pay_order_key(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    headers = {"Idempotency-Key": f"order-{order_id}-{amount}"}  # the same for two instalments of one order
    response = http.post(url, json={"order_id": order_id, "amount": amount}, headers=headers)
    response.raise_for_status()
    return response.json()


@task(retries=2, retry_delay_seconds=0.05)
def pay_headers_as_text(url: str, payment_id: str, order_id: int, amount: float) -> dict:
    response = http.post(url, json={"order_id": order_id, "amount": amount}, headers=payment_id)
    response.raise_for_status()
    return response.json()


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, too_few_retries, "ended Failed after 2 attempts"),
        (1, no_wait, "retried at once, without waiting"),
        (1, waits_too_short, "s before the retries; each wait should be at least 0.05 s"),  # the waits are measured
        (1, waits_as_a_tuple, "got tuple (0.05, 0.1): Prefect accepts a list, not a tuple"),
        (1, prefect1_style, "max_retries is not a retry option"),
        (2, fixed_waits, "the waits should grow"),
        (2, shrinking_waits, "the waits should grow"),
        (2, over_budget, "the budget is 1.0 s"),
        (2, backoff_too_few, "ended Failed after 4 attempts"),
        (2, backoff_five_over_budget, "can wait up to 1.55 s in all before giving up"),
        (3, always_retry, "for a failure with 400 Bad Request your function returned True; expected False"),
        (3, status_only, "for a failure with 429 Too Many Requests your function returned False; expected True"),
        (3, exception_only, "fn(task, task_run, state)"),
        (3, forgets_429, "429 Too Many Requests your function returned False"),
        (3, plain_result_condition, "from an async task reached the service 1 time(s), expected 3"),
        (3, async_condition_without_await, "_sync=True"),
        (3, not_the_two_tried_4xx, "401 Unauthorized your function returned True"),
        (3, read_timeouts_only, "httpx.ConnectTimeout your function returned False"),
        (3, retries_everything_but_4xx, "KeyError from the task's own code your function returned True"),
        (3, assumes_an_http_error, "your code raised AttributeError"),
        (3, async_never, "500 Internal Server Error your function returned False"),
        (3, lists_the_usual_5xx, "500 Internal Server Error your function returned False; expected True"),
        (3, returns_the_exception, "400 Bad Request your function returned HTTPStatusError"),
        (4, no_jitter, "they return together"),
        (4, jitter_tiny, "they return together"),
        (4, jitter_without_retries, "ended Failed"),
        (4, jitter_too_long, "a wait can reach 1.00 s"),
        (4, jitter_as_text, "retry_jitter_factor should be a number of 0 or more, such as 1.0; got str '1.0'"),
        (4, jitter_without_delay, "retried at once, without a wait to spread"),
        (5, pay_new_key_each_attempt, "charged 3 times"),
        (5, pay_constant_key, "charged 0 times"),
        (5, pay_order_key, "charged 0 times"),
        (5, pay_without_retries, "reached the service 1 time(s)"),
        (5, pay_headers_as_text, "never reached the service: the task ended with ValueError"),
    ],
    ids=lambda value: getattr(value, "__name__", getattr(value, "name", str(value)))[:30],
)
@pytest.mark.filterwarnings("ignore:coroutine 'State.aresult' was never awaited:RuntimeWarning")  # the async trap
def test_wrong_answers_are_rejected_twice_alike(graded, demo_api, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome
