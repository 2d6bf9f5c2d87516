"""Each check of pair 04 rejects plausible wrong answers, saying why, and accepts right answers unlike the reference."""

import asyncio
import os

import pytest
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from lessons_src.checks import TODO
from lessons_src.exercises import exercises
from lessons_src.exercises.e04_concurrency import crunch_task, get_condition, get_condition_async

EX = exercises("04")


def test_a_choice_left_as_todo_is_unsolved():
    assert EX.evaluate(1, {**EX.get(1).answer(), "add 1 to each of 10,000 numbers": TODO}).status == "unsolved"


RIGHT_CHOICES = EX.get(1).answer()
threads_for_everything = dict.fromkeys(RIGHT_CHOICES, "threads")
processes_for_tiny_steps = {**RIGHT_CHOICES, "add 1 to each of 10,000 numbers": "processes"}
made_up_runner = {**RIGHT_CHOICES, "call a web API 200 times": "ConcurrentTaskRunner"}
a_job_left_out = {job: kind for job, kind in RIGHT_CHOICES.items() if "web API" not in job}
a_job_renamed = {**a_job_left_out, "call a web api 200 times": "threads"}
choices_in_capitals = {job: f" {kind.title()} " for job, kind in RIGHT_CHOICES.items()}


@flow
def conditions_result_in_loop(cities: list[str], delay: float) -> list[str]:
    return [get_condition.submit(city, delay).result() for city in cities]


@flow
def conditions_plain_calls(cities: list[str], delay: float) -> list[str]:
    return [get_condition(city, delay) for city in cities]


@flow
def conditions_sorted(cities: list[str], delay: float) -> list[str]:
    return sorted(get_condition.map(cities, delay).result())


@flow
def conditions_without_delay(cities: list[str]) -> list[str]:
    return get_condition.map(cities, 0.3).result()


@flow
def conditions_futures(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay)


@flow
async def conditions_async_flow_submitting(cities: list[str], delay: float) -> list[str]:
    futures = [get_condition.submit(city, delay) for city in cities]
    return [future.result() for future in futures]


@flow
def conditions_unlimited(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay).result()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def conditions_two_threads(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay).result()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
def conditions_three_threads(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay).result()


@flow
async def conditions_semaphore(cities: list[str], delay: float) -> list[str]:
    gate = asyncio.Semaphore(4)

    async def one(city: str) -> str:
        async with gate:
            return await get_condition_async(city, delay)

    return list(await asyncio.gather(*[one(city) for city in cities]))


@flow(task_runner=ThreadPoolTaskRunner(4))
def conditions_four_threads_submitted(cities: list[str], delay: float) -> list[str]:
    futures = [get_condition.submit(city=city, delay=delay) for city in cities]
    return [future.result() for future in futures]


@flow
async def conditions_awaited_one_by_one(cities: list[str], delay: float) -> list[str]:
    return [await get_condition_async(city, delay) for city in cities]


@flow
def conditions_sync_flow(cities: list[str], delay: float) -> list[str]:
    return get_condition.map(cities, delay).result()


@flow
async def conditions_task_group(cities: list[str], delay: float) -> list[str]:
    async with asyncio.TaskGroup() as group:
        running = [group.create_task(get_condition_async(city, delay)) for city in cities]
    return [task.result() for task in running]


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def crunch_all_threads(iterations: int, jobs: int) -> list[int]:
    return crunch_task.map([iterations] * jobs).result()


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
def crunch_all_one_process(iterations: int, jobs: int) -> list[int]:
    return crunch_task.map([iterations] * jobs).result()


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def crunch_all_called_directly(iterations: int, jobs: int) -> list[int]:
    return [crunch_task(iterations) for _ in range(jobs)]


@flow(task_runner=ProcessPoolTaskRunner(2))
def crunch_all_submitted(iterations: int, jobs: int) -> list[int]:
    futures = [crunch_task.submit(iterations) for _ in range(jobs)]
    return [future.result() for future in futures]


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def crunch_all_result_after_each_submit(iterations: int, jobs: int) -> list[int]:
    return [crunch_task.submit(iterations).result() for _ in range(jobs)]


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
async def crunch_all_async_flow(iterations: int, jobs: int) -> list[int]:
    return crunch_task.map([iterations] * jobs).result()


