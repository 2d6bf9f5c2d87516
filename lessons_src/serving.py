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

import os
import pickle
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lessons_src import background
from lessons_src.background import BackgroundProcess, running_processes
from lessons_src.paths import course_home, repo_root

RUNNER_POLL_SECONDS = 1  # Prefect's default is 10 s between the runner's checks for runs to start
READY_TIMEOUT_S = 90.0


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


class ServeProcess(BackgroundProcess):
    """A `serve` process running in the background; stopping it also stops the flow-run processes it started.

    Its exit status after `stop()` is 0 when Prefect's runner caught SIGTERM, stopped and exited by itself
    (`Runner.handle_sigterm` schedules its stop); `exit_status_meaning` says what another one means.
    """

    def __init__(self, command: list[str], deployment_names: list[str], label: str) -> None:
        super().__init__(command, f"serve-{label}", env=serve_env())
        self.deployment_names = deployment_names

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
                    raise self.exited_error("serve process")
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
                        f"{self.log()}"
                    )
                time.sleep(0.2)

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
    return running_processes(ServeProcess)


def stop_all() -> None:
    """Stop every serve process started from this Python process."""
    background.stop_all(ServeProcess)


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
