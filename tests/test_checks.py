import pytest

from lessons_src.checks import TODO, CheckFailed, Exercise, ExerciseSet, expect, require_flow, short
from lessons_src.exercises import available_pairs, exercises


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


def test_a_function_still_returning_todo_is_unsolved_even_before_it_runs():
    def stub(x):
        return TODO

    def assigns(x):
        result = TODO
        return result

    def finished(x):
        # the word TODO in a comment does not count
        return 2 * x

    assert EXAMPLE.evaluate(1, stub).status == "unsolved"
    assert EXAMPLE.evaluate(1, assigns).status == "unsolved"
    assert EXAMPLE.evaluate(1, finished).status == "passed"


@pytest.mark.parametrize(
    ("pair", "number"),
    [(pair, e.number) for pair in sorted(available_pairs()) for e in exercises(pair).exercises],
)
def test_every_exercise_reports_todo_as_not_solved_yet(pair, number):
    # every reference solution passing its check is tested in a real kernel: tests/test_exercises_in_kernel.py
    assert exercises(pair).evaluate(number, TODO).status == "unsolved"


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
