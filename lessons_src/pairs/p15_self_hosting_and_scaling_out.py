"""Lesson 15's machinery: a second Prefect server (SQLite, a path prefix, a password), a small reverse proxy, a Dask
cluster of separate processes, the client workload run against each server, and what each process listens on.

Every process here is a `BackgroundProcess` (stopped by `stop()`, by its `Services` group, or when the kernel exits)
bound to 127.0.0.1 only. `python -m lessons_src.pairs.p15_self_hosting_and_scaling_out proxy PORT PREFIX TARGET` runs
the proxy itself. A helper here that a later pair needs (the proxy, the Dask cluster, a second server) could move to a
shared module.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from lessons_src.background import BackgroundProcess
from lessons_src.paths import course_home, repo_root
from lessons_src.processes import free_port, terminate

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0  # a second Prefect server started in 10-51 s here on a busy 2-core machine (database included)
STOP_GRACE_S = 1.0  # SIGTERM, then SIGKILL: a kernel asked to shut down gets SIGTERM itself 2.5 s later
WORKLOAD_FILE = "flows/self_hosting_jobs.py"
MARK = "COURSE_P15_SERVICE"  # every process started here carries "<course home>|<label>" in this variable
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "content-encoding", "host"}


def lesson_folder(name: str, prefix: str = "lesson-15-") -> Path:
    """Return an empty folder `<prefix><name>` in the course home (what an earlier run left there is removed)."""
    folder = course_home() / f"{prefix}{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def remove_folders(prefix: str) -> list[str]:
    """Remove every folder of the course home whose name starts with `prefix`; return their names."""
    removed = []
    for folder in sorted(course_home().glob(f"{prefix}*")):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def clean_env(**settings: str) -> dict[str, str]:
    """Return this process's environment without any PREFECT_* variable, plus `settings`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env.update(settings)
    return env


def marked_env(label: str, env: dict[str, str]) -> dict[str, str]:
    """Return `env` with the mark that lets `clean_up` find the process again, even after its kernel died."""
    return {**env, MARK: f"{course_home()}|{label}", "PYTHONUNBUFFERED": "1"}


def is_setting(name: str) -> bool:
    """Return True when `name` is an environment variable Prefect reads as a setting (a current name or an alias)."""
    import prefect.settings

    try:
        getattr(prefect.settings, name)
    except AttributeError:
        return False
    return name.startswith("PREFECT_")


def wait_for(check: Callable[[], bool], process: BackgroundProcess, what: str, timeout: float) -> float:
    """Poll `check` until it is true; fail with `process`'s log if it exits or `timeout` passes; return seconds."""
    started = time.monotonic()
    while not check():
        if not process.running:
            raise process.exited_error(what)
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} was not ready within {timeout:.0f} s:\n{process.log()}")
        time.sleep(0.2)
    return time.monotonic() - started


# ---- a second Prefect server ----