@pytest.mark.parametrize(
    ("number", "wrong", "expected_message"),
    [
        (1, threads_for_everything, "not 'threads', because it computes in Python"),
        (1, processes_for_tiny_steps, "batch it into one task"),
        (1, made_up_runner, "answer each job with one of"),
        (1, a_job_left_out, "missing: ['call a web API 200 times']"),
        (1, a_job_renamed, "keep the three jobs as they are written"),
        (2, conditions_result_in_loop, "ran one after another"),
        (2, conditions_plain_calls, "ran one after another"),
        (2, conditions_sorted, "in the cities' order"),
        (2, conditions_futures, "not the conditions: return the tasks' results"),
        (2, conditions_without_delay, "conditions should take two arguments, the cities and the delay"),
        (3, conditions_unlimited, "rejected"),
        (3, conditions_two_threads, "at most 2 in flight: 4 waves of 0.6 s"),
        (3, conditions_three_threads, "at most 3 in flight: 3 waves of 0.6 s take at least 1.8 s"),
        (4, conditions_awaited_one_by_one, "each call was awaited"),
        (4, conditions_sync_flow, "should be an async flow"),
        (5, crunch_all_threads, "ran in this process"),
        (5, crunch_all_one_process, "twice in a row the task runs ran in 1 worker process"),
        (5, crunch_all_called_directly, "ProcessPoolTaskRunner runs only the tasks you .submit() or .map()"),
        (5, crunch_all_result_after_each_submit, "submit or map every job before collecting any result"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_wrong_answers_are_rejected_twice_alike(graded, fresh_demo_api, number, wrong, expected_message):
    outcome = graded(EX, number, wrong)
    assert outcome.status == "failed" and expected_message in outcome.message, outcome


@pytest.mark.parametrize(
    ("number", "right"),
    [
        (1, choices_in_capitals),
        (2, conditions_async_flow_submitting),
        (3, conditions_four_threads_submitted),
        (4, conditions_task_group),
        (5, crunch_all_submitted),
        (5, crunch_all_async_flow),
    ],
    ids=lambda value: getattr(value, "__name__", str(value))[:30],
)
def test_right_answers_written_differently_pass_twice(graded, fresh_demo_api, number, right):
    outcome = graded(EX, number, right)
    assert outcome.status == "passed", outcome


def test_limits_are_cleared_after_the_budget_check(course_server, fresh_demo_api):
    EX.evaluate(3, conditions_unlimited)
    assert fresh_demo_api.stats().config == {"max_in_flight": None, "max_per_second": None}


def test_reference_tasks_run_outside_a_flow(fresh_demo_api):
    assert get_condition.fn("oslo", 0) == "snow"
    assert asyncio.run(get_condition_async.fn("cairo", 0)) == "sunny"
    assert crunch_task.fn(10) == os.getpid()


class _Stats:
    """What the demo API's stats look like to the budget grader: no 429, 4 in flight, and a span by its clock."""

    def __init__(self, span: float) -> None:
        self.rejected, self.peak_in_flight = 0, 4
        self.requests = [{"accepted": True, "arrived": 0.0, "finished": span}]


class _Completed:
    name = "Completed"

    def is_completed(self) -> bool:
        return True


def _runs_taking(monkeypatch, spans: list[float]) -> list[float]:
    """Make the budget grader's runs report `spans` one after another; return the list it consumes."""
    from lessons_src.exercises import e04_concurrency

    left = list(spans)
    value = e04_concurrency._expected_conditions(e04_concurrency.BUDGET_CITIES)
    monkeypatch.setattr(e04_concurrency, "_budget_run", lambda answer: (value, _Completed(), _Stats(left.pop(0))))
    return left


def test_a_right_answer_slowed_twice_by_a_busy_machine_passes_on_its_third_run(monkeypatch):
    from lessons_src.exercises.e04_concurrency import _grade_time_budget

    left = _runs_taking(monkeypatch, [2.3, 1.9, 1.3])
    assert "in 1.30 s" in _grade_time_budget(conditions_four_threads_submitted) and left == []


def test_a_right_answer_slowed_on_every_run_is_the_machine_s_problem_not_the_learner_s(monkeypatch):
    from lessons_src.checks import CourseProblem
    from lessons_src.exercises.e04_concurrency import _grade_time_budget

    _runs_taking(monkeypatch, [2.3, 1.9, 2.0])
    with pytest.raises(CourseProblem, match=r"3 times in a row .* 2\.30, 1\.90, 2\.00 s"):
        _grade_time_budget(conditions_four_threads_submitted)


def test_an_asyncio_gate_is_right_and_a_busy_machine_is_never_blamed_on_the_learner(course_server, fresh_demo_api):
    """An async flow gating its tasks with asyncio.Semaphore(4) is a right answer written differently.

    Its task bookkeeping runs on one event loop inside the gate, so it is the answer most stretched by a loaded
    machine: 1.33-1.40 s quiet and 1.47-1.50 s beside two CPU burners (budget 1.8 s), but 1.79 s and then 3.13,
    2.28 and 2.21 s in CI under 4 test processes. There the check must say the machine is at fault, with the spans,
    and never fail the learner; the threaded right answers above must pass outright.
    """
    import logging

    from lessons_src.logs import quiet_console

    with quiet_console(logging.CRITICAL):
        outcomes = [EX.evaluate(3, conditions_semaphore) for _ in range(2)]
    for outcome in outcomes:
        assert outcome.status == "passed" or (
            outcome.status == "course-problem" and "4 calls at once with no 429" in outcome.message
        ), outcome
        assert "Traceback" not in outcome.message, outcome
