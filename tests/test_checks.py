import socket

import pytest

from lessons_src.checks import (
    TODO,
    CheckFailed,
    Exercise,
    ExerciseSet,
    call_answer,
    call_in_thread,
    describe,
    expect,
    require_flow,
    require_type,
    short,
)
from lessons_src.exercises import available_pairs, exercises

pytestmark = pytest.mark.usefixtures("no_course_server")  # these checks need no server


def _double(x):
    return 2 * x


def _grade(answer):
    expect(callable(answer), f"expected a function, got {type(answer).__name__}")
    expect(answer(3) == 6, f"f(3) returned {answer(3)!r}; expected 6")
    return "f(3) == 6"


EXAMPLE = ExerciseSet(
    "99", "example", [Exercise(1, "double it", _grade, ["multiply", "by two"], [_double], lambda: _double)]
)


def test_correct_answer_passes_and_prints_a_tick(capsys):
    assert EXAMPLE.check(1, _double) is True
    assert "✅ Exercise 99.1 (double it): passed. f(3) == 6" in capsys.readouterr().out


def test_wrong_answer_fails_with_the_observation_and_where_to_get_help(capsys):
    assert EXAMPLE.check(1, lambda x: x + 1) is False
    out = capsys.readouterr().out
    assert "❌" in out and "f(3) returned 4; expected 6" in out and "ex.hint(1)" in out


def test_todo_placeholder_is_reported_as_not_solved_and_never_raises(capsys):
    for unsolved in (TODO, [1, TODO], {"a": TODO}):
        assert EXAMPLE.evaluate(1, unsolved).status == "unsolved"
    assert EXAMPLE.check(1, TODO) is False
    assert "not solved yet" in capsys.readouterr().out


def test_code_that_raises_or_has_the_wrong_type_gets_a_message_not_a_traceback():
    def broken(x):
        raise KeyError("oops")

    outcome = EXAMPLE.evaluate(1, broken)
    assert outcome.status == "failed" and "KeyError" in outcome.message
    assert "expected a function, got int" in EXAMPLE.evaluate(1, 42).message


def test_not_implemented_counts_as_unsolved():
    def stub(x):
        raise NotImplementedError

    assert EXAMPLE.evaluate(1, stub).status == "unsolved"


def test_hints_print_one_level_at_a_time_and_solutions_print_source(capsys):
    EXAMPLE.hint(1, level=1)
    assert capsys.readouterr().out.strip() == "Hint 1/2: multiply"
    EXAMPLE.hint(1)
    assert "Hint 2/2: by two" in capsys.readouterr().out
    EXAMPLE.solution(1)
    assert "def _double(x):" in capsys.readouterr().out


def test_unknown_exercise_number_names_the_valid_ones():
    with pytest.raises(ValueError, match="exercises are 1"):
        EXAMPLE.get(7)


def test_require_flow_explains_the_decorator():
    with pytest.raises(CheckFailed, match="@flow"):
        require_flow(_double)


def test_short_cuts_long_values():
    assert len(short("x" * 500)) < 100


def test_describe_names_an_exception_and_cuts_it_at_300_characters():
    assert describe(ValueError("bad input")) == "ValueError: bad input"
    assert len(describe(RuntimeError("x" * 1000))) == 300 and describe(RuntimeError("x" * 1000)).endswith("...")
    assert describe([1, 2]) == short([1, 2])
    assert repr(TODO) == "TODO" and not TODO


def test_every_pair_module_is_found_and_unknown_pairs_are_explained():
    assert "01" in available_pairs()
    assert exercises("1").pair == "01"
    with pytest.raises(ValueError, match="available"):
        exercises("77")


def test_every_exercise_set_has_hints_and_a_solution_with_source():
    for pair in available_pairs():
        exercise_set = exercises(pair)
        assert 4 <= len(exercise_set.exercises) <= 6, pair
        for exercise in exercise_set.exercises:
            assert exercise.hints and exercise.solution, (pair, exercise.number)
            assert exercise_set.solution_source(exercise.number).strip()


def test_todo_is_found_in_code_not_in_comments_or_strings():
    def stub(x):
        return TODO

    def assigns(x):
        result = TODO
        return result

    def compares(x):
        return 2 * x if x is not TODO else 0

    def finished(x):
        # was: TODO
        return 2 * x  # TODO: tidy later

    def mentions(x):
        print("TODO list done")
        return 2 * x

    for unsolved in (stub, assigns, compares):
        assert EXAMPLE.evaluate(1, unsolved).status == "unsolved", unsolved.__name__
    for solved in (finished, mentions):
        outcome = EXAMPLE.evaluate(1, solved)
        assert outcome.status == "passed", (solved.__name__, outcome)


def _helper_left_as_todo(x):
    return TODO