class TeamServer(BackgroundProcess):
    """`prefect server start` on SQLite with a PREFECT_HOME of its own, optionally under a path prefix and a password.

    `base` ("/team") serves the API at `<base>/api` and the UI at `<base>`; `public_url` is where browsers reach the
    server (a proxy), so the UI calls the API there; `auth_string` ("user:password") protects the API.
    """

    def __init__(
        self,
        label: str,
        home: Path,
        base: str = "",
        auth_string: str | None = None,
        public_url: str | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port(HOST)
        self.base, self.home, self.auth_string = base.rstrip("/"), home, auth_string
        self.settings = {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",  # log each 'database is locked' answered with a 503
            "PREFECT_SERVER_UI_STATIC_DIRECTORY": str(home / "ui"),  # its own copy: the UI files get the prefix
        }
        if self.base:
            self.settings["PREFECT_SERVER_API_BASE_PATH"] = f"{self.base}/api"
            self.settings["PREFECT_SERVER_UI_SERVE_BASE"] = self.base
        if public_url:
            self.settings["PREFECT_SERVER_UI_API_URL"] = f"{public_url.rstrip('/')}{self.base}/api"
        if auth_string:
            self.settings["PREFECT_SERVER_API_AUTH_STRING"] = auth_string
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(self.port)]
        super().__init__(command, label, env=marked_env(label, clean_env(**self.settings)))

    @property
    def url(self) -> str:
        """Where the server answers directly (no proxy), with its path prefix."""
        return f"http://{HOST}:{self.port}{self.base}"

    @property
    def api_url(self) -> str:
        """The API address a client on this machine uses directly (`PREFECT_API_URL`)."""
        return f"{self.url}/api"

    def is_ready(self) -> bool:
        """Return True once the server answers `/api/ready` (open without the password, for load balancers)."""
        try:
            return httpx.get(f"{self.api_url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Wait until the server is ready; return the seconds since it was started."""
        wait_for(self.is_ready, self, f"Prefect server {self.url}", timeout)
        return (time.time() - self.started_at.timestamp()) if self.started_at else 0.0

    def client_env(self) -> dict[str, str]:
        """Return the environment of a client process of this server (with its password, if it has one)."""
        env = clean_env(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home / "client"))
        if self.auth_string:
            env["PREFECT_API_AUTH_STRING"] = self.auth_string
        return env

    def log_mark(self) -> int:
        """Return the size of the server's log now, to count what it logs after this moment."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def retryable_errors(self, since: int = 0) -> int:
        """Count the requests the server answered 503 because of a retryable database error, after `since`."""
        text = self.log_path.read_bytes()[since:].decode(errors="replace")
        return text.count("Encountered retryable exception")


# ---- a reverse proxy ----


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy received: what it asked for, whether it matched the prefix, and the answer's status."""

    method: str
    path: str
    routed: bool
    status: int


def proxy_app(prefix: str, target: str) -> Any:
    """Return an ASGI app that forwards requests under `prefix` unchanged to `target` and answers 404 to the rest.

    It prints one JSON line per request (its log). Plain HTTP only: the UI's live updates use WebSockets, which a
    real proxy (nginx, Traefik, Caddy) passes on too.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    prefix = "/" + prefix.strip("/")
    client = httpx.AsyncClient(base_url=target, timeout=60)

    async def forward(request: Request) -> Response:
        path = request.url.path
        routed = path == prefix or path.startswith(prefix + "/")
        if routed:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            answer = await client.request(
                request.method, path, params=request.query_params, headers=headers, content=await request.body()
            )
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            response: Response = Response(answer.content, answer.status_code, kept)
        else:
            response = JSONResponse({"detail": f"this proxy routes only {prefix}/..."}, 404)
        line = {"method": request.method, "path": path, "routed": routed, "status": response.status_code}
        print(json.dumps(line), flush=True)
        return response

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


class PathProxy(BackgroundProcess):
    """A reverse proxy on 127.0.0.1:`port` that forwards `/<prefix>/...` to `target`, logging every request."""

    def __init__(self, label: str, prefix: str, target: str, port: int | None = None) -> None:
        self.port = port or free_port(HOST)
        self.prefix = "/" + prefix.strip("/")
        module = "lessons_src.pairs.p15_self_hosting_and_scaling_out"
        command = [sys.executable, "-m", module, "proxy", str(self.port), self.prefix, target]
        super().__init__(command, label, env=marked_env(label, dict(os.environ)))

    @property
    def url(self) -> str:
        """The proxy's public address, with the prefix: what users and clients are given."""
        return f"http://{HOST}:{self.port}{self.prefix}"

    def is_ready(self) -> bool:
        """Return True once the proxy answers."""
        try:
            httpx.get(f"http://{HOST}:{self.port}/", timeout=2)
        except httpx.HTTPError:
            return False
        return True

    def wait_until_ready(self, timeout: float = 30.0) -> float:
        """Wait until the proxy answers; return the seconds waited."""
        return wait_for(self.is_ready, self, f"proxy {self.url}", timeout)

    def requests(self) -> list[ProxiedRequest]:
        """Return every request the proxy received, oldest first, from its log."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []:
            if line.startswith("{"):
                record = json.loads(line)
                found.append(ProxiedRequest(record["method"], record["path"], record["routed"], record["status"]))
        return found


# ---- a Dask cluster of separate processes ----


class DaskScheduler(BackgroundProcess):
    """`dask scheduler` on 127.0.0.1 (by default it listens on every interface, its dashboard too)."""

    def __init__(self, label: str, port: int | None = None) -> None:
        self.port = port or free_port(HOST)
        command = [sys.executable, "-m", "dask", "scheduler", "--host", HOST, "--port", str(self.port)]
        command += ["--no-dashboard", "--dashboard-address", f"{HOST}:0"]  # its HTTP server runs even without one
        super().__init__(command, label, env=marked_env(label, dict(os.environ)))

    @property
    def address(self) -> str:
        """The address clients and workers connect to."""
        return f"tcp://{HOST}:{self.port}"


class DaskWorker(BackgroundProcess):
    """`dask worker` named `name`, one thread, no nanny, working in `folder`, with this kernel's Prefect settings."""

    def __init__(self, label: str, scheduler: str, name: str, folder: Path) -> None:
        self.name, self.folder = name, folder
        command = [sys.executable, "-m", "dask", "worker", scheduler, "--name", name, "--host", HOST]
        command += ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--dashboard-address", f"{HOST}:0"]
        command += ["--local-directory", str(folder), "--preload", "prefect.task_engine"]  # import Prefect at start
        command += ["--death-timeout", "10"]  # exit by itself 10 s after losing its scheduler
        super().__init__(command, label, env=marked_env(label, dict(os.environ)))


