"""docs/prefect2_to_3.md against the installed Prefect: old code fails as the page says; new names and commands exist.

Each table row is `Prefect 2 | outcome | Prefect 3.x.y | note | lesson` (3.x.y: the pinned version). Every code span
in the first and third columns is checked: Python spans are imported (one name at a time) or resolved name by name
without being called, with keyword arguments checked against the callee's signature; `PREFECT_*` spans are looked up
among Prefect's settings; `prefect ...` spans are run with `--help` in one subprocess that forks a clean child per
command. The behaviour the note of the `my_task.submit(...)` row states (futures nobody waits for) is run as flows
on the course server.
"""

from __future__ import annotations

import ast
import datetime
import functools
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lessons_src.doctor import pinned_versions
from lessons_src.paths import repo_root

ROOT = repo_root()
PAGE = ROOT / "docs" / "prefect2_to_3.md"
PINNED = pinned_versions()["prefect"]
HEADER = ["Prefect 2 (as pasted)", f"Pasted into {PINNED}", f"Prefect {PINNED}", "Note", "Lesson"]
OUTCOMES = {
    "ImportError",
    "AttributeError",
    "TypeError",
    "unknown command",
    "ignored",
    "DeprecationWarning",
    "alias",
    "works",
    "changed",
}
# What a span's observed label proves: "ok" runs cleanly; "alias" runs cleanly and is the same object as a new name.
SATISFIES = {"ok": {"works", "changed"}, "alias": {"alias", "works", "changed"}}
SETTING = re.compile(r"^(PREFECT_[A-Z0-9_]+)(?:=(\S*))?$")
CODE_SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)]+)\)")
UNKNOWN = object()  # the value of a call: spans are resolved, never run


@dataclass
class Row:
    """One table row of the page, reduced to what the test checks."""

    line: int
    old: list[str]
    outcomes: set[str]
    new: list[str]
    lesson: str


def split_cells(line: str) -> list[str]:
    """Split a markdown table line on `|` outside code spans."""
    cells, current, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def parse_rows(text: str) -> list[Row]:
    """Read every row of every table on the page; a table with another header fails the test."""
    rows, in_table = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("|"):
            in_table = False
            continue
        cells = split_cells(line)
        if cells == HEADER:
            in_table = True
        elif set(line) <= set("|-: "):
            assert in_table, f"line {number}: a table must use the header {HEADER}"
        else:
            assert in_table and len(cells) == len(HEADER), f"line {number}: not a row of a checked table"
            rows.append(
                Row(
                    line=number,
                    old=CODE_SPAN.findall(cells[0]),
                    outcomes=set(re.findall(r"\*\*([^*]+)\*\*", cells[1])),
                    new=CODE_SPAN.findall(cells[2]),
                    lesson=cells[4],
                )
            )
    return rows


ROWS = parse_rows(PAGE.read_text())


def row_id(row: Row) -> str:
    """Name a parametrized test after the row's line on the page."""
    return f"line{row.line}"


# ---------------------------------------------------------------------------------------------------------------
# Python spans


class KeywordRejected(TypeError):
    """A keyword argument the callee does not accept: what Python raises TypeError for."""


def placeholders() -> dict[str, Any]:
    """A fresh namespace holding the names the page uses for objects a learner has in hand (`my_flow`, ...)."""
    return dict(_placeholders())


@functools.cache
def _placeholders() -> dict[str, Any]:
    import prefect
    from prefect.futures import PrefectFuture, PrefectFutureList
    from prefect.states import Completed

    @prefect.flow
    def my_flow() -> None:
        """A stand-in flow."""

    @prefect.task
    def my_task() -> None:
        """A stand-in task."""

    return {
        "my_flow": my_flow,
        "my_task": my_task,
        "future": PrefectFuture,
        "futures": PrefectFutureList(),
        "state": Completed(),
        "timedelta": datetime.timedelta,
        "prefect": prefect,
    }


def is_deprecated(obj: Any) -> bool:
    """True if `obj` (or a class's `__init__`) is wrapped by one of Prefect's `deprecated_*` decorators."""
    for fn in [obj, obj.__init__] if inspect.isclass(obj) else [obj]:
        while fn is not None:
            code = getattr(fn, "__code__", None)
            if code is not None and code.co_qualname.startswith("deprecated_"):
                return True
            fn = getattr(fn, "__wrapped__", None)
    return False


