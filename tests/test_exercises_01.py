"""Pair 01's checks pass right answers written differently (sync or async flows) and reject near misses clearly."""

import statistics
import time

import pytest
from prefect import flow, get_run_logger, task
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from lessons_src.exercises import exercises

EX = exercises("01")


# ---- right answers, written differently from the reference ----


@flow
async def greet_async(name: str) -> str:
    return f"Hello, {name}!"


@flow(name="greeter")
def greet_other_parameter_name(who: str) -> str:
    return "Hello, " + who + "!"


@task
def square_power(x: int) -> int:
    return x**2


@flow
def sum_of_squares_mapped(numbers: list[int]) -> int:
    return sum(square_power.map(numbers).result())


@flow
async def sum_of_squares_async(numbers: list[int]) -> int:
    total = 0
    for n in numbers:
        total += square_power(n)
    return total


@flow
def average_statistics(values: list[float]) -> float:
    return statistics.mean(values)


@flow
async def average_async(values: list[int | float]) -> float:
    return sum(values) / len(values)


@flow(log_prints=True)
def count_items_log_prints(items: list[str]) -> int:
    print(f"counted {len(items)} items")
    return len(items)


@task
def log_count(items: list[str]) -> int:
    get_run_logger().info("counted %d items", len(items))
    return len(items)


@flow
async def count_items_async_in_a_task(items: list[str]) -> int:
    return log_count(items)


@task
def slow_double(x: int) -> int:
    time.sleep(0.3)
    return 2 * x


@flow
def double_all_mapped(numbers: list[int]) -> list[int]:
    return slow_double.map(numbers).result()


@flow
def double_all_wait_then_collect(numbers: list[int]) -> list[int]:
    futures = [slow_double.submit(n) for n in numbers]
    wait(futures)
    return [future.result() for future in futures]


@flow
async def double_all_async(numbers: list[int]) -> list[int]:
    futures = [slow_double.submit(n) for n in numbers]
    return [future.result() for future in futures]


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, greet_async),
        (1, greet_other_parameter_name),
        (2, sum_of_squares_mapped),
        (2, sum_of_squares_async),
        (3, average_statistics),
        (3, average_async),
        (4, count_items_log_prints),
        (4, count_items_async_in_a_task),
        (5, double_all_mapped),
        (5, double_all_async),
        (5, double_all_wait_then_collect),
    ],
    ids=lambda value: getattr(value, "name", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


# ---- wrong answers a learner would really write ----


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
def sum_of_squares_of_positions(numbers: list[int]) -> int:
    return sum(square_power(i) for i in range(1, len(numbers) + 1))  # right only when numbers == [1, 2, 3, 4]


@flow
def average_untyped(values):
    return sum(values) / len(values)


@flow(validate_parameters=False)
def average_unvalidated(values: list[float]) -> float:
    return sum(values) / len(values)


@flow
def average_floor_division(values: list[float]) -> float:
    return sum(values) // len(values)  # right only when the mean is a whole number


@flow
def average_int_hint(values: list[int]) -> float:
    return sum(values) / len(values)  # refuses 1.5 before the run


@flow
def count_items_silent(items: list[str]) -> int:
    return len(items)


@flow
def count_items_plain_print(items: list[str]) -> int:
    print(f"counted {len(items)} items")  # without log_prints=True this never reaches the server
    return len(items)


@flow
def count_items_logs_the_list(items: list[str]) -> int:
    get_run_logger().info(f"counted {items} items")
    return len(items)


@flow
def double_all_sequential(numbers: list[int]) -> list[int]:
    return [slow_double(n) for n in numbers]


@flow
def double_all_returns_futures(numbers: list[int]):
    return [slow_double.submit(n) for n in numbers]


@flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
def double_all_one_worker(numbers: list[int]) -> list[int]:
    return slow_double.map(numbers).result()  # mapped, but one thread runs them one at a time


@flow
def double_all_waits_for_each(numbers: list[int]) -> list[int]:
    return [slow_double.submit(n).result() for n in numbers]


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, greet_plain, "should be a Prefect flow"),
        (1, greet_wrong_text, "should return 'Hello, Ada!'; it returned 'Hi Ada'"),
        (2, sum_of_squares_without_tasks, "recorded 0 task runs"),
        (2, sum_of_squares_wrong_maths, "should return 87 (4 + 9 + 25 + 49); it returned 91"),
        (2, sum_of_squares_of_positions, "it returned 30"),
        (3, average_untyped, "started and then failed inside the flow with TypeError"),
        (3, average_unvalidated, "started and then failed inside the flow"),
        (3, average_floor_division, "should return 2.6667 (8.0 / 3, use / not //); it returned 2.0"),
        (3, average_int_hint, "Prefect rejected average([1.5, 2.5, 4.0]) before the run"),
        (4, count_items_silent, "no log line"),
        (4, count_items_plain_print, "no log line"),
        (4, count_items_logs_the_list, "among them \"counted ['apple', 'pear', 'fig'] items\""),
        (5, double_all_sequential, "one after another"),
        (5, double_all_returns_futures, "State objects, not numbers"),
        (5, double_all_waits_for_each, "one after another"),
        (5, double_all_one_worker, "max_workers=1 also runs them one at a time"),
    ],
    ids=lambda value: getattr(value, "name", getattr(value, "__name__", str(value)))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome
