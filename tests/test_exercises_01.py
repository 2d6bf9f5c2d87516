"""Each check of pair 01 accepts the reference solution and rejects plausible wrong answers."""

import time

import pytest
from prefect import flow, task

from lessons_src.exercises import exercises

EX = exercises("01")


def greet_plain(name: str) -> str:
    return f"Hello, {name}!"


@flow
def greet_wrong_text(name: str) -> str:
    return f"Hi {name}"


@flow
def sum_of_squares_without_tasks(numbers: list[int]) -> int:
    return sum(n * n for n in numbers)


@task
def square_plus_one(x: int) -> int:
    return x * x + 1


@flow
def sum_of_squares_wrong_maths(numbers: list[int]) -> int:
    return sum(square_plus_one(n) for n in numbers)


@flow
def average_untyped(values):
    return sum(values) / len(values)


@flow(validate_parameters=False)
def average_unvalidated(values: list[float]) -> float:
    return sum(values) / len(values)


@flow
def count_items_silent(items: list[str]) -> int:
    return len(items)


@flow
def count_items_plain_print(items: list[str]) -> int:
    print(f"counted {len(items)} items")  # without log_prints=True this never reaches the server
    return len(items)


@task
def slow_double(x: int) -> int:
    time.sleep(0.3)
    return 2 * x


@flow
def double_all_sequential(numbers: list[int]) -> list[int]:
    return [slow_double(n) for n in numbers]


@flow
def double_all_returns_futures(numbers: list[int]):
    return [slow_double.submit(n) for n in numbers]


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, greet_plain, "should be a Prefect flow"),
        (1, greet_wrong_text, "expected 'Hello, Ada!'"),
        (2, sum_of_squares_without_tasks, "recorded 0 task runs"),
        (2, sum_of_squares_wrong_maths, "expected 30"),
        (3, average_untyped, "the run started"),
        (3, average_unvalidated, "the run started"),
        (4, count_items_silent, "no log line"),
        (4, count_items_plain_print, "no log line"),
        (5, double_all_sequential, "one after another"),
        (5, double_all_returns_futures, "not the futures"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected(course_server, number, wrong, expected_message):
    outcome = EX.evaluate(number, wrong)
    assert outcome.status == "failed"
    assert expected_message in outcome.message