def check_keywords(fn: Any, names: list[str | None]) -> None:
    """Raise KeywordRejected for a keyword `fn` does not accept (`_sync` only where Prefect's dispatcher pops it)."""
    plain = inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn) or inspect.isclass(fn)
    try:  # a flow or task object: the signature of its `__call__`, not of the function it wraps
        parameters = inspect.signature(fn if plain else type(fn).__call__).parameters
    except ValueError:  # some builtins (datetime.timedelta) have none; every Prefect callable must
        assert not getattr(fn, "__module__", "").startswith("prefect"), f"no signature for {fn!r}"
        return
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    for name in names:
        if name == "_sync":
            accepted = hasattr(fn, "aio")
        else:
            accepted = name is None or takes_any or (name in parameters and parameters[name].kind in keyword_kinds)
        if not accepted:
            raise KeywordRejected(f"{fn!r} takes no keyword {name!r}")


def resolve(node: ast.AST, namespace: dict[str, Any], deprecated: list[str]) -> Any:
    """Look up every name in an expression and check every call's keywords, calling nothing."""
    import prefect

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in namespace:
            found = namespace[node.id]
        elif hasattr(prefect, node.id):
            found = getattr(prefect, node.id)
        else:
            raise NameError(f"`{node.id}` is not a placeholder, not imported in the same cell, and not in `prefect`")
    elif isinstance(node, ast.Attribute):
        base = resolve(node.value, namespace, deprecated)
        if base is UNKNOWN:
            return UNKNOWN
        try:
            found = getattr(base, node.attr)
        except AttributeError:
            if not inspect.ismodule(base):
                raise
            try:
                found = importlib.import_module(f"{base.__name__}.{node.attr}")
            except ModuleNotFoundError:
                raise AttributeError(f"module {base.__name__!r} has no attribute {node.attr!r}") from None
    elif isinstance(node, ast.Call):
        fn = resolve(node.func, namespace, deprecated)
        for arg in node.args:
            resolve(arg, namespace, deprecated)
        for keyword in node.keywords:
            resolve(keyword.value, namespace, deprecated)
        if fn is not UNKNOWN:
            check_keywords(fn, [keyword.arg for keyword in node.keywords])
        return UNKNOWN
    elif isinstance(node, ast.Await):
        resolve(node.value, namespace, deprecated)
        return UNKNOWN
    elif isinstance(node, ast.BinOp):
        resolve(node.left, namespace, deprecated)
        resolve(node.right, namespace, deprecated)
        return UNKNOWN
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [resolve(element, namespace, deprecated) for element in node.elts]
    elif isinstance(node, ast.Dict):
        for part in [*node.keys, *node.values]:
            if part is not None:
                resolve(part, namespace, deprecated)
        return UNKNOWN
    else:
        raise AssertionError(f"the test does not read this syntax: {ast.unparse(node)}")
    if is_deprecated(found):
        deprecated.append(ast.unparse(node))
    return found


def python_units(span: str) -> list[ast.stmt]:
    """The statements of a span, with a `from x import a, b` split into one import per name."""
    tree = ast.parse(span.removeprefix("@"))
    units: list[ast.stmt] = []
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom):
            units += [ast.ImportFrom(module=statement.module, names=[name], level=0) for name in statement.names]
        elif isinstance(statement, ast.Import | ast.Expr):
            units.append(statement)
        else:
            raise AssertionError(f"`{span}`: write an import or an expression")
    return units


def run_unit(unit: ast.stmt, namespace: dict[str, Any]) -> tuple[str, Any]:
    """Import or resolve one unit; return its label and the object it names (None if it failed or is a call)."""
    deprecated: list[str] = []
    found = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if isinstance(unit, ast.Expr):
                found = resolve(unit.value, namespace, deprecated)
            else:
                exec(ast.unparse(unit), namespace)  # the import a learner would paste
                bound = unit.names[0].asname or unit.names[0].name.split(".")[0]
                found = namespace[bound]
                if is_deprecated(found):
                    deprecated.append(ast.unparse(unit))
        except ImportError:
            return "ImportError", None
        except KeywordRejected:
            return "TypeError", None
        except AttributeError:
            return "AttributeError", None
    # Prefect's own warnings name the old path; a third-party library's warning on first import does not count.
    warned = [w for w in caught if issubclass(w.category, DeprecationWarning) and "prefect" in str(w.message).lower()]
    if deprecated or warned:
        return "DeprecationWarning", found
    return "ok", found


# ---------------------------------------------------------------------------------------------------------------
# Settings spans


def setting_label(span: str, monkeypatch: pytest.MonkeyPatch, new_accessors: set[str]) -> tuple[str, str | None]:
    """Label a setting: ok (current name), alias (old name of a new one) or ignored (a name Prefect never reads)."""
    import prefect.settings

    name, value = SETTING.match(span).groups()
    try:
        setting = getattr(prefect.settings, name)
    except AttributeError:
        before = prefect.settings.Settings().model_dump()
        with monkeypatch.context() as patch:
            patch.setenv(name, value or "1")
            after = prefect.settings.Settings().model_dump()
        return ("ignored" if before == after else "read although unknown"), None
    if name == "PREFECT_" + setting.accessor.upper().replace(".", "_"):
        return "ok", setting.accessor
    return ("alias" if setting.accessor in new_accessors else "alias of something else"), setting.accessor


