"""Lesson 14's machinery: a folder of tests outside the repository, pytest run on it in a subprocess (now or in the
background, against the course server or under `prefect_test_harness`), planted bugs in the tested code, and a figure
of background task runs' latency."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lessons_src.background import BackgroundProcess
from lessons_src.paths import course_home
from lessons_src.plots import STATE_COLOURS, new_axes
from lessons_src.serving import flows_dir
from lessons_src.task_workers import BackgroundRun

TESTED_MODULE = "orders"  # flows/tested_project/orders.py, imported by the tests under this name
PYTEST_TIMEOUT_S = 180.0
HARNESS_SECONDS_FILE = "harness_seconds.txt"

# Bugs planted in flows/tested_project/orders.py: a name, and the (original, mutated) text
PLANTED_BUGS: dict[str, tuple[str, str]] = {
    "discount added": ('order["amount"] * (1 - discount)', 'order["amount"] * (1 + discount)'),
    "no rounding": ('round(order["amount"] * (1 - discount), 2)', 'order["amount"] * (1 - discount)'),
    "any discount accepted": ("if not 0 <= discount < 1:", "if discount < 0:"),
    "no retries": ("@task(retries=3, retry_delay_seconds=10)", "@task(retry_delay_seconds=10)"),
    "errors not raised": ("    response.raise_for_status()\n", ""),
    "wrong deployment": ('run_deployment("report/nightly"', 'run_deployment("report/daily"'),
    "total not passed": ('parameters={"total": total}', 'parameters={"amount": total}'),
    "first order skipped": ("for order_id in order_ids)", "for order_id in order_ids[1:])"),
}

PYTEST_INI = "[pytest]\n# this folder is the tests' root: no settings of the repository apply here\n"

HARNESS_CONFTEST = '''\
import time
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(autouse=True, scope="session")
def prefect_server():
    """Run the whole session against a temporary Prefect server and SQLite database (started once)."""
    started = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120):
        Path(__file__).with_name("harness_seconds.txt").write_text(f"{time.perf_counter() - started:.2f}")
        yield
'''


def tested_module_path() -> Path:
    """Return the file of the code under test, `flows/tested_project/orders.py`."""
    return flows_dir() / "tested_project" / f"{TESTED_MODULE}.py"


def load_tested_module() -> ModuleType:
    """Return the tested module, loaded from its file by path (as a test folder's `import orders` would load it)."""
    from prefect.utilities.importtools import load_script_as_module

    return load_script_as_module(str(tested_module_path()))


def module_source(bug: str | None = None) -> str:
    """Return the source of the tested module, with the planted bug `bug` (a key of PLANTED_BUGS) if given."""
    source = tested_module_path().read_text(encoding="utf-8")
    if bug is None:
        return source
    original, mutated = PLANTED_BUGS[bug]
    if source.count(original) != 1:
        raise RuntimeError(f"cannot plant {bug!r}: {original!r} is not once in {tested_module_path()}")
    return source.replace(original, mutated)


def lessons_root() -> Path:
    """Return the folder under the course home that holds pair 14's temporary folders."""
    return course_home() / "pair_14"


def fresh_folder(name: str) -> Path:
    """Return an empty folder `name` under the course home (removing what an earlier run left there)."""
    folder = lessons_root() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def remove_folders(prefix: str) -> list[str]:
    """Delete pair 14's temporary folders whose names start with `prefix`; return their names."""
    root = lessons_root()
    removed = sorted(p.name for p in root.glob(f"{prefix}*") if p.is_dir()) if root.is_dir() else []
    for name in removed:
        shutil.rmtree(root / name, ignore_errors=True)
    if root.is_dir() and not any(root.iterdir()):
        with contextlib.suppress(OSError):  # another notebook may have made a folder there meanwhile
            root.rmdir()  # the last of pair 14's folders: leave nothing behind
    return removed


def write_project(folder: Path, tests: dict[str, str], bug: str | None = None, conftest: str | None = None) -> Path:
    """Write the tested module (with `bug`, if given), the test files `tests` (name -> source) and a pytest.ini."""
    (folder / f"{TESTED_MODULE}.py").write_text(module_source(bug), encoding="utf-8")
    (folder / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    if conftest is not None:
        (folder / "conftest.py").write_text(conftest, encoding="utf-8")
    for name, source in tests.items():
        (folder / name).write_text(source, encoding="utf-8")
    return folder


def pytest_command(folder: Path) -> list[str]:
    """Return the command that runs pytest on `folder`, quietly, with a JUnit XML report of each test."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--color=no",
        "-p",
        "no:cacheprovider",
        f"--junitxml={folder / 'report.xml'}",
    ]


def pytest_env(folder: Path, harness: bool = False) -> dict[str, str]:
    """Return pytest's environment: the tested module importable from `folder`; the course server, or none (harness)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(folder),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",  # a task run outside a flow logs only to the console
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # the tests need no plugin; loading the installed ones costs ~1.5 s
    }
    if harness:  # the harness starts a server of its own; its Prefect home is a folder of its own too
        env.pop("PREFECT_API_URL", None)
        env["PREFECT_HOME"] = str(folder / "prefect_home")
    elif "PREFECT_API_URL" not in env:
        raise RuntimeError("PREFECT_API_URL is not set: run `course = setup()` before running the tests.")
    return env


@dataclass(frozen=True)
class PytestRun:
    """What one pytest run reported: its exit code, each test's outcome and seconds, and the end of its output."""

    exit_code: int
    outcomes: dict[str, str]  # test name -> passed, failed, error or skipped
    durations: dict[str, float]
    seconds: float
    output: str

    @property
    def passed(self) -> bool:
        """True when pytest exited 0 (every test collected and passed)."""
        return self.exit_code == 0

    @property
    def failed_tests(self) -> list[str]:
        """The names of the tests that failed or errored."""
        return [name for name, outcome in self.outcomes.items() if outcome in ("failed", "error")]

    def summary(self) -> str:
        """Return pytest's own last line, e.g. '1 failed, 3 passed in 2.10s'."""
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1].strip("= ") if lines else f"no output (exit code {self.exit_code})"

    def failure_lines(self, limit: int = 6) -> list[str]:
        """Return the lines of pytest's output that start with 'E ' (what a failed test saw), at most `limit`."""
        return [line for line in self.output.splitlines() if line.startswith("E ")][:limit]