@dataclass(frozen=True)
class DaskTaskRecord:
    """One task the Dask scheduler recorded: its key, the worker that computed it, and when."""

    key: str
    worker: str
    start: float
    end: float


class DaskCluster:
    """A `dask scheduler` and one `dask worker` per folder, each named after its folder and working in it."""

    def __init__(self, prefix: str, folders: list[Path]) -> None:
        self.scheduler = DaskScheduler(f"{prefix}dask-scheduler")
        self.workers = [DaskWorker(folder.name, self.scheduler.address, folder.name, folder) for folder in folders]

    @property
    def address(self) -> str:
        """The scheduler's address: what `DaskTaskRunner(address=...)` takes."""
        return self.scheduler.address

    @property
    def processes(self) -> list[BackgroundProcess]:
        """The scheduler and the workers."""
        return [self.scheduler, *self.workers]

    def wait_until_ready(self, timeout: float = 60.0) -> float:
        """Wait until every worker has joined the scheduler; record tasks from then on; return the seconds waited."""
        from distributed import Client

        started = time.monotonic()
        wait_for(lambda: _accepts(HOST, self.scheduler.port), self.scheduler, "dask scheduler", timeout)
        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(len(self.workers), timeout=timeout)
            client.get_task_stream(start=time.time())  # installs the scheduler's task-stream recorder
        return time.monotonic() - started

    def worker_names(self) -> dict[str, str]:
        """Map each worker's address to its name, as the scheduler knows them."""
        from distributed import Client

        with Client(self.address, timeout=10) as client:
            return {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}

    def tasks_since(self, since: float) -> list[DaskTaskRecord]:
        """Return the tasks the scheduler recorded as computed after `since` (epoch seconds), by worker name."""
        from distributed import Client

        names = self.worker_names()
        with Client(self.address, timeout=10) as client:
            stream = client.get_task_stream(start=since)
        records = []
        for item in stream:
            computes = [s for s in item.get("startstops", []) if s.get("action") == "compute"]
            if computes:
                worker = names.get(item["worker"], item["worker"])
                records.append(DaskTaskRecord(str(item["key"]), worker, computes[0]["start"], computes[-1]["stop"]))
        return sorted(records, key=lambda r: r.start)


def _accepts(host: str, port: int) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


# ---- a group of services, stopped together ----