# ---------------------------------------------------------------------------------------------------------------
# CLI spans

CLI_RUNNER = r"""
import json, os, shlex, sys
import prefect.cli

results = {}
for span in json.loads(sys.argv[1]):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a clean child per command: the CLI keeps state between calls in one process
        os.close(read_end)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        sys.argv = ["prefect", *shlex.split(span)[1:], "--help"]
        code = 0
        try:
            prefect.cli.app()
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    results[span] = [os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")]
print(json.dumps(results))
"""


# Two commands that must not pass, to prove the CLI check can fail.
CLI_SELF_TEST = ["prefect worker strat --pool my-pool", "prefect worker start --pol my-pool"]


def all_cli_spans() -> list[str]:
    """Every `prefect ...` span on the page, plus the self-test commands."""
    page = {span for row in ROWS for span in [*row.old, *row.new] if span.startswith("prefect ")}
    return sorted(page | set(CLI_SELF_TEST))


@pytest.fixture(scope="module", autouse=True)
def cli_help(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, str]]]:
    """Run `--help` for every CLI span, started before the other tests so that it overlaps them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path_factory.mktemp("prefect_home")), COLUMNS="200", NO_COLOR="1")
    process = subprocess.Popen(
        [sys.executable, "-c", CLI_RUNNER, json.dumps(all_cli_spans())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    class Results(dict):
        """Wait for the subprocess on the first lookup."""

        def __missing__(self, span: str) -> tuple[int, str]:
            if not self:
                out, err = process.communicate(timeout=120)
                assert process.returncode == 0, err
                self.update({k: (code, text) for k, (code, text) in json.loads(out).items()})
            if span not in self:
                raise KeyError(f"{span!r} was not in the batch")
            return self[span]

    yield Results()
    if process.poll() is None:
        process.kill()
        process.wait()


def cli_label(span: str, cli_help: dict[str, tuple[int, str]], check_options: bool) -> str:
    """Label a command: ok (its `--help` exits 0, and shows every option the span uses), or unknown command."""
    code, text = cli_help[span]
    if code == 0:
        if check_options:
            for option in (token.split("=")[0] for token in span.split()[1:] if token.startswith("-")):
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"`{span}`: no {option} in --help"
        return "ok"
    return "unknown command" if "Unknown command" in text else f"exit {code}: {text[-300:]}"


# ---------------------------------------------------------------------------------------------------------------
# The page


def test_the_page_has_tables_and_every_row_is_complete():
    assert len(ROWS) >= 30
    for row in ROWS:
        assert row.old and row.new, f"line {row.line}: both code columns need code spans"
        assert row.outcomes and row.outcomes <= OUTCOMES, f"line {row.line}: outcomes {row.outcomes}"
        targets = LINK.findall(row.lesson)
        assert targets or row.lesson == "—", f"line {row.line}: link a notebook or write —"
        for target in targets:
            assert (PAGE.parent / target).resolve().is_file(), f"line {row.line}: {target} does not exist"


def new_namespace(row: Row) -> tuple[dict[str, Any], list[Any]]:
    """Import the third column's imports into a fresh namespace; return it and the objects they bound."""
    namespace, imported = placeholders(), []
    for span in row.new:
        if SETTING.match(span) or span.startswith("prefect "):
            continue
        for unit in python_units(span):
            if not isinstance(unit, ast.Expr):
                label, found = run_unit(unit, namespace)
                assert label == "ok", f"line {row.line}: `{span}` gives {label}"
                imported.append(found)
    return namespace, imported


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_every_prefect3_name_exists_and_is_not_deprecated(row: Row, monkeypatch, cli_help):
    namespace, _ = new_namespace(row)
    for span in row.new:
        if span.startswith("prefect "):
            assert cli_label(span, cli_help, check_options=True) == "ok", f"line {row.line}: `{span}`"
        elif SETTING.match(span):
            label = setting_label(span, monkeypatch, set())[0]
            assert label == "ok", f"line {row.line}: `{span}` is {label}, not a current setting name"
        else:
            for unit in python_units(span):
                if isinstance(unit, ast.Expr):
                    label, _ = run_unit(unit, namespace)
                    assert label == "ok", f"line {row.line}: `{span}` gives {label}"


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_every_prefect2_snippet_does_what_the_page_says(row: Row, monkeypatch, cli_help):
    namespace, imported = new_namespace(row)
    new_accessors = {setting_label(span, monkeypatch, set())[1] for span in row.new if SETTING.match(span) is not None}
    labels = []
    for span in row.old:
        if span.startswith("prefect "):
            span_labels = [cli_label(span, cli_help, check_options=False)]
        elif SETTING.match(span):
            span_labels = [setting_label(span, monkeypatch, new_accessors)[0]]
        else:
            span_labels = []
            for unit in python_units(span):
                label, found = run_unit(unit, namespace)
                if label == "ok" and found is not None and any(found is obj for obj in imported):
                    label = "alias"
                span_labels.append(label)
        for label in span_labels:
            assert row.outcomes & SATISFIES.get(label, {label}), f"line {row.line}: `{span}` gives {label}"
        labels += span_labels
    for outcome in row.outcomes:
        assert any(outcome in SATISFIES.get(label, {label}) for label in labels), f"line {row.line}: no {outcome}"


