"""The exercise-check framework: grade an answer, print one clear line, reveal hints and reference solutions."""

from __future__ import annotations

import ast
import asyncio
import inspect
import io
import reprlib
import sysconfig
import textwrap
import threading
import tokenize
import traceback
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
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


def describe(value: Any) -> str:
    """Describe a flow's result or exception for a check's message: an exception in full (up to 300 characters)."""
    if isinstance(value, BaseException):
        text = f"{type(value).__name__}: {value}"
        return text if len(text) <= 300 else text[:297] + "..."
    return short(value)


def without_traceback(text: str) -> str:
    """Return a logged message without the traceback Prefect appends: its first line and the exception it ends with."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    if not any(line.startswith("Traceback (most recent call last)") for line in lines):
        return " ".join(lines)
    first, last = lines[0], lines[-1]
    return first if first == last else f"{first} ... {last}"


def expect(condition: bool, message: str) -> None:
    """Fail the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


class CourseProblem(Exception):
    """The course's own machinery (server, demo API, a check) failed while grading; the message says what to do."""


def _names_in_code(source: str) -> set[str]:
    """Return the names used as code (not in comments or strings) in a piece of Python source."""
    source = textwrap.dedent(source)
    try:
        return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    except SyntaxError:  # a lambda cut out of a longer line: read its tokens instead
        names = set()
        try:
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type == tokenize.NAME:
                    names.add(token.string)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
        return names


_COURSE_AND_LIBRARY_DIRS = tuple(
    str(Path(p).resolve())
    for p in {
        Path(__file__).parent,
        *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
    }
)


def _is_learner_file(filename: str) -> bool:
    """Return True for code a learner wrote: a notebook cell or a file outside the course package and libraries."""
    if filename.startswith("<") and not filename.startswith("<ipython-input"):
        return False  # <frozen ...>, <string>: generated or built-in code
    resolved = str(Path(filename).resolve()) if not filename.startswith("<") else filename
    return not resolved.startswith(_COURSE_AND_LIBRARY_DIRS)


def _learner_functions(value: Any) -> list[Any]:
    """Return the plain function behind a learner's answer (also inside a task or flow), or nothing."""
    function = getattr(value, "fn", value)
    if inspect.isfunction(function) and _is_learner_file(function.__code__.co_filename):
        return [function]
    return []


def _uses_todo(value: Any, depth: int = 2) -> bool:
    """Return True when a learner's function, or one it calls by name, still uses TODO in its code."""
    for function in _learner_functions(value):
        try:
            names = _names_in_code(inspect.getsource(function))
        except (OSError, TypeError):
            continue
        if "TODO" in names:
            return True
        if depth > 0:
            called = (function.__globals__.get(name) for name in names & set(function.__code__.co_names))
            if any(_uses_todo(other, depth - 1) for other in called if other is not value):
                return True
    return False


def require_solved(value: Any) -> Any:
    """Return `value`, or stop the check as "not solved yet" when it is, contains or returns the TODO placeholder."""
    if value is TODO or (isinstance(value, (list, tuple, set)) and any(v is TODO for v in value)):
        raise NotSolved()
    if isinstance(value, dict) and any(v is TODO for v in value.values()):
        raise NotSolved()
    if _uses_todo(value) or (isinstance(value, (list, tuple)) and any(_uses_todo(v) for v in value)):
        raise NotSolved()
    return value


def require_type(value: Any, expected: type | tuple[type, ...], what: str, example: str = "") -> Any:
    """Return `value` if it has the expected type, else fail saying what was expected and what arrived."""
    if isinstance(value, expected) and not (isinstance(value, bool) and bool not in _as_tuple(expected)):
        return value
    names = " or ".join(t.__name__ for t in _as_tuple(expected))
    hint = f", for example {example}" if example else ""
    raise CheckFailed(f"{what} should be {names}{hint}; got {type(value).__name__} {short(value)}")


def require_signature(function: Any, args: tuple[Any, ...], what: str, expected: str) -> None:
    """Fail, naming the expected parameters, unless `function` (or the function behind a task or flow) takes `args`."""
    plain = getattr(function, "fn", function)
    try:
        signature = inspect.signature(plain)
    except (TypeError, ValueError):
        return  # a builtin or a callable object without a readable signature: let the call decide
    try:
        signature.bind(*args)
    except TypeError:
        raise CheckFailed(
            f"{what} should take {expected}; yours is {getattr(plain, '__name__', what)}{signature}"
        ) from None


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _where_in_learner_code(error: BaseException) -> str | None:
    """Return "line N: code" for the deepest frame of a learner's code in the error's traceback, if any."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_learner_file(f.filename)]
        if frames:
            frame = frames[-1]
            return f"line {frame.lineno}: {frame.line}" if frame.line else f"line {frame.lineno}"
        error = error.__cause__ or error.__context__
    return None


def course_services_problem() -> str | None:
    """Return what is wrong with the course's server or demo API (and the command that fixes it), or None."""
    from lessons_src.demo_api import demo_api_problem
    from lessons_src.server import server_problem

    return server_problem() or demo_api_problem()


