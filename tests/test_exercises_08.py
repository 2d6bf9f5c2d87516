"""Each check of pair 08 accepts the reference solution and rejects plausible wrong answers; no serve process stays."""

from datetime import timedelta

import pytest
from prefect.deployments import run_deployment
from prefect.schedules import Cron, Interval

from lessons_src.exercises import exercises
from lessons_src.exercises.e08_deployments_and_schedules import add_up, clean_up, say_hello
from lessons_src.serving import DeploymentSpec, running_serve_processes

EX = exercises("08")


@pytest.fixture(scope="module", autouse=True)
def stop_serving_after_the_module():
    """Stop every serve process the checks started, then prove none is left."""
    yield
    assert clean_up() == 0
    assert running_serve_processes() == []


def nightly_at_two_thirty_pm():
    return add_up.to_deployment(
        "ex08-nightly-sum", cron="30 14 * * *", parameters={"numbers": [1, 2, 3]}, tags=["course"]
    )


def nightly_without_parameters():
    return add_up.to_deployment("ex08-nightly-sum", cron="30 2 * * *", tags=["course"])


def nightly_not_awaited():
    return add_up.to_deployment(  # what a plain `def` gets in a notebook: a coroutine
        "ex08-nightly-sum", cron="30 2 * * *", parameters={"numbers": [1, 2, 3]}, tags=["course"], _sync=False
    )


def nightly_wrong_name():
    return add_up.to_deployment("nightly", cron="30 2 * * *", parameters={"numbers": [1, 2, 3]}, tags=["course"])


def greetings_not_paused():
    return say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("0 9 * * 1-5", timezone="Europe/Paris", parameters={"name": "team"}),
            Interval(timedelta(hours=6), parameters={"name": "on-call"}),
        ],
    )


def greetings_in_utc():
    return say_hello.to_deployment(
        "ex08-greetings",
        schedules=[
            Cron("0 9 * * 1-5", parameters={"name": "team"}),
            Interval(timedelta(hours=6), parameters={"name": "on-call"}),
        ],
        paused=True,
    )


def greetings_one_schedule():
    return say_hello.to_deployment("ex08-greetings", cron="0 9 * * 1-5", parameters={"name": "team"}, paused=True)


def sum_without_a_deployment(numbers: list[int]) -> int:
    return sum(numbers)


async def sum_returns_the_flow_run(numbers: list[int]):
    return await run_deployment("add-up/ex08-sum", parameters={"numbers": numbers}, poll_interval=0.5, timeout=120)


def spec_without_defaults():
    return DeploymentSpec("served_pipeline.py:say_hello", "ex08-hello-default", {"tags": ["course"]})


def spec_wrong_flow():
    return DeploymentSpec("served_pipeline.py:add_up", "ex08-hello-default", {"parameters": {"numbers": [1]}})


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, nightly_at_two_thirty_pm, "expected cron '30 2 * * *'"),
        (1, nightly_without_parameters, "recorded parameters {}"),
        (1, nightly_not_awaited, "returned a coroutine"),
        (1, nightly_wrong_name, "expected 'add-up/ex08-nightly-sum'"),
        (2, greetings_not_paused, "not paused"),
        (2, greetings_in_utc, "expected 'Europe/Paris'"),
        (2, greetings_one_schedule, "recorded 1 schedules"),
        (3, sum_without_a_deployment, "write `async def"),
        (3, sum_returns_the_flow_run, "expected 15"),
        (4, spec_wrong_flow, "expected 'say-hello/ex08-hello-default'"),
        (4, spec_without_defaults, "got {}"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected(course_server, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message, outcome.message
