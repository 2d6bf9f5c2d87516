"""Serve deployments from a background process a notebook starts and stops, and read back what they ran.

A flow defined in a notebook cannot be served ("Flows defined interactively cannot be deployed"), so the course
keeps its served flows in `.py` files under `flows/` and serves them from a subprocess:

- `serve_script("served_pipeline.py", [...])` runs a flow file whose `__main__` block calls `prefect.serve(...)`;
- `serve_deployments(DeploymentSpec(...), ...)` runs `python -m lessons_src.serving`, which loads each flow from its
  file, calls `flow.to_deployment(name, **options)` with your options and serves them all with `prefect.serve`.

Every process started here is stopped by `ServeProcess.stop()`, by leaving its `with` block, by `stop_all()`, or at
the latest when the Python process that started it exits (atexit).
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from lessons_src.paths import course_home, repo_root
from lessons_src.processes import detached, log_tail, pid_alive, terminate

RUNNER_POLL_SECONDS = 1  # Prefect's default is 10 s between the runner's checks for runs to start
READY_TIMEOUT_S = 90.0
# How a serve process's flow-run children show in their command line: `python -m prefect.engine` for a flow loaded
# from its file, multiprocessing's `spawn_main` when the runner holds the flow object itself
FLOW_RUN_COMMANDS = ("prefect.engine", "spawn_main")
_STARTED: list[ServeProcess] = []


def flows_dir() -> Path:
    """Return the repository's `flows/` folder, where the served flow files live."""
    return repo_root() / "flows"


def load_served_flow(name: str, file: str = "served_pipeline.py") -> Any:
    """Load the flow function `name` from a file under `flows/` (by path, as Prefect's runner does)."""
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(f"{flows_dir() / file}:{name}")


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment to serve: the flow (`file.py:function` under `flows/`), its name and `to_deployment` options."""

    entrypoint: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def flow_function(self) -> str:
        """The flow function's name in its file."""
        return self.entrypoint.rsplit(":", 1)[1]


def serve_env() -> dict[str, str]:
    """Return the environment for a serve process: this process's Prefect server and PREFECT_HOME, fast polling."""
    from lessons_src.server import prefect_home

    env = dict(os.environ)
    env["PREFECT_HOME"] = str(prefect_home())  # shared with the notebook, so persisted results are readable here
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = str(RUNNER_POLL_SECONDS)
    env["PYTHONUNBUFFERED"] = "1"
    if "PREFECT_API_URL" not in env:
        raise RuntimeError("PREFECT_API_URL is not set: run `course = setup()` before serving deployments.")
    return env


class ServeProcess:
    """A `serve` process running in the background; stopping it also stops the flow-run processes it started."""

    def __init__(self, command: list[str], deployment_names: list[str], label: str) -> None:
        self.command = command
        self.deployment_names = deployment_names
        self.log_path = course_home() / f"serve-{label}.log"
        self.started_at: datetime | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        """Start the process (returns at once; `wait_until_ready()` waits for its deployments)."""
        self.started_at = datetime.now(UTC)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=repo_root(),
                env=serve_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **detached(),
            )
        _STARTED.append(self)
        return self

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        """True while the serve process is alive."""
        return self.process is not None and self.process.poll() is None

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait until every deployment is registered by this process and its runner has polled for work; return them.

        Registration comes before the runner starts (and installs its SIGTERM handler); the server marks a deployment
        READY, with `last_polled`, only once the runner asks for scheduled runs. A stop before that point could not
        pause the schedules.
        """
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while True:
                if not self.running:
                    raise RuntimeError(
                        f"The serve process exited (code {self.process and self.process.returncode}). "
                        f"Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                    )
                found = {}
                for name in self.deployment_names:
                    try:
                        deployment = client.read_deployment_by_name(name)
                    except ObjectNotFound:
                        break
                    if deployment.updated is None or deployment.updated < self.started_at:
                        break  # not yet registered by this process
                    if deployment.last_polled is None or deployment.last_polled < self.started_at:
                        break  # registered, but its runner has not asked for work yet
                    found[name] = deployment
                if len(found) == len(self.deployment_names):
                    return found
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.deployment_names} not served within {timeout:.0f} s. Last lines of {self.log_path}:\n"
                        f"{log_tail(self.log_path)}"
                    )
                time.sleep(0.2)

    def flow_run_pids(self) -> set[int]:
        """Return the process ids of the flow runs this serve process is executing now."""
        if not self.running:
            return set()
        pids = set()
        for child in psutil.Process(self.pid).children(recursive=True):
            try:
                if any(word in " ".join(child.cmdline()) for word in FLOW_RUN_COMMANDS):
                    pids.add(child.pid)
            except psutil.Error:  # it exited meanwhile
                continue
        return pids

    def wait_for_flow_runs(self, timeout: float = 30.0) -> float:
        """Wait until the flow-run processes running now have exited; return the seconds waited.

        A run is Completed on the server seconds before its process exits (it still joins its heartbeat thread and
        sends its last logs and events). A stop in between cancels it, and the runner writes Cancelled over Completed
        (`StateProposer.propose_cancelled` forces the state).
        """
        started = time.monotonic()
        finishing = self.flow_run_pids()
        while finishing & self.flow_run_pids() and time.monotonic() - started < timeout:
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop it and its flow runs (SIGTERM, then SIGKILL after `grace` s); return its exit status.

        The status is 0 when Prefect's runner caught SIGTERM, stopped and exited by itself (`Runner.handle_sigterm`
        schedules its stop); `exit_status_meaning` says what another one means.
        """
        if self.process is None:
            return None
        terminate(self.process, grace=grace)
        return self.process.returncode

    def log(self, lines: int = 15) -> str:
        """Return the last lines the serve process printed."""
        return log_tail(self.log_path, lines)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited ({self.process.returncode if self.process else 'not started'})"
        return f"<ServeProcess pid={self.pid} {state}: {', '.join(self.deployment_names)}>"