def read_report(folder: Path, exit_code: int, seconds: float, output: str) -> PytestRun:
    """Return the PytestRun of a finished run on `folder`, read from its JUnit XML report."""
    outcomes: dict[str, str] = {}
    durations: dict[str, float] = {}
    report = folder / "report.xml"
    if report.is_file():
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            name = case.get("name", "?")
            kinds = {child.tag for child in case}
            outcome = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
            outcomes[name] = {"failure": "failed"}.get(outcome, outcome)
            durations[name] = float(case.get("time", 0.0))
    return PytestRun(exit_code, outcomes, durations, seconds, output)


def run_pytest(folder: Path, timeout: float = PYTEST_TIMEOUT_S) -> PytestRun:
    """Run pytest on `folder` in a subprocess against the course server; return what it reported."""
    (folder / "report.xml").unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run(
        [*pytest_command(folder), str(folder)],
        cwd=folder,
        env=pytest_env(folder),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return read_report(folder, done.returncode, time.perf_counter() - started, done.stdout + done.stderr)


def run_pytest_many(folders: Sequence[Path], timeout: float = PYTEST_TIMEOUT_S) -> list[PytestRun]:
    """Run pytest on each folder, all at the same time, each in its own subprocess; return their reports in order."""
    started = time.perf_counter()
    processes = []
    for folder in folders:
        (folder / "report.xml").unlink(missing_ok=True)
        processes.append(
            subprocess.Popen(
                [*pytest_command(folder), str(folder)],
                cwd=folder,
                env=pytest_env(folder),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    runs = []
    for folder, process in zip(folders, processes, strict=True):
        try:
            output, _ = process.communicate(timeout=max(1.0, timeout - (time.perf_counter() - started)))
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        runs.append(read_report(folder, process.returncode, time.perf_counter() - started, output))
    return runs


VARIANTS_CONFTEST = '''\
"""Each folder here holds its own orders.py: a test file imports, and runs with, the one beside it."""
import sys

import pytest

_orders_of = {}


def pytest_collectstart(collector):
    if isinstance(collector, pytest.Module):  # about to import a test file: let `import orders` find its folder's
        sys.modules.pop("orders", None)
        sys.path.insert(0, str(collector.path.parent))


def pytest_itemcollected(item):
    _orders_of[item.nodeid] = sys.modules.get("orders")


def pytest_runtest_setup(item):
    if _orders_of.get(item.nodeid) is not None:  # `import orders` or a patch by name inside the test: the same module
        sys.modules["orders"] = _orders_of[item.nodeid]
'''


def run_variants(folder: Path, tests: dict[str, str], bugs: Sequence[str], timeout: float = PYTEST_TIMEOUT_S) -> dict:
    """Run the same tests on one copy of the module per planted bug, in one pytest process; map bug -> outcomes.

    Each bug gets a subfolder with its mutated module and the tests; a conftest makes each test file import the
    module of its own folder. A bug's list of outcomes is empty when no test of its folder was reported.
    """
    names = {f"bug-{index}": bug for index, bug in enumerate(bugs)}
    for name, bug in names.items():
        (folder / name).mkdir()
        write_project(folder / name, tests, bug=bug)
        (folder / name / "pytest.ini").unlink()
    (folder / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    (folder / "conftest.py").write_text(VARIANTS_CONFTEST, encoding="utf-8")
    (folder / "report.xml").unlink(missing_ok=True)
    done = subprocess.run(
        [*pytest_command(folder), "--import-mode=importlib", str(folder)],
        cwd=folder,
        env=pytest_env(folder),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    outcomes: dict[str, list[str]] = {bug: [] for bug in bugs}
    report = folder / "report.xml"
    if report.is_file():
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            variant = case.get("classname", "").split(".")[0]
            kinds = {child.tag for child in case}
            if variant in names:
                outcomes[names[variant]].append(
                    next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
                )
    if not any(outcomes.values()):
        raise RuntimeError(
            f"pytest reported no test of the planted bugs (exit {done.returncode}):\n{done.stdout[-1500:]}"
        )
    return outcomes


class PytestProcess(BackgroundProcess):
    """A pytest run on a folder in the background (e.g. under `prefect_test_harness`); `result()` waits for it."""

    def __init__(self, folder: Path, label: str, harness: bool = False) -> None:
        (folder / "report.xml").unlink(missing_ok=True)
        super().__init__([*pytest_command(folder), str(folder)], label, env=pytest_env(folder, harness))
        self.folder = folder

    def result(self, timeout: float = PYTEST_TIMEOUT_S) -> PytestRun:
        """Wait until pytest has finished (stopping it after `timeout` s); return what it reported."""
        if self.process is None:
            raise RuntimeError("start() the pytest process first")
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(f"pytest on {self.folder} ran over {timeout:.0f} s:\n{self.log()}") from None
        seconds = (time.time() - self.started_at.timestamp()) if self.started_at else 0.0
        output = self.log_path.read_text(encoding="utf-8", errors="replace")
        return read_report(self.folder, self.process.returncode, seconds, output)

    def harness_seconds(self) -> float | None:
        """Return how long `prefect_test_harness` took to start its server, as the conftest recorded it."""
        recorded = self.folder / HARNESS_SECONDS_FILE
        return float(recorded.read_text()) if recorded.is_file() else None


def start_pytest(folder: Path, label: str, harness: bool = False) -> PytestProcess:
    """Start pytest on `folder` in the background (with `harness`: no course server, Prefect's test harness)."""
    process = PytestProcess(folder, label, harness)
    process.start()
    return process


QUEUED_COLOUR = "#c8c8c8"  # Scheduled: created by .delay, no task worker has it yet
RECEIVED_COLOUR = "#f0a030"  # Pending: a task worker received it and starts the engine


def plot_background_runs(runs: Sequence[BackgroundRun], title: str) -> Figure:
    """Draw one lane per background task run: queued, received by a task worker, then running (by final state)."""
    drawn = sorted((r for r in runs if r.end is not None), key=lambda r: r.created)
    if not drawn:
        raise ValueError("Nothing to draw: none of the task runs has ended.")
    zero = drawn[0].created
    figure, ax = new_axes((9.0, 1.1 + 0.3 * len(drawn)))
    for lane, run in enumerate(drawn):
        points = [run.created, run.pending or run.running or run.end, run.running or run.end, run.end]
        offsets = [(moment - zero).total_seconds() for moment in points]
        colours = (QUEUED_COLOUR, RECEIVED_COLOUR, STATE_COLOURS.get(run.state, "#555555"))
        for start, end, colour in zip(offsets, offsets[1:], colours, strict=False):
            ax.barh(lane, max(end - start, 0.01), left=start, height=0.6, color=colour, edgecolor="white")
    ax.set_yticks(range(len(drawn)), [f"{r.name} #{i + 1}" for i, r in enumerate(drawn)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first .delay() created its run")
    ax.set_title(title)
    legend = [("queued (Scheduled)", QUEUED_COLOUR), ("received (Pending)", RECEIVED_COLOUR)]
    legend += [(state, STATE_COLOURS.get(state, "#555555")) for state in sorted({r.state for r in drawn})]
    ax.legend(
        handles=[Patch(color=colour, label=label) for label, colour in legend],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
    )
    return figure
