"""Process work pools and workers a notebook creates, starts and stops, and what the server recorded of their runs.

`start_worker("pool", "name")` runs `prefect worker start --pool pool --name name` in the background (a
`BackgroundProcess`: stopped by `stop()`, its `with` block, `stop_workers()`, or when the kernel exits). It polls the
server every `WORKER_QUERY_SECONDS` (1 s; Prefect's default is 10 s) and starts a new Python process per flow run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from lessons_src import background
from lessons_src.background import BackgroundProcess, running_processes

WORKER_QUERY_SECONDS = 1  # Prefect's default (PREFECT_WORKER_QUERY_SECONDS) is 10 s between polls for runs
READY_TIMEOUT_S = 90.0


def worker_env(**settings: str) -> dict[str, str]:
    """Return the environment for a worker: this process's server and PREFECT_HOME, fast polling, plus `settings`."""
    from lessons_src.server import prefect_home

    if "PREFECT_API_URL" not in os.environ:
        raise RuntimeError("PREFECT_API_URL is not set: run `course = setup()` before starting a worker.")
    return {
        **os.environ,
        "PREFECT_HOME": str(prefect_home()),
        "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_QUERY_SECONDS),
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


def worker_command(pool: str, name: str, queues: tuple[str, ...] = (), limit: int | None = None) -> list[str]:
    """Return the `prefect worker start` command line for a worker of `pool` (polling only `queues`, if given)."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--name", name]
    for queue in queues:
        command += ["--work-queue", queue]
    if limit is not None:
        command += ["--limit", str(limit)]
    return command


class WorkerProcess(BackgroundProcess):
    """A `prefect worker start` process; stopping it (SIGTERM) also stops the flow-run processes it started."""

    def __init__(self, pool: str, name: str, queues: tuple[str, ...] = (), limit: int | None = None) -> None:
        super().__init__(worker_command(pool, name, queues, limit), f"worker-{name}", env=worker_env())
        self.pool, self.name, self.queues, self.limit = pool, name, queues, limit

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_S) -> Any:
        """Wait until the server has a heartbeat from this worker (sent after it found its pool); return its record."""
        from prefect.client.orchestration import get_client

        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while True:
                if not self.running:
                    raise self.exited_error(f"worker {self.name!r}")
                for worker in _workers_of(client, self.pool):
                    beat = worker.last_heartbeat_time
                    if worker.name == self.name and beat is not None and beat >= self.started_at:
                        return worker
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker {self.name!r} sent no heartbeat within {timeout:.0f} s:\n{self.log()}")
                time.sleep(0.2)

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited ({self.process.returncode if self.process else 'not started'})"
        return f"<WorkerProcess {self.name!r} of pool {self.pool!r} pid={self.pid} {state}>"


def _workers_of(client: Any, pool: str) -> list[Any]:
    """Return the workers the server knows for `pool`; none while the pool does not exist yet (a worker creates it)."""
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    try:
        return client.read_workers_for_work_pool(pool)
    except ObjectNotFound:
        return []
    except PrefectHTTPStatusError as error:
        if error.response.status_code == 404:
            return []
        raise


def start_worker(
    pool: str, name: str, queues: tuple[str, ...] = (), limit: int | None = None, wait: bool = True
) -> WorkerProcess:
    """Start a worker of `pool` named `name` in the background; with `wait`, return once the server has heard it."""
    worker = WorkerProcess(pool, name, queues, limit)
    worker.start()
    if wait:
        worker.wait_until_ready()
    return worker


def running_workers() -> list[WorkerProcess]:
    """Return the workers started from this Python process that are still alive."""
    return running_processes(WorkerProcess)


def stop_workers() -> None:
    """Stop every worker started from this Python process, and the flow runs they started."""
    background.stop_all(WorkerProcess)


def create_process_pool(
    name: str, concurrency_limit: int | None = None, queues: dict[str, int] | None = None, paused: bool = False
) -> Any:
    """Create (or re-create from scratch) a process work pool with Prefect's default job template; return it.

    `queues` maps extra queue names to their priority (1 is the highest); every pool also has its `default` queue.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    delete_work_pool(name)
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
                concurrency_limit=concurrency_limit,
                is_paused=paused,
            )
        )
        for queue, priority in (queues or {}).items():
            client.create_work_queue(name=queue, priority=priority, work_pool_name=name)
        return client.read_work_pool(name)


def delete_work_pool(name: str) -> bool:
    """Delete work pool `name` (its queues and workers' records go with it); return whether there was one."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.delete_work_pool(name)
        except ObjectNotFound:
            return False
    return True


@dataclass(frozen=True)
class PoolRun:
    """One flow run as the server recorded it: where it was queued, which worker took it, and its state times."""

    id: UUID
    name: str
    state: str
    pool: str | None
    queue: str | None
    worker: str | None  # the worker that submitted it (the label Prefect's worker puts on the run)
    created: datetime
    pending: datetime | None  # when a worker took it (Scheduled -> Pending)
    running: datetime | None
    end: datetime | None
    parameters: dict[str, Any]
    message: str | None  # the last state's message, e.g. why it crashed

    def seconds(self, since: datetime, until: datetime | None) -> float | None:
        """Return the seconds from `since` to `until`, or None if `until` did not happen."""
        return None if until is None else (until - since).total_seconds()


def pool_run(flow_run_id: UUID) -> PoolRun:
    """Return what the server recorded of one flow run, with the time of each state it went through."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        states = client.read_flow_run_states(flow_run_id)
    first = {}
    for state in sorted(states, key=lambda s: s.timestamp):
        first.setdefault(state.type.value, state.timestamp)
    return PoolRun(
        id=run.id,
        name=run.name,
        state=run.state_name or "",
        pool=run.work_pool_name,
        queue=run.work_queue_name,
        worker=(run.labels or {}).get("prefect.worker.name"),
        created=run.created,
        pending=first.get("PENDING"),
        running=first.get("RUNNING"),
        end=run.end_time,
        parameters=run.parameters,
        message=run.state.message if run.state else None,
    )


FINAL_STATES = ("Completed", "Failed", "Crashed", "Cancelled")


def wait_for_runs(
    flow_run_ids: list[UUID], timeout: float = 60.0, states: tuple[str, ...] = FINAL_STATES
) -> list[PoolRun]:
    """Poll until every run is in one of `states` (by name: final ones, or e.g. "Late"); return them in order."""
    from lessons_src.runs import poll_until

    return poll_until(
        lambda: [pool_run(run_id) for run_id in flow_run_ids],
        lambda runs: all(run.state in states for run in runs),
        timeout,
        lambda runs: f"after {timeout:.0f} s the runs are {[r.state for r in runs]}; expected each in {states}",
    )


def prefect_deploy(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `prefect --no-prompt deploy --all` in `folder` (which holds a prefect.yaml); return its exit code and output.

    `PWD` is set to the folder, as a shell's `cd` would, so `{{ $PWD }}` in the yaml names it.
    """
    return subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", *args],
        cwd=folder,
        env={**worker_env(), "PWD": str(folder)},
        capture_output=True,
        text=True,
        timeout=120,
    )
