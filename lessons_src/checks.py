"""The exercise-check framework: grade an answer, print one clear line, reveal hints and reference solutions."""

from __future__ import annotations

import asyncio
import inspect
import re
import reprlib
import textwrap
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class _Todo:
    """The placeholder an unsolved exercise leaves in place of an answer."""

    def __repr__(self) -> str:
        return "TODO"

    def __bool__(self) -> bool:
        return False


TODO: Any = _Todo()


class CheckFailed(AssertionError):
    """An answer was graded and found wrong; the message says what was observed."""


class NotSolved(Exception):
    """The answer still contains the TODO placeholder."""


def short(value: Any) -> str:
    """Return a repr of `value` cut to a readable length for a check's message."""
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 80
    shortener.maxlist = 6
    return shortener.repr(value)


def expect(condition: bool, message: str) -> None:
    """Fail the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


_TODO_AS_VALUE = re.compile(r"(return|=|\()\s*TODO\b")


def _source_uses_todo(value: Any) -> bool:
    """Return True for a function (or task or flow) whose code still uses TODO as a value."""
    function = getattr(value, "fn", value)
    if not inspect.isfunction(function):
        return False
    try:
        return bool(_TODO_AS_VALUE.search(inspect.getsource(function)))
    except (OSError, TypeError):
        return False


def require_solved(value: Any) -> Any:
    """Return `value`, or stop the check as "not solved yet" when it is, contains or returns the TODO placeholder."""
    if value is TODO or (isinstance(value, (list, tuple, set)) and any(v is TODO for v in value)):
        raise NotSolved()
    if isinstance(value, dict) and any(v is TODO for v in value.values()):
        raise NotSolved()
    if _source_uses_todo(value):
        raise NotSolved()
    return value


@dataclass(frozen=True)
class Outcome:
    """The result of grading one answer: status is "passed", "failed" or "unsolved"."""

    status: str
    message: str

    @property
    def passed(self) -> bool:
        """True when the answer was accepted."""
        return self.status == "passed"


@dataclass(frozen=True)
class Exercise:
    """One exercise: its grader, its hints (gentlest first) and the objects whose source is the reference solution."""

    number: int
    title: str
    grade: Callable[[Any], str]
    hints: Sequence[str]
    solution: Sequence[Any]
    answer: Callable[[], Any]


@dataclass
class ExerciseSet:
    """The exercises of one notebook pair, with `check`, `hint` and `solution` for use in the notebook."""

    pair: str
    title: str
    exercises: list[Exercise] = field(default_factory=list)

    def get(self, number: int) -> Exercise:
        """Return exercise `number`, or explain which numbers exist."""
        for exercise in self.exercises:
            if exercise.number == number:
                return exercise
        valid = ", ".join(str(e.number) for e in self.exercises)
        raise ValueError(f"Pair {self.pair} has no exercise {number!r}; its exercises are {valid}.")

    def evaluate(self, number: int, answer: Any) -> Outcome:
        """Grade `answer` for exercise `number` without printing."""
        exercise = self.get(number)
        try:
            require_solved(answer)
            return Outcome("passed", exercise.grade(answer))
        except (NotSolved, NotImplementedError):
            return Outcome("unsolved", "not solved yet: replace TODO with your answer, then run the cell again.")
        except CheckFailed as failure:
            return Outcome("failed", str(failure))
        except Exception as error:  # a learner's code may raise anything; report it without a traceback
            return Outcome("failed", f"your code raised {type(error).__name__}: {error}")

    def check(self, number: int, answer: Any) -> bool:
        """Grade `answer` for exercise `number`, print one line saying so, and return whether it passed."""
        outcome = self.evaluate(number, answer)
        label = f"Exercise {self.pair}.{number} ({self.get(number).title})"
        if outcome.status == "passed":
            print(f"✅ {label}: passed. {outcome.message}")
        elif outcome.status == "unsolved":
            print(f"⏳ {label}: {outcome.message}")
        else:
            print(
                f"❌ {label}: {outcome.message}\n"
                f"   Stuck? ex.hint({number}) gives a hint; ex.solution({number}) shows one answer."
            )
        return outcome.passed

    def hint(self, number: int, level: int | None = None) -> None:
        """Print hints for exercise `number`, up to `level` (all of them by default)."""
        hints = self.get(number).hints
        shown = hints if level is None else hints[: max(1, level)]
        for index, text in enumerate(shown, start=1):
            print(f"Hint {index}/{len(hints)}: {text}")

    def solution_source(self, number: int) -> str:
        """Return the source code of the reference solution for exercise `number`."""
        parts = [
            textwrap.dedent(inspect.getsource(getattr(obj, "fn", obj))).rstrip() for obj in self.get(number).solution
        ]
        return "\n\n\n".join(parts) + "\n"

    def solution(self, number: int) -> None:
        """Print the reference solution for exercise `number`."""
        print(f"# One solution to exercise {self.pair}.{number}: {self.get(number).title}\n")
        print(self.solution_source(number))


def require_flow(answer: Any, what: str = "your answer") -> Any:
    """Return `answer` if it is a Prefect flow, else fail with the fix (decorate it with @flow)."""
    from prefect import Flow

    expect(
        isinstance(answer, Flow),
        f"{what} should be a Prefect flow, but it is {type(answer).__name__}. Put @flow on the line above `def`.",
    )
    return answer


def require_task(answer: Any, what: str = "your answer") -> Any:
    """Return `answer` if it is a Prefect task, else fail with the fix (decorate it with @task)."""
    from prefect import Task

    expect(
        isinstance(answer, Task),
        f"{what} should be a Prefect task, but it is {type(answer).__name__}. Put @task on the line above `def`.",
    )
    return answer


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine (e.g. an async grader flow) to the end from sync code, also where a notebook's loop runs."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run_flow(flow: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Run a learner's flow and return (its result or exception, its final state), never raising its errors."""
    state = flow(*args, return_state=True, **kwargs)
    return require_solved(state.result(raise_on_failure=False, _sync=True)), state


def require_rate_limit(create: Callable[[str], Any], name: str) -> Any:
    """Delete limit `name`, let a learner's `create(name)` make it again, and return it if it can pace calls."""
    from lessons_src.limits import delete_limit, read_limit

    expect(callable(create), f"your answer should be a function that creates the limit, got {type(create).__name__}")
    delete_limit(name)
    create(name)
    made = read_limit(name)
    expect(made is not None, f"{getattr(create, '__name__', 'your function')}({name!r}) left no limit of that name")
    expect(
        made.slot_decay_per_second > 0,
        f"the server's limit is {short(made)}: without slot_decay_per_second its slots never free by themselves, "
        "and rate_limit() refuses it.",
    )
    return made