def exit_status_meaning(status: int | None) -> str:
    """Say in words what a stopped serve process's exit status means (on Linux and macOS)."""
    if status is None:
        return "it has not exited"
    if status == 0:
        return "it exited by itself: Prefect's runner catches SIGTERM, stops its runs and exits"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"{name} ended it before it could exit by itself"
    return "it exited with an error: read its log"


def serve_script(file: str, deployment_names: list[str], wait: bool = True) -> ServeProcess:
    """Run `python flows/<file>` (whose `__main__` serves deployments) in the background."""
    path = flows_dir() / file
    serving = ServeProcess([sys.executable, str(path)], deployment_names, label=path.stem).start()
    if wait:
        serving.wait_until_ready()
    return serving


def serve_deployments(*specs: DeploymentSpec, limit: int | None = None, wait: bool = True) -> ServeProcess:
    """Serve `flow.to_deployment(spec.name, **spec.options)` for each spec from one background process."""
    flows = {spec.entrypoint: load_served_flow(*reversed(spec.entrypoint.split(":", 1))) for spec in specs}
    names = [f"{flows[spec.entrypoint].name}/{spec.name}" for spec in specs]
    # pickled, not JSON: options may hold a timedelta or Cron(...) objects, which must arrive as they were given
    payload = {"deployments": [(spec.entrypoint, spec.name, spec.options) for spec in specs], "limit": limit}
    descriptor, spec_path = tempfile.mkstemp(prefix="serve-", suffix=".pickle", dir=course_home())
    with os.fdopen(descriptor, "wb") as spec_file:
        pickle.dump(payload, spec_file)
    label = "-".join(spec.name for spec in specs)[:60]
    serving = ServeProcess([sys.executable, "-m", "lessons_src.serving", spec_path], names, label=label).start()
    if wait:
        serving.wait_until_ready()
    return serving


def running_serve_processes() -> list[ServeProcess]:
    """Return the serve processes started from this Python process that are still alive."""
    return [serving for serving in _STARTED if serving.running or (serving.pid and pid_alive(serving.pid))]


def stop_all() -> None:
    """Stop every serve process started from this Python process."""
    for serving in _STARTED:
        serving.stop()


atexit.register(stop_all)


def delete_deployments(*names: str) -> int:
    """Delete the named deployments (`flow-name/deployment-name`) if they exist; return how many were deleted."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deleted = 0
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.delete_deployment(client.read_deployment_by_name(name).id)
                deleted += 1
            except ObjectNotFound:
                pass
    return deleted


def read_deployment(name: str) -> Any | None:
    """Return the server's record of deployment `name` (`flow-name/deployment-name`), or None if there is none."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None


def deployment_flow_runs(name: str, since: datetime | None = None) -> list[Any]:
    """Return the flow runs of deployment `name` (expected to start after `since`), earliest expected start first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)
        run_filter = FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since)) if since else None
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=run_filter,
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )


def _serve_from_spec_file(spec_file: Path) -> None:
    """Load each flow named in the spec file, build its deployment with `to_deployment` and serve them all."""
    from prefect import serve

    payload = pickle.loads(spec_file.read_bytes())  # written by serve_deployments in the process that started this one
    deployments = []
    for entrypoint, name, options in payload["deployments"]:
        file, function = entrypoint.split(":", 1)
        flow = load_served_flow(function, file)
        deployments.append(flow.to_deployment(name, **options))
    spec_file.unlink(missing_ok=True)
    serve(*deployments, limit=payload["limit"])


if __name__ == "__main__":
    _serve_from_spec_file(Path(sys.argv[1]))