def _keep_verdict(pair: str, number: int, title: str, status: str) -> None:
    """Record a check's verdict in the learner's progress (`python -m lessons_src progress`); never fail the check."""
    from lessons_src.progress import record_verdict

    try:
        record_verdict(pair, number, title, status)
    except OSError as error:
        print(f"(progress not saved: {error})")


@dataclass(frozen=True)
class Outcome:
    """The result of grading one answer: "passed", "failed", "unsolved" or "course-problem" (not the learner's)."""

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
            return _unless_course_problem(Outcome("failed", str(failure)))
        except CourseProblem as problem:
            return Outcome("course-problem", str(problem))
        except Exception as error:  # never a traceback: say whose code raised, and what to do
            return _classify(error)

    def check(self, number: int, answer: Any) -> bool:
        """Grade `answer` for exercise `number`, print one line saying so, and return whether it passed."""
        outcome = self.evaluate(number, answer)
        label = f"Exercise {self.pair}.{number} ({self.get(number).title})"
        _keep_verdict(self.pair, number, self.get(number).title, outcome.status)
        if outcome.status == "passed":
            print(f"✅ {label}: passed. {outcome.message}")
        elif outcome.status == "unsolved":
            print(f"⏳ {label}: {outcome.message}")
        elif outcome.status == "course-problem":
            print(f"⚠️ {label}: could not be graded, a course problem and not your answer: {outcome.message}")
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


def _unless_course_problem(outcome: Outcome) -> Outcome:
    """Turn a failure into a course problem when the course server or demo API stopped answering."""
    problem = course_services_problem()
    return Outcome("course-problem", problem) if problem else outcome


def _classify(error: Exception) -> Outcome:
    """Report an exception as the learner's (raised in their code) or as the course's own failure."""
    problem = course_services_problem()
    if problem:
        return Outcome("course-problem", problem)
    where = _where_in_learner_code(error)
    if where:
        return Outcome("failed", f"your code raised {type(error).__name__}: {error} (at {where})")
    return Outcome(
        "course-problem",
        f"the check itself raised {type(error).__name__}: {error}. Run the cell again; if it repeats, run "
        "`python -m lessons_src doctor` and report it with that output.",
    )


def require_flow(answer: Any, what: str = "your answer", sync: bool = False) -> Any:
    """Return `answer` if it is a Prefect flow (a sync one when `sync`), else fail with the fix."""
    from prefect import Flow

    expect(
        isinstance(answer, Flow),
        f"{what} should be a Prefect flow, but it is {type(answer).__name__}. Put @flow on the line above `def`.",
    )
    expect(
        not (sync and inspect.iscoroutinefunction(answer.fn)),
        f"this exercise wants a sync flow: write `def`, not `async def`, for {what}",
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


def call_answer(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a learner's function, sync or `async def`, and return its value (an awaitable is awaited)."""
    from prefect.utilities.asyncutils import run_coro_as_sync

    value = function(*args, **kwargs)
    return run_coro_as_sync(value) if inspect.iscoroutine(value) else value


def call_in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Call a learner's function, sync or `async def`, in a thread of its own and return its value (or raise its error).

    No event loop runs in that thread, so Prefect's dual functions (`from_source`, `deploy`, `serve`, ...) run
    synchronously in a plain `def`, and an `async def` gets a fresh loop: both work although a notebook's loop runs.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            value = function(*args)
            outcome["value"] = asyncio.run(value) if inspect.iscoroutine(value) else value
        except BaseException as error:  # handed back to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def run_flow(flow: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Run a learner's sync or async flow; return (its result or exception, its final state), never raising.

    Prefect's console lines are hidden meanwhile (the server still stores them): a failure the check provokes is
    reported in its message, never as a printed traceback.
    """
    import logging

    from lessons_src.logs import quiet_console

    with quiet_console(logging.CRITICAL):
        state = call_answer(flow, *args, return_state=True, **kwargs)
    return require_solved(state.result(raise_on_failure=False, _sync=True)), state


def require_rate_limit(create: Callable[[str], Any], name: str) -> Any:
    """Delete limit `name`, let a learner's `create(name)` make it again, and return it if it can pace calls."""
    from lessons_src.pairs.p05_concurrency_limits import delete_limit, read_limit

    expect(callable(create), f"your answer should be a function that creates the limit, got {type(create).__name__}")
    delete_limit(name)
    call_answer(create, name)
    made = read_limit(name)
    expect(made is not None, f"{getattr(create, '__name__', 'your function')}({name!r}) left no limit of that name")
    expect(
        made.slot_decay_per_second > 0,
        f"the server's limit {name!r} has limit={made.limit}, slot_decay_per_second={made.slot_decay_per_second}: "
        "without slot_decay_per_second its slots never free by themselves, and rate_limit() refuses it.",
    )
    return made