# ---------------------------------------------------------------------------------------------------------------
# The checker itself can fail


def test_the_checker_rejects_typos_unknown_keywords_deprecations_and_aliases():
    namespace = placeholders()
    label = [run_unit(unit, namespace)[0] for unit in python_units("from prefect.task_runners import ThreadPoolRunner")]
    assert label == ["ImportError"]
    assert run_unit(python_units("my_flow.serve(name='etl', crom='0 9 * * *')")[0], namespace)[0] == "TypeError"
    assert run_unit(python_units("state.reslt()")[0], namespace)[0] == "AttributeError"
    assert run_unit(python_units("my_flow.serve(_sync=True)")[0], namespace)[0] == "TypeError"
    assert run_unit(python_units("from prefect.client import get_client")[0], namespace)[0] == "DeprecationWarning"
    real_deprecation = "prefect.client.orchestration.SyncPrefectClient.set_deployment_paused_state"
    assert run_unit(python_units(real_deprecation)[0], namespace)[0] == "DeprecationWarning"
    with pytest.raises(NameError):
        run_unit(python_units("ThreadPoolTaskRunner()")[0], namespace)


def test_the_checker_reads_settings_and_cli_outcomes(monkeypatch, cli_help):
    assert setting_label("PREFECT_ORION_API_PORT=4300", monkeypatch, set())[0] == "ignored"
    assert setting_label("PREFECT_SERVER_API_PORT=4300", monkeypatch, set())[0] == "ok"
    assert setting_label("PREFECT_LOCAL_STORAGE_PATH=/x", monkeypatch, {"results.local_storage_path"})[0] == "alias"
    assert setting_label("PREFECT_LOCAL_STORAGE_PATH=/x", monkeypatch, set())[0] != "ok"
    assert cli_label("prefect worker strat --pool my-pool", cli_help, check_options=False) == "unknown command"
    with pytest.raises(AssertionError):
        assert cli_label("prefect worker start --pol my-pool", cli_help, check_options=True) == "ok"


# ---------------------------------------------------------------------------------------------------------------
# The behaviour the `my_task.submit(...)` row states, run against the course server


def test_unwaited_futures_leave_the_flow_completed_and_returned_futures_reach_the_caller_as_states(course_server):
    import asyncio
    import threading
    import time

    from prefect import flow, task
    from prefect.states import State
    from prefect.task_runners import ThreadPoolTaskRunner

    began, ended = threading.Event(), threading.Event()
    ran: list[int] = []

    @task
    def fails() -> None:
        raise ValueError("this task fails")

    @task
    def slow(seconds: float) -> None:
        began.set()
        time.sleep(seconds)
        ended.set()

    @task
    def record(number: int) -> int:
        ran.append(number)
        return number

    @flow
    def forgets() -> None:
        fails.submit()

    @flow
    async def returns_once_running() -> None:
        slow.submit(0.5)
        began.wait(10)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    async def leaves_a_queue() -> None:
        slow.submit(1.5)  # holds the only thread while the flow returns
        for number in range(3):
            record.submit(number)  # queued behind it
        began.wait(10)

    @flow
    def returns_futures() -> list:
        return [record.submit(1), fails.submit()]

    assert forgets(return_state=True).is_completed()  # the task failed; nothing raised in the flow
    asyncio.run(returns_once_running())
    assert ended.is_set()  # the call returned only after the running task ended
    began.clear()
    ended.clear()
    asyncio.run(leaves_a_queue())
    assert ended.is_set() and ran == []  # the running task was waited for; the queued ones never ran
    state = returns_futures(return_state=True)
    assert state.is_failed() and state.message == "1/2 states failed."
    returned = returns_futures()  # a direct call: no exception, the tasks' final states
    assert all(isinstance(item, State) for item in returned) and [s.name for s in returned] == ["Completed", "Failed"]