class Services:
    """Background processes and folders a notebook starts together and removes together, also after a failure."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.processes: list[BackgroundProcess] = []
        self.folders: list[Path] = []
        atexit.register(self.stop)

    def add(self, *processes: BackgroundProcess) -> None:
        """Start these processes (in order) and stop them with the rest."""
        for process in processes:
            self.processes.append(process)
            process.start()

    def folder(self, name: str) -> Path:
        """Return a new empty folder `<prefix><name>` in the course home, removed with the rest."""
        folder = lesson_folder(name, self.prefix)
        self.folders.append(folder)
        return folder

    def stop(self) -> list[str]:
        """Stop every process at once, within one grace period, and remove every folder (a kernel that shuts down
        is itself killed a few seconds later, so its exit must not wait for each process in turn).

        Return the names of the processes that were running.
        """
        stopped = [Path(p.log_path).stem for p in reversed(self.processes) if p.running]
        members = []
        for process in self.processes:
            if process.running:
                with contextlib.suppress(psutil.Error):
                    root = psutil.Process(process.pid)
                    members += [root, *root.children(recursive=True)]
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.terminate()
        _, alive = psutil.wait_procs(members, timeout=STOP_GRACE_S)
        for member in alive:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(alive, timeout=STOP_GRACE_S)
        for process in self.processes:
            process.stop(grace=STOP_GRACE_S)  # records the exit status; stops what the waits above missed
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        return stopped

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def listening(processes: list[BackgroundProcess]) -> dict[str, set[str]]:
    """Map each running process (by its log's name) to the addresses it and its children listen on, as ip:port."""
    return {Path(p.log_path).stem: tree_listening(p.pid) for p in processes if p.running and p.pid}


def beyond_loopback(addresses: dict[str, set[str]]) -> dict[str, set[str]]:
    """Return the addresses from `listening` that are not on 127.0.0.1 (what a neighbour on the network could reach)."""
    outside = {name: {a for a in found if not a.startswith(f"{HOST}:")} for name, found in addresses.items()}
    return {name: found for name, found in outside.items() if found}


# ---- the client workload, against any server ----


@dataclass(frozen=True)
class Workload:
    """What one client process of `flows/self_hosting_jobs.py` reported (or why it failed)."""

    label: str
    returncode: int
    seconds: float | None
    retried: int | None
    flow_run_id: str | None
    output: str


def start_workloads(
    envs: dict[str, dict[str, str]], tasks: int, seconds: float, limit: str, wait_for: tuple[str, ...] = ()
) -> dict[str, subprocess.Popen]:
    """Start the workload once per environment, each in a fresh process; return at once.

    Each process imports Prefect, then waits until every address in `wait_for` answers 200 before it runs, so
    processes started before a server is ready all begin their work together.
    """
    return {
        label: subprocess.Popen(
            [sys.executable, WORKLOAD_FILE, str(tasks), str(seconds), limit],
            cwd=repo_root(),
            env={**env, "WAIT_FOR": ",".join(wait_for)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for label, env in envs.items()
    }


def finish_workloads(started: dict[str, subprocess.Popen], timeout: float = 240.0) -> dict[str, Workload]:
    """Wait for the workload processes (killing one that outlives `timeout`); return what each reported."""
    reports = {}
    for label, process in started.items():
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        report = next((json.loads(x) for x in reversed(output.splitlines()) if x.startswith('{"flow_run_id"')), {})
        reports[label] = Workload(
            label, process.returncode, report.get("seconds"), report.get("retried"), report.get("flow_run_id"), output
        )
    return reports


def run_workloads(envs: dict[str, dict[str, str]], tasks: int, seconds: float, limit: str) -> dict[str, Workload]:
    """Run the workload once per environment, all at the same time, each in a fresh process; return their reports."""
    return finish_workloads(start_workloads(envs, tasks, seconds, limit))


# ---- a fresh client process ----

CLIENT_SCRIPT = """
import sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate
with get_client(sync_client=True) as client:
    client.create_variable(VariableCreate(name=sys.argv[1], value=sys.argv[2]))
print("created", sys.argv[1])
"""


def run_client(env: dict[str, str], variable: str, value: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run a fresh Prefect client process in `folder` with exactly `env` that creates Variable `variable` = `value`.

    It never falls back to a temporary server of its own (`PREFECT_SERVER_ALLOW_EPHEMERAL_MODE=false`).
    """
    full = {**clean_env(PREFECT_HOME=str(folder / "home")), **env, "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"}
    return subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, variable, value],
        cwd=folder,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def last_error(output: str) -> str:
    """Return the last line of a failed process's output that names an error (or its last line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line or "Exception" in line]
    return (named or lines or ["(no output)"])[-1][:300]


# ---- the course server, read from outside ----


def server_services(api_url: str) -> dict[str, bool]:
    """Return each background service of the server at `api_url` and whether it runs, from `/admin/settings`."""
    response = httpx.get(f"{api_url}/admin/settings", timeout=10)
    response.raise_for_status()
    services = response.json()["server"]["services"]
    return {name: bool(config.get("enabled")) for name, config in sorted(services.items())}


def process_tree(pid: int) -> list[str]:
    """Return the command names of a process and everything it started."""
    root = psutil.Process(pid)
    return [" ".join(p.cmdline()[:6]) for p in [root, *root.children(recursive=True)]]


def tree_listening(pid: int) -> set[str]:
    """Return the ip:port addresses a process and its children listen on."""
    root = psutil.Process(pid)
    found = set()
    for member in [root, *root.children(recursive=True)]:
        try:
            connections = member.net_connections("inet")
        except psutil.Error:  # it exited meanwhile
            continue
        found |= {f"{c.laddr.ip}:{c.laddr.port}" for c in connections if c.status == psutil.CONN_LISTEN}
    return found


def delete_limits(prefix: str) -> list[str]:
    """Delete the course server's global concurrency limits whose name starts with `prefix`; return their names."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = [
            limit.name for limit in client.read_global_concurrency_limits(limit=200) if limit.name.startswith(prefix)
        ]
        for name in names:
            client.delete_global_concurrency_limit_by_name(name)
    return names


def clean_up(prefix: str = "lesson-15-") -> list[str]:
    """Stop what an earlier run left running (also a killed kernel's processes), delete its limits and folders.

    Return what was removed.
    """
    left = list(_leftovers(prefix))
    for process in left:
        process.stop(grace=STOP_GRACE_S)
    removed = [f"process {Path(p.log_path).stem}" for p in left]
    for pid, label in orphans(prefix).items():
        terminate(pid, grace=STOP_GRACE_S)
        removed.append(f"process {label} (pid {pid}, left by an earlier kernel)")
    removed += [f"limit {name}" for name in delete_limits(prefix)]
    removed += [f"folder {name}" for name in remove_folders(prefix)]
    return removed


def _leftovers(prefix: str) -> Iterator[BackgroundProcess]:
    """Yield the processes of this kernel whose log name starts with `prefix` and that still run."""
    from lessons_src.background import running_processes

    for process in running_processes():
        if Path(process.log_path).stem.startswith(prefix):
            yield process


def orphans(prefix: str) -> dict[int, str]:
    """Return the processes of this course home marked with a label starting with `prefix` that nobody here holds.

    They are what a kernel that was killed (not shut down) left running: its exit could not stop them.
    """
    held = {p.pid for p in _leftovers("")}
    found = {}
    for process in psutil.process_iter():
        try:
            home, _, label = process.environ().get(MARK, "").partition("|")
        except psutil.Error:  # another user's process, or it exited meanwhile
            continue
        if home == str(course_home()) and label.startswith(prefix) and process.pid not in held:
            found[process.pid] = label
    return found


def main(argv: list[str]) -> None:
    """Run the proxy: `proxy PORT PREFIX TARGET`."""
    import uvicorn

    if len(argv) != 4 or argv[0] != "proxy":
        raise SystemExit("usage: python -m lessons_src.pairs.p15_self_hosting_and_scaling_out proxy PORT PREFIX TARGET")
    uvicorn.run(proxy_app(argv[2], argv[3]), host=HOST, port=int(argv[1]), log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