def test_an_answer_calling_a_helper_that_still_uses_todo_is_unsolved():
    def answer(x):
        return 2 * x + 0 * (_helper_left_as_todo(x) is None)

    assert EXAMPLE.evaluate(1, answer).status == "unsolved"


def test_an_error_in_the_learners_code_names_the_line():
    def divides(x):
        return x / 0

    outcome = EXAMPLE.evaluate(1, divides)
    assert outcome.status == "failed", outcome
    assert "your code raised ZeroDivisionError" in outcome.message and "return x / 0" in outcome.message


def test_an_error_in_the_course_is_not_blamed_on_the_learner(capsys):
    broken_check = ExerciseSet("99", "example", [Exercise(1, "a check that breaks", int, ["-"], [_double], str)])
    outcome = broken_check.evaluate(1, "not a number")  # int("not a number") raises inside the check, not in an answer
    assert outcome.status == "course-problem", outcome
    assert "your code" not in outcome.message and "python -m lessons_src doctor" in outcome.message
    broken_check.check(1, "not a number")
    printed = capsys.readouterr().out
    assert "not your answer" in printed and "ex.hint" not in printed and "❌" not in printed


def test_a_course_server_that_stopped_answering_is_reported_with_the_command(monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{dead}/api")
    for answer in (lambda x: x + 1, lambda x: 1 / 0):  # a wrong answer and a raising one: neither is blamed
        outcome = EXAMPLE.evaluate(1, answer)
        assert outcome.status == "course-problem", outcome
        assert "python -m lessons_src server start" in outcome.message


def test_require_type_says_what_was_expected_and_what_arrived():
    assert require_type(["a"], list, "tags") == ["a"]
    with pytest.raises(CheckFailed, match=r"tags should be list, for example \['course'\]; got str 'course'"):
        require_type("course", list, "tags", example="['course']")
    with pytest.raises(CheckFailed, match="got bool"):
        require_type(True, int, "retries")


def test_require_flow_can_ask_for_a_sync_flow():
    from prefect import flow

    @flow
    async def asynchronous() -> int:
        return 1

    assert require_flow(asynchronous) is asynchronous
    with pytest.raises(CheckFailed, match="wants a sync flow"):
        require_flow(asynchronous, sync=True)


def test_call_answer_returns_the_value_of_sync_and_async_functions():
    async def later(x: int) -> int:
        return x + 1

    assert call_answer(later, 1) == 2
    assert call_answer(lambda x: x + 1, 1) == 2


def test_call_in_thread_runs_sync_and_async_functions_off_a_running_loop_and_hands_back_errors():
    import asyncio
    import threading

    def sync_answer(x: int) -> tuple[int, bool]:
        try:
            asyncio.get_running_loop()
            loop_running = True
        except RuntimeError:
            loop_running = False
        return x + 1, loop_running or threading.current_thread() is threading.main_thread()

    async def async_answer(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    def broken() -> None:
        raise ValueError("the learner's bug")

    async def from_a_notebook_loop() -> tuple[tuple[int, bool], int]:
        return call_in_thread(sync_answer, 1), call_in_thread(async_answer, 4)

    assert asyncio.run(from_a_notebook_loop()) == ((2, False), 8)
    with pytest.raises(ValueError, match="the learner's bug"):
        call_in_thread(broken)


def test_fire_times_compare_schedules_by_what_they_do():
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    from lessons_src.schedule_times import WINDOW_START, fire_times

    weekdays = fire_times(CronSchedule(cron="0 9 * * 1-5", timezone="Europe/Paris"))
    assert weekdays == fire_times(CronSchedule(cron="0 9 * * MON-FRI", timezone="Europe/Paris"))
    # 2028 starts on a Saturday and has 366 days: 52 whole weeks of 5 weekdays, then a Saturday and a Sunday.
    assert len(weekdays) == 260, len(weekdays)
    assert weekdays[0] == WINDOW_START.replace(day=3, hour=8), weekdays[0]  # Monday 09:00 in Paris is 08:00 UTC
    assert fire_times(IntervalSchedule(interval=21600))[:3] != weekdays[:3]


def test_run_coroutine_works_with_and_without_a_running_event_loop():
    import asyncio

    from lessons_src.checks import run_coroutine

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def from_inside_a_loop() -> int:  # as in a notebook cell, where a loop is already running
        return run_coroutine(answer())

    assert run_coroutine(answer()) == 42
    assert asyncio.run(from_inside_a_loop()) == 42


def test_without_traceback_keeps_the_first_line_and_the_exception():
    from lessons_src.checks import without_traceback

    logged = (
        "An error was encountered while running hook 'record'\nTraceback (most recent call last):\n"
        '  File "x.py", line 1, in hook\n    record(state)\nTypeError: record() takes 1 positional argument\n'
    )
    assert without_traceback(logged) == (
        "An error was encountered while running hook 'record' ... TypeError: record() takes 1 positional argument"
    )
    assert without_traceback("one line") == "one line" and without_traceback("") == ""
