"""Exercises for pair 01 (flows and tasks): graders read the flow and task runs the Prefect server recorded."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.exceptions import ParameterTypeError

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


def _grade_greet(answer: Any) -> str:
    require_flow(answer, "greet")
    value, state = run_flow(answer, "Ada")
    expect(state.is_completed(), f"the flow run ended {state.name}: {short(value)}")
    expect(value == "Hello, Ada!", f"greet('Ada') returned {short(value)}; expected 'Hello, Ada!'")
    recorded = read_flow_run(state)
    expect(recorded.parameters == {"name": "Ada"}, f"the server recorded parameters {recorded.parameters!r}")
    return f"The server recorded flow run '{recorded.name}' with name='Ada', state {recorded.state_name}."


def _grade_sum_of_squares(answer: Any) -> str:
    require_flow(answer, "sum_of_squares")
    value, state = run_flow(answer, [1, 2, 3, 4])
    expect(state.is_completed(), f"the flow run ended {state.name}: {short(value)}")
    expect(value == 30, f"sum_of_squares([1, 2, 3, 4]) returned {short(value)}; expected 30")
    runs = task_runs(state)
    expect(
        len(runs) == 4,
        f"the server recorded {len(runs)} task runs; expected 4 (one per number). "
        "Compute each square in a @task and call it from the flow.",
    )
    expect(all(r.state == "Completed" for r in runs), f"task run states: {[r.state for r in runs]}")
    return "4 task runs recorded, all Completed, and the flow returned 30."


def _grade_average(answer: Any) -> str:
    require_flow(answer, "average")
    value, state = run_flow(answer, [1, 2, 3, 6])
    expect(state.is_completed() and value == 3.0, f"average([1, 2, 3, 6]) gave {short(value)}; expected 3.0")
    try:
        answer("not a list of numbers")
    except ParameterTypeError:
        return "Prefect rejected 'not a list of numbers' before your function ran (the run is recorded Failed)."
    except Exception as error:
        raise CheckFailed(
            f"the run started and then failed inside the flow with {type(error).__name__}. "
            "Type-hint the parameter so Prefect rejects the input before the run starts."
        ) from None
    raise CheckFailed("average('not a list of numbers') was accepted. Type-hint the parameter as a list of floats.")


def _grade_count_items(answer: Any) -> str:
    require_flow(answer, "count_items")
    value, state = run_flow(answer, ["apple", "pear", "fig"])
    expect(state.is_completed() and value == 3, f"count_items([...3 items...]) gave {short(value)}; expected 3")
    messages = flow_run_logs(state, contains="counted 3 items")
    expect(
        any("counted 3 items" in m for m in messages),
        "no log line containing 'counted 3 items' reached the Prefect server "
        f"(it stored {len(messages)} lines for this run). Use get_run_logger() or @flow(log_prints=True).",
    )
    return "The server stored the log line 'counted 3 items' for this flow run."


def _grade_double_all(answer: Any) -> str:
    require_flow(answer, "double_all")
    value, state = run_flow(answer, [0, 1, 2, 3])
    expect(state.is_completed(), f"the flow run ended {state.name}: {short(value)}")
    expect(
        isinstance(value, list) and all(isinstance(v, int) for v in value),
        f"the flow returned {short(value)}; return the task results (call .result() on each future), not the futures",
    )
    expect(value == [0, 2, 4, 6], f"double_all([0, 1, 2, 3]) returned {short(value)}; expected [0, 2, 4, 6]")
    runs = task_runs(state)
    expect(len(runs) == 4, f"the server recorded {len(runs)} task runs; expected 4")
    peak = peak_overlap(runs)
    expect(peak >= 2, "the server's start and end times show the 4 task runs ran one after another; use .submit()")
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
                "Annotate the parameter: `def average(values: list[float]) -> float:`",
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
