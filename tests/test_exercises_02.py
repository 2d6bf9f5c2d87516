"""Each check of pair 02 accepts the reference solution and rejects plausible wrong answers."""

import uuid

import httpx
import pytest
from prefect import task
from prefect.tasks import exponential_backoff

from lessons_src.checks import TODO
from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises

EX = exercises("02")
http = httpx.Client(timeout=2.0)


@pytest.fixture
def demo_api(course_server):
    """The demo API, started or reused; the checks use fresh keys, so no reset is needed between tests."""
    return start_demo_api()


def test_template_with_todo_values_is_unsolved():
    def survive_options() -> dict:
        return {"retries": TODO, "retry_delay_seconds": TODO}

    assert EX.evaluate(1, survive_options).status == "unsolved"


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


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, too_few_retries, "ended Failed after 2 attempts"),
        (1, no_wait, "retried without waiting"),
        (1, prefect1_style, "max_retries is not a retry option"),
        (2, fixed_waits, "the waits should grow"),
        (2, over_budget, "the budget is 1.0 s"),
        (2, backoff_too_few, "ended Failed after 4 attempts"),
        (3, always_retry, "the 404 call reached the service 3 times"),
        (3, status_only, "the time-out call reached the service 1 time(s)"),
        (3, exception_only, "fn(task, task_run, state)"),
        (3, forgets_429, "429"),
        (4, no_jitter, "they return together"),
        (4, jitter_without_retries, "ended Failed"),
        (4, jitter_too_long, "can wait up to 1.00 s"),
        (5, pay_new_key_each_attempt, "charged 3 times"),
        (5, pay_constant_key, "charged 0 times"),
        (5, pay_without_retries, "reached the service 1 time(s)"),
    ],
    ids=lambda value: getattr(value, "__name__", getattr(value, "name", str(value)))[:30],
)
def test_wrong_answers_are_rejected(demo_api, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message
