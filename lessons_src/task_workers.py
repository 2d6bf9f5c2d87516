"""Task workers a notebook starts and stops, and what the server recorded of the background task runs they ran.

`start_task_worker("background_jobs.py", ["make_thumbnail"], "a")` runs `python -m lessons_src.task_workers`, which
loads those tasks from the file under `flows/` and calls Prefect's `prefect.task_worker.serve(*tasks, limit=...)`, in
the background (a `BackgroundProcess`: stopped by `stop()`, its `with` block, `stop_task_workers()`, or when the
kernel exits). A task worker holds a websocket to the server, which pushes it each new run of the tasks it serves
(`task.delay(...)` elsewhere); it runs them in threads of its own process, at most `limit` at a time.

The notebook loads the same tasks with `load_tasks`: the server routes a run by its task key (the function's name
and a hash of its code), so both sides must load the same file.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from lessons_src import background
from lessons_src.background import BackgroundProcess, running_processes
from lessons_src.serving import flows_dir
from lessons_src.workers import worker_env

READY_TIMEOUT_S = 60.0
DEFAULT_LIMIT = 10  # prefect.task_worker.serve's own default: runs at once per task worker


def load_tasks(file: str, *names: str) -> list[Any]:
    """Return the tasks `names` of a file under `flows/`, loaded by its path as a task worker loads them."""
    from prefect import Task
    from prefect.utilities.importtools import load_script_as_module

    module = load_script_as_module(str(flows_dir() / file))
    tasks = []
    for name in names:
        found = getattr(module, name, None)
        if not isinstance(found, Task):
            raise ValueError(f"flows/{file} has no task named {name!r}")
        tasks.append(found)
    return tasks


def task_worker_command(file: str, tasks: list[str], limit: int | None = DEFAULT_LIMIT) -> list[str]:
    """Return the command line that serves `tasks` of `flows/<file>` with `limit` runs at once (None: no limit)."""
    return [sys.executable, "-m", "lessons_src.task_workers", file, *tasks, "--limit", str(limit or 0)]


def active_task_workers(task_keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Return the task workers the server holds a websocket to (serving any of `task_keys`, if given)."""
    body = {"task_worker_filter": {"task_keys": task_keys}} if task_keys else None
    response = httpx.post(f"{os.environ['PREFECT_API_URL']}/task_workers/filter", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


class TaskWorkerProcess(BackgroundProcess):
    """A task worker process serving some tasks of a `flows/` file; SIGTERM makes it stop listening and exit."""

    def __init__(self, file: str, tasks: list[str], name: str, limit: int | None = DEFAULT_LIMIT) -> None:
        env = worker_env(PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="ignore")  # no flow run: its task runs log only here
        super().__init__(task_worker_command(file, tasks, limit), f"task-worker-{name}", env=env)
        self.file, self.tasks, self.name, self.limit = file, list(tasks), name, limit

    @property
    def client_id(self) -> str:
        """The identifier the server knows this worker by (Prefect's `TaskWorker.client_id`: host and pid)."""
        return f"{socket.gethostname()}-{self.pid}"

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait until the server holds this worker's subscription; return the server's record of it."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise self.exited_error(f"task worker {self.name!r}")
            for worker in active_task_workers():
                if worker["identifier"] == self.client_id:
                    return worker
            if time.monotonic() > deadline:
                raise TimeoutError(f"task worker {self.name!r} did not subscribe within {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.2)

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited ({self.process.returncode if self.process else 'not started'})"
        return f"<TaskWorkerProcess {self.name!r} serving {self.tasks} of {self.file} pid={self.pid} {state}>"


def start_task_worker(
    file: str, tasks: list[str], name: str, limit: int | None = DEFAULT_LIMIT, wait: bool = True
) -> TaskWorkerProcess:
    """Start a task worker for `tasks` of `flows/<file>`; with `wait`, return once the server holds its subscription."""
    worker = TaskWorkerProcess(file, tasks, name, limit)
    worker.start()
    if wait:
        worker.wait_until_ready()
    return worker


def running_task_workers() -> list[TaskWorkerProcess]:
    """Return the task workers started from this Python process that are still alive."""
    return running_processes(TaskWorkerProcess)


def stop_task_workers() -> None:
    """Stop every task worker started from this Python process."""
    background.stop_all(TaskWorkerProcess)


@dataclass(frozen=True)
class BackgroundRun:
    """One background task run as the server recorded it, with the time of each state it went through."""

    id: UUID
    name: str
    task_key: str
    state: str
    created: datetime
    pending: datetime | None  # a task worker received it
    running: datetime | None
    end: datetime | None

    @property
    def start(self) -> datetime | None:
        """When it started running (for plots.plot_timeline)."""
        return self.running

    def seconds(self, since: datetime | None, until: datetime | None) -> float | None:
        """Return the seconds from `since` to `until`, or None if either did not happen."""
        return None if since is None or until is None else (until - since).total_seconds()


def background_run(task_run_id: UUID) -> BackgroundRun:
    """Return what the server recorded of one task run, with the first time of each state type."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_task_run(task_run_id)
        states = client.read_task_run_states(task_run_id)
    first: dict[str, datetime] = {}
    for state in sorted(states, key=lambda s: s.timestamp):
        first.setdefault(state.type.value, state.timestamp)
    return BackgroundRun(
        id=run.id,
        name=run.name,
        task_key=run.task_key,
        state=run.state.name if run.state else "Unknown",
        created=run.created or first.get("SCHEDULED"),
        pending=first.get("PENDING"),
        running=first.get("RUNNING"),
        end=run.end_time,
    )


FINAL_STATES = ("Completed", "Failed", "Crashed", "Cancelled")


def wait_for_background_runs(task_run_ids: list[UUID], timeout: float = 30.0) -> list[BackgroundRun]:
    """Poll until every task run is final and its end time recorded; return them in order."""
    from lessons_src.runs import poll_until

    return poll_until(
        lambda: [background_run(run_id) for run_id in task_run_ids],
        lambda runs: all(run.state in FINAL_STATES and run.end is not None for run in runs),
        timeout,
        lambda runs: f"after {timeout:.0f} s the task runs are {[r.state for r in runs]}; expected each final "
        "(is a task worker serving them?)",
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the named tasks of a `flows/` file until stopped (the task worker's process)."""
    from prefect.task_worker import serve

    parser = argparse.ArgumentParser(description="Serve tasks of a flows/ file as a Prefect task worker.")
    parser.add_argument("file", help="a file under flows/, e.g. background_jobs.py")
    parser.add_argument("tasks", nargs="+", help="the names of the tasks to serve")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="runs at once; 0 for no limit")
    args = parser.parse_args(argv)
    if not Path(flows_dir() / args.file).is_file():
        parser.error(f"no file flows/{args.file}")
    serve(*load_tasks(args.file, *args.tasks), limit=args.limit or None)


if __name__ == "__main__":
    main()
