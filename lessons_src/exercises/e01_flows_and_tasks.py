"""Exercises for pair 01 (flows and tasks): graders read the flow and task runs the Prefect server recorded."""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.exceptions import ParameterTypeError
from prefect.futures import PrefectFuture
from prefect.states import State

from lessons_src.checks import CheckFailed, Exercise, ExerciseSet, expect, require_flow, run_flow, short
from lessons_src.runs import flow_run_logs, peak_overlap, read_flow_run, task_runs

# ---- reference solutions (shown by ex.solution(n)) ----


@flow
def greet(name: str) -> str:
    return f"Hello, {name}!"


@task
def square(x: int) -> int:
    return x * x


@flow
def sum_of_squares(numbers: list[int]) -> int:
    return sum(square(n) for n in numbers)


@flow
def average(values: list[float]) -> float:
    return sum(values) / len(values)


@flow
def count_items(items: list[str]) -> int:
    logger = get_run_logger()
    logger.info(f"counted {len(items)} items")
    return len(items)


@task
def slow_double(x: int) -> int:
    time.sleep(0.3)
    return 2 * x


@flow
def double_all(numbers: list[int]) -> list[int]:
    futures = [slow_double.submit(n) for n in numbers]
    return [future.result() for future in futures]


# ---- graders ----

# Inputs chosen so that near misses give other answers: the squares of 2, 3, 5, 7 are not the squares of the
# positions 1..4; the mean of 1.5, 2.5, 4.0 is not a whole number (so `//` and `list[int]` show).
SQUARES_INPUT, SQUARES_EXPECTED = [2, 3, 5, 7], 87
AVERAGE_INPUT, AVERAGE_EXPECTED = [1.5, 2.5, 4.0], 8.0 / 3.0


def _ended(state: Any, value: Any) -> str:
    """Say how a flow run ended, with the error it raised if it failed."""
    if state.is_completed():
        return f"it returned {short(value)}"
    if isinstance(value, BaseException):
        return f"the flow run ended {state.name} with {type(value).__name__}: {value}"
    return f"the flow run ended {state.name}: {state.message}"


def _grade_greet(answer: Any) -> str:
    require_flow(answer, "greet")
    value, state = run_flow(answer, "Ada")
    expect(
        state.is_completed() and value == "Hello, Ada!",
        f"greet('Ada') should return 'Hello, Ada!'; {_ended(state, value)}",
    )
    recorded = read_flow_run(state)
    expect(
        "Ada" in recorded.parameters.values(),
        f"the server recorded parameters {recorded.parameters!r}; expected the name 'Ada' among them",
    )
    return f"The server recorded flow run '{recorded.name}' with parameters {recorded.parameters}, state Completed."


def _grade_sum_of_squares(answer: Any) -> str:
    require_flow(answer, "sum_of_squares")
    value, state = run_flow(answer, SQUARES_INPUT)
    expect(
        state.is_completed() and value == SQUARES_EXPECTED,
        f"sum_of_squares({SQUARES_INPUT}) should return {SQUARES_EXPECTED} (4 + 9 + 25 + 49); {_ended(state, value)}",
    )
    runs = task_runs(state, expected=len(SQUARES_INPUT), timeout=5.0, or_fewer=True)  # one per number
    expect(
        len(runs) == len(SQUARES_INPUT),
        f"the server recorded {len(runs)} task runs; expected {len(SQUARES_INPUT)} (one per number). "
        "Compute each square in a @task and call it from the flow once per number.",
    )
    expect(
        all(r.state == "Completed" for r in runs),
        f"task run states {[r.state for r in runs]}; expected all Completed",
    )
    return f"{len(runs)} task runs recorded, all Completed, and the flow returned {SQUARES_EXPECTED}."


def _grade_average(answer: Any) -> str:
    require_flow(answer, "average")
    value, state = run_flow(answer, AVERAGE_INPUT)
    if isinstance(value, ParameterTypeError):
        raise CheckFailed(
            f"Prefect rejected average({AVERAGE_INPUT}) before the run "
            f"({str(value).strip().splitlines()[-1].strip()}): the type hint should accept any numbers, list[float]"
        )
    expect(
        state.is_completed()
        and isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isclose(value, AVERAGE_EXPECTED, rel_tol=1e-9),
        f"average({AVERAGE_INPUT}) should return {AVERAGE_EXPECTED:.4f} (8.0 / 3, use / not //); "
        f"{_ended(state, value)}",
    )
    rejected, bad_state = run_flow(answer, "not a list of numbers")
    expect(
        not bad_state.is_completed(),
        f"average('not a list of numbers') was accepted and returned {short(rejected)}. Type-hint the parameter "
        "as a list of numbers, list[float], so Prefect rejects the input before the run starts.",
    )
    expect(
        isinstance(rejected, ParameterTypeError),
        f"average('not a list of numbers') started and then failed inside the flow with {type(rejected).__name__}. "
        "Type-hint the parameter as a list of numbers, list[float], so Prefect rejects it before the run starts.",
    )
    return "Prefect rejected 'not a list of numbers' before your function ran (the run is recorded Failed)."


