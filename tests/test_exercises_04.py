"""Each check of pair 04 accepts the reference solution and rejects plausible wrong answers."""

import asyncio
import os

import pytest
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from lessons_src.checks import TODO
from lessons_src.demo_api import start_demo_api
from lessons_src.exercises import exercises
from lessons_src.exercises.e04_concurrency import crunch_task, get_condition, get_condition_async

EX = exercises("04")


@pytest.fixture
def demo_api():
    """Start or reuse the demo API and clear its counters and limits."""
    api = start_demo_api()
    api.reset()
    yield api
    api.reset()


def test_a_choice_left_as_todo_is_unsolved():
    assert EX.evaluate(1, {**EX.get(1).answer(), "add 1 to each of 10,000 numbers": TODO}).status == "unsolved"


threads_for_everything = {
    "call a web API 200 times": "threads",
    "pure-Python statistics over 4 large files, 30 s each": "threads",
    "add 1 to each of 10,000 numbers": "threads",
}
processes_for_tiny_steps = {
    "call a web API 200 times": "threads",
    "pure-Python statistics over 4 large files, 30 s each": "processes",
    "add 1 to each of 10,000 numbers": "processes",
}
made_up_runner = {
    "call a web API 200 times": "ConcurrentTaskRunner",
    "pure-Python statistics over 4 large files, 30 s each": "processes",
    "add 1 to each of 10,000 numbers": "no parallelism",
}


@flow
def conditions_result_in_loop(cities: list[str], delay: float) -> list[str]:
    return [get_condition.submit(city, delay).result() for city in cities]


@flow
def conditions_plain_calls(cities: list[str], delay: float) -> list[str]:
    return [get_condition(city, delay) for city in cities]


@flow
def conditions_unlimited(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay).result()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def conditions_two_threads(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay).result()


@flow
async def conditions_awaited_one_by_one(cities: list[str], delay: float) -> list[str]:
    return [await get_condition_async(city, delay) for city in cities]


@flow
def conditions_sync_flow(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay).result()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def crunch_all_threads(iterations: int, jobs: int) -> list[int]:
    return crunch_task.map([iterations] * jobs).result()


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
def crunch_all_one_process(iterations: int, jobs: int) -> list[int]:
    return crunch_task.map([iterations] * jobs).result()


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, threads_for_everything, "not 'threads', because it computes in Python"),
        (1, processes_for_tiny_steps, "batch it into one task"),
        (1, made_up_runner, "use only"),
        (2, conditions_result_in_loop, "ran one after another"),
        (2, conditions_plain_calls, "ran one after another"),
        (3, conditions_unlimited, "rejected"),
        (3, conditions_two_threads, "at most 2 in flight"),
        (4, conditions_awaited_one_by_one, "each call was awaited"),
        (4, conditions_sync_flow, "should be an async flow"),
        (5, crunch_all_threads, "ran in this process"),
        (5, crunch_all_one_process, "twice in a row the task runs ran in 1 worker process"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected(course_server, demo_api, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message


def test_limits_are_cleared_after_the_budget_check(course_server, demo_api):
    EX.evaluate(3, conditions_unlimited)
    assert demo_api.stats().config == {"max_in_flight": None, "max_per_second": None}


def test_reference_tasks_run_outside_a_flow(demo_api):
    assert get_condition.fn("oslo", 0) == "snow"
    assert asyncio.run(get_condition_async.fn("cairo", 0)) == "sunny"
    assert crunch_task.fn(10) == os.getpid()
