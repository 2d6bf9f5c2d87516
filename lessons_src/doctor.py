"""`python -m lessons_src doctor`: check a learner's machine before class, one pass/fail line per check with its fix."""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import httpx

from lessons_src import database, demo_api, server
from lessons_src.course import SUPPORTED_PYTHONS
from lessons_src.logs import quiet_console
from lessons_src.paths import course_home, repo_root

PIN = re.compile(r"^[\s-]*([A-Za-z0-9_.\-\[\]]+)\s*==\s*([0-9][^\s#;]*)", re.M)
MIN_FREE_DISK_GB = 1.0


@dataclass(frozen=True)
class CheckResult:
    """One doctor check: its name, whether it passed, what was seen, and how to fix a failure."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """Return the line the doctor prints for this check."""
        text = f"{'PASS' if self.ok else 'FAIL'}  {self.name:<14} {self.detail}"
        return text if self.ok else f"{text}\n      fix: {self.fix}"


def pinned_versions(path: Path | None = None) -> dict[str, str]:
    """Return {package: version} for every `name==version` pin in requirements.txt (or `path`)."""
    text = (path or repo_root() / "requirements.txt").read_text()
    return {name.lower().replace("_", "-"): pinned for name, pinned in PIN.findall(text)}


def check_python() -> CheckResult:
    """The course runs on a supported Python (3.11 to 3.14)."""
    found = sys.version.split()[0]
    return CheckResult(
        "python",
        sys.version_info[:2] in SUPPORTED_PYTHONS,
        found,
        "install Python 3.11 to 3.14, delete .venv and run `python course.py`",
    )


def check_pins() -> CheckResult:
    """Every pinned package is installed at its pinned version."""
    wrong = []
    for name, pinned in pinned_versions().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            wrong.append(f"{name} {installed} (pinned {pinned})")
    detail = f"{len(pinned_versions())} pinned packages match" if not wrong else "; ".join(wrong)
    return CheckResult("packages", not wrong, detail, "run `python course.py install` (or `make install`)")


def check_disk() -> CheckResult:
    """The course folder has room for the database, results and logs."""
    free_gb = shutil.disk_usage(course_home()).free / 1e9
    return CheckResult(
        "disk", free_gb >= MIN_FREE_DISK_GB, f"{free_gb:.1f} GB free in {course_home()}", "free some disk space"
    )


def check_ports() -> CheckResult:
    """The course server's port is free or already the course server's."""
    info = server.running_server()
    if info:
        return CheckResult("ports", True, f"the course server already listens on {info.port}")
    try:
        port = server.choose_port()
    except server.CourseServerError as error:
        return CheckResult(
            "ports", False, str(error).split(". ")[0], "stop other Prefect servers: `prefect server stop`"
        )
    note = "" if port == server.DEFAULT_PORT else f" ({server.DEFAULT_PORT} is taken by another program)"
    return CheckResult("ports", True, f"the course server will use port {port}{note}")


def check_server() -> CheckResult:
    """The course server starts, answers, and runs a first flow."""
    from lessons_src.course import connect_prefect

    try:
        info = server.start_server()
    except server.CourseServerError as error:
        return CheckResult("prefect server", False, str(error).splitlines()[0], server.START_COMMAND)
    connect_prefect(info)
    from prefect import flow

    @flow
    def doctor_check() -> str:
        return "ok"

    started = time.perf_counter()
    with quiet_console():
        state = doctor_check(return_state=True)
    seconds = time.perf_counter() - started
    ok = state.is_completed()
    detail = f"UI {server.ui_address(info)}; a first flow run {state.name} in {seconds:.1f} s"
    return CheckResult("prefect server", ok, detail, "`python -m lessons_src server reset`, then run the doctor again")


def check_database() -> CheckResult:
    """The course server runs on the database it is set to use (PostgreSQL unless COURSE_DATABASE=sqlite)."""
    wanted = database.wanted_kind()
    info = server.running_server()
    if info is None:
        return CheckResult("database", False, "the course server is not running", server.START_COMMAND)
    where = f", data in {database.data_folder()}, pid {info.database_pid}" if info.database == "postgresql" else ""
    return CheckResult(
        "database",
        info.database == wanted,
        f"{info.database}{where}" + ("" if info.database == wanted else f" (set to {wanted})"),
        f"PostgreSQL did not start: read {database.data_folder() / 'log'}; or accept SQLite with "
        f"{database.SETTING}=sqlite",
    )


def check_demo_api() -> CheckResult:
    """The demo HTTP API starts and answers a real request."""
    try:
        api = demo_api.start_demo_api()
        response = httpx.get(api.url_for("/orders/1"), timeout=5)
    except (demo_api.DemoAPIError, httpx.HTTPError) as error:
        return CheckResult("demo api", False, str(error).splitlines()[0], "`python -m lessons_src demo-api start`")
    ok = response.status_code == 200 and response.json().get("id") == 1
    return CheckResult(
        "demo api", ok, f"{api.url}/orders/1 answered {response.status_code}", "see .course/demo_api.log"
    )


CHECKS: list[Callable[[], CheckResult]] = [
    check_python,
    check_pins,
    check_disk,
    check_ports,
    check_server,
    check_database,
    check_demo_api,
]


def run_doctor() -> list[CheckResult]:
    """Run every check, printing each line as it completes, and return the results."""
    results = []
    for check in CHECKS:
        try:
            result = check()
        except Exception as error:  # a broken machine can fail in any way; report it as a failed check
            result = CheckResult(
                check.__name__.removeprefix("check_"),
                False,
                f"{type(error).__name__}: {error}",
                "delete .venv and .course, run `python course.py`, then the doctor again",
            )
        print(result.line(), flush=True)
        results.append(result)
    return results