def _grade_count_items(answer: Any) -> str:
    require_flow(answer, "count_items")
    items = ["apple", "pear", "fig"]
    value, state = run_flow(answer, items)
    expect(
        state.is_completed() and value == 3,
        f"count_items({items}) should return 3; {_ended(state, value)}",
    )
    messages = flow_run_logs(state, contains="counted 3 items", timeout=10.0)  # a wrong answer waits this long
    close = [m for m in messages if "counted" in m]
    expect(
        any("counted 3 items" in m for m in messages),
        "no log line containing 'counted 3 items' reached the Prefect server "
        f"(it stored {len(messages)} lines for this run"
        + (f", among them {short(close[0])}" if close else "")
        + "). Use get_run_logger().info(...) (debug lines are not sent) or print with @flow(log_prints=True).",
    )
    return "The server stored the log line 'counted 3 items' for this flow run."


def _grade_double_all(answer: Any) -> str:
    require_flow(answer, "double_all")
    value, state = run_flow(answer, [0, 1, 2, 3])
    expect(state.is_completed(), f"double_all([0, 1, 2, 3]) should return [0, 2, 4, 6]; {_ended(state, value)}")
    items = value if isinstance(value, list | tuple) else [value]
    expect(
        not any(isinstance(v, PrefectFuture | State) for v in items),
        f"the flow returned {type(items[0]).__name__} objects, not numbers: a flow that returns futures gets their "
        "states. Call .result() on each future and return those values",
    )
    expect(
        isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        f"the flow should return a list of ints such as [0, 2, 4, 6]; got {type(value).__name__} {short(value)}",
    )
    expect(value == [0, 2, 4, 6], f"double_all([0, 1, 2, 3]) returned {short(value)}; expected [0, 2, 4, 6]")
    runs = task_runs(state, expected=4, timeout=5.0, or_fewer=True)  # one per number
    expect(len(runs) == 4, f"the server recorded {len(runs)} task runs; expected 4, one slow_double per number")
    peak = peak_overlap(runs)
    expect(
        peak >= 2,
        "the server's start and end times show the 4 task runs ran one after another; submit them all with "
        ".submit() (or .map()) before waiting for any result, on the flow's default task runner (a "
        "ThreadPoolTaskRunner with max_workers=1 also runs them one at a time)",
    )
    return f"4 task runs recorded, up to {peak} running at the same time."


EXERCISES = ExerciseSet(
    pair="01",
    title="Flows and tasks",
    exercises=[
        Exercise(
            1,
            "your first flow",
            _grade_greet,
            hints=[
                "A flow is a Python function with the @flow decorator from `prefect`.",
                'Return an f-string: f"Hello, {name}!"',
            ],
            solution=[greet],
            answer=lambda: greet,
        ),
        Exercise(
            2,
            "tasks inside a flow",
            _grade_sum_of_squares,
            hints=[
                "Write a @task that squares one number; the flow calls it once per number.",
                "sum(square(n) for n in numbers) calls the task four times for four numbers.",
            ],
            solution=[square, sum_of_squares],
            answer=lambda: sum_of_squares,
        ),
        Exercise(
            3,
            "reject bad input before the run",
            _grade_average,
            hints=[
                "Prefect validates a flow's arguments against its type hints before the run starts.",
                "Annotate the parameter: `def average(values: list[float]) -> float:`, and divide with `/`.",
            ],
            solution=[average],
            answer=lambda: average,
        ),
        Exercise(
            4,
            "log to the Prefect server",
            _grade_count_items,
            hints=[
                "Inside a flow, `get_run_logger()` returns a logger whose lines are sent to the server.",
                "logger.info(f'counted {len(items)} items'), or print(...) with @flow(log_prints=True).",
            ],
            solution=[count_items],
            answer=lambda: count_items,
        ),
        Exercise(
            5,
            "run tasks at the same time with .submit()",
            _grade_double_all,
            hints=[
                "Calling a task runs it now and waits; `.submit()` starts it and returns a future at once.",
                "Submit them all first, then collect: [f.result() for f in futures].",
            ],
            solution=[slow_double, double_all],
            answer=lambda: double_all,
        ),
    ],
)
