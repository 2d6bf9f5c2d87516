"""Shared fixtures: a course home of the test process's own, the course server for tests that run flows, Agg plots."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

PAIR_IN_TEST_ID = re.compile(r"test_exercises_(\d\d)\.py|::TestPair(\d\d)::|^notebooks/(\d\d)_")


def pytest_configure(config):
    """Give this test process a course home of its own (one per xdist worker), never the learner's course home.

    `python -m lessons_src test` names the folder for these homes; a plain `pytest` run makes a temporary one here,
    before xdist starts its workers (they inherit it), and removes it at the end.
    """
    from lessons_src.cli import TEST_HOMES
    from lessons_src.server import DEFAULT_PORT, PORT_SETTING

    if not os.environ.get(TEST_HOMES) and not hasattr(config, "workerinput"):
        config.course_test_homes = Path(tempfile.mkdtemp(prefix="course-test-"))
        os.environ[TEST_HOMES] = str(config.course_test_homes)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    home = Path(os.environ[TEST_HOMES]) / worker
    home.mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_HOME"] = str(home)
    index = int(worker[2:]) + 1 if worker.startswith("gw") else 0
    os.environ[PORT_SETTING] = str(DEFAULT_PORT + 10 * index)  # parallel starts do not race for the same port


def pytest_unconfigure(config):
    """Stop what this test process started in its own course home, whatever failed; remove a folder it made."""
    from lessons_src.cli import remove_test_homes, stop_course_services

    if "prefect.logging.handlers" in sys.modules:  # send the last flow logs while the server still answers
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
    made = getattr(config, "course_test_homes", None)
    if made:  # the workers have ended by now: this stops their homes' services and this process's own
        remove_test_homes(made)
    else:
        stop_course_services(Path(os.environ["COURSE_HOME"]))


def pytest_addoption(parser):
    parser.addoption("--pairs", default="", help="run only these pairs' tests (and every test of no pair), e.g. 01")


def pytest_collection_modifyitems(config, items):
    """With --pairs, deselect other pairs' tests (test_exercises_NN.py, TestPairNN, notebooks/NN_*)."""
    wanted = {p for p in config.getoption("--pairs").split(",") if p}
    if not wanted:
        return
    keep, drop = [], []
    for item in items:
        match = PAIR_IN_TEST_ID.search(item.nodeid)
        pair = match and next(group for group in match.groups() if group)
        (drop if pair and pair not in wanted else keep).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.fixture
def course_server():
    """Start or reuse the course's Prefect server and point this test process at it (again, for every test).

    Inside the test, sync flow runs start no heartbeat thread, whose join costs up to 1 s per run: heartbeats only
    tell the server a run is alive, and no check grades them. The notebooks and the reference solutions run in real
    kernels (nbval, tests/test_exercises_in_kernels.py), with heartbeats.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from lessons_src import setup

    info = setup(quiet=True)
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield info


@pytest.fixture
def demo_api(course_server):
    """The demo API, started or reused; a check uses keys of its own, so its counters need no reset."""
    from lessons_src.demo_api import start_demo_api

    return start_demo_api()


@pytest.fixture
def fresh_demo_api(demo_api):
    """The demo API with its counters and limits cleared before the test, and again after it for the next file."""
    demo_api.reset()
    yield demo_api
    demo_api.reset()


@pytest.fixture
def no_course_server(monkeypatch):
    """Checks that need no server run without PREFECT_API_URL.

    A failed check asks whether the course's server answers, so that a learner is not blamed for the course; the
    server an earlier test of this process started may be stopped or too busy to answer within 2 s by then (CI once
    graded test_progress's three wrong answers "course-problem" for that).
    """
    monkeypatch.delenv("PREFECT_API_URL", raising=False)


@pytest.fixture
def graded(course_server):
    """Return `graded(exercises, number, answer)`: the outcome of grading the answer twice, once both agree.

    Whatever the first grading leaves behind (cache records, limits, leases, variables, deployments, runs) must not
    change the verdict, and no message may carry a raw traceback.
    """
    import logging

    from lessons_src.logs import quiet_console

    def twice(exercise_set, number, answer):
        with quiet_console(logging.CRITICAL):
            first, second = (exercise_set.evaluate(number, answer) for _ in range(2))
        assert first.status == second.status, f"graded {first.status}, then {second.status}: {first} / {second}"
        assert "Traceback" not in first.message + second.message, second
        return second

    return twice


@pytest.fixture
def jupyter_lab():
    """Start JupyterLab on a free port with a known token; returns `start(*extra_args, env=None) -> base URL`."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from lessons_src.processes import detached, free_port

    token = "course-test-token"
    started: list[subprocess.Popen] = []

    def start(*extra_args: str, env: dict[str, str] | None = None, base_url: str = "/") -> str:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.base_url={base_url}",
            f"--IdentityProvider.token={token}",
            *extra_args,
        ]
        started.append(
            subprocess.Popen(
                command,
                env=env or dict(os.environ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                **detached(),
            )
        )
        url = f"http://127.0.0.1:{port}{base_url}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}api/status", params={"token": token}, timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not start within 60 s"
            time.sleep(0.3)

    start.token = token
    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)
