"""Start, find, stop and reset the course's own local Prefect server and its database (course-local PREFECT_HOME)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from lessons_src import database
from lessons_src.paths import course_home
from lessons_src.processes import (
    ServiceFiles,
    ServiceStartError,
    listens_on,
    pid_alive,
    port_is_free,
    process_runs,
    start_lock,
    start_service,
    terminate,
)

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
PORT_SETTING = "COURSE_PORT"  # the port to try first, instead of 4200 (each parallel test process sets its own)
PORT_RANGE = range(4200, 4300)
START_TIMEOUT_S = 90.0  # the first start migrates a fresh database, which takes longer
START_COMMAND = "python -m lessons_src server start"
PORT_ATTEMPTS = 3  # a port found free can be taken by another start before ours binds it

# Settings the course server runs with. A task refused a tag limit's slot sleeps the Retry-After the server sends:
# the limit's average slot occupancy, capped at `tag_concurrency_slot_wait_seconds` (Prefect's default is 10 s; the
# classroom value is 0.5 s), with Poisson jitter (0.75-1.3 times it). The task-run recorder keeps Prefect's default
# (one transaction per task-run event): batching it delays task-run records by up to a second, which readers that do
# not know how many task runs to expect cannot wait for. Events are written in batches, at the latest every
# `event_persister.flush_interval` s (Prefect's default 5 s; 1 s here, so checks and lessons read them back sooner).
# A scheduled run nobody starts is renamed Late `late_runs.after_seconds` after its slot, checked every
# `late_runs.loop_seconds` (Prefect's defaults 15 s and 5 s; 5 s and 1 s here, so lesson 11 shows a Late run in class).
# A deployment run that finds its deployment's concurrency limit full (collision strategy ENQUEUE) waits, and the
# server tries again after `deployments.concurrency_slot_wait_seconds` (Prefect's default 30 s; 1 s here, so lesson
# and exercises 11 see the queued run start right after the first one ends).
# Proactive automation triggers ("no event X within N s") are evaluated every `events.proactive_granularity` (Prefect's
# default 5 s, written here as an ISO 8601 duration, as the server reports it): on 2026-12-01 a 10 s window fired
# 4.5-4.8 s after it closed with 5 s, 0.45-0.89 s with 1 s (6 firings each), so lesson 12 waits for the window only.
SERVER_SETTINGS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS": "0.5",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "PT5S",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
    "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}


class CourseServerError(RuntimeError):
    """The course's Prefect server could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class ServerInfo:
    """Where a running course server listens and which process it is."""

    pid: int
    port: int
    home: str
    database: str = "sqlite"  # "postgresql" or "sqlite"
    database_pid: int | None = None  # the PostgreSQL server, whose death the Prefect server does not survive

    @property
    def url(self) -> str:
        """Base address of the server (the UI is served here)."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """The address Prefect clients use (`PREFECT_API_URL`)."""
        return f"{self.url}/api"


def prefect_home() -> Path:
    """Return the course-local PREFECT_HOME (never the learner's ~/.prefect)."""
    home = course_home() / "prefect_home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def _files() -> ServiceFiles:
    return ServiceFiles(course_home(), "server")


def is_healthy(port: int, timeout: float = 1.0) -> bool:
    """Return True when a Prefect server on this port answers and reaches its database (`/api/ready`)."""
    try:
        response = httpx.get(f"http://{HOST}:{port}/api/ready", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _port_free(port: int) -> bool:
    return port_is_free(HOST, port)


def _port_was_taken(port: int, output: str) -> bool:
    """Return True when a start that printed `output` failed because another process held `port` (even if gone now)."""
    return not _port_free(port) or "error while attempting to bind" in output  # asyncio's create_server says so


def _read_state() -> ServerInfo | None:
    return _files().read(ServerInfo)


def running_server() -> ServerInfo | None:
    """Return the course server recorded in the state file if it and its database are alive and healthy, else None."""
    info = _read_state()
    database_alive = info is not None and (info.database_pid is None or pid_alive(info.database_pid))
    if info and database_alive and pid_alive(info.pid) and is_healthy(info.port) and listens_on(info.pid, info.port):
        return info
    return None


def _is_course_server(info: ServerInfo) -> bool:
    """Return True when the pid in the state file is still the course's `prefect server start` on its port."""
    return process_runs(info.pid, "prefect", "server", "start", str(info.port))


def preferred_port() -> int:
    """Return the port the course server tries first: `COURSE_PORT` if set, else 4200."""
    value = os.environ.get(PORT_SETTING, str(DEFAULT_PORT))
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise CourseServerError(f"{PORT_SETTING}={value!r} is not a port number (1-65535); unset it to use 4200.")
    return int(value)


def choose_port(preferred: int = DEFAULT_PORT) -> int:
    """Return the preferred port if free, otherwise the next free port of the course's range after it (wrapping).

    Starting after the preferred port keeps parallel starts with different preferences (test processes) apart.
    """
    start = preferred if preferred in PORT_RANGE else PORT_RANGE.start
    for port in [preferred, *range(start, PORT_RANGE.stop), *range(PORT_RANGE.start, start)]:
        if _port_free(port):
            return port
    raise CourseServerError(
        f"No free port between {PORT_RANGE.start} and {PORT_RANGE.stop - 1} on {HOST}. "
        "Stop other Prefect servers (`prefect server stop`) or free a port, then run: " + START_COMMAND
    )


def proxy_prefix() -> str | None:
    """Return the JupyterHub/Binder URL prefix (e.g. `/user/ada/`) when running behind one, else None."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    return prefix if prefix else None


def codespace_url(port: int) -> str | None:
    """Return the address GitHub Codespaces forwards `port` to, when running in a codespace, else None."""
    name = os.environ.get("CODESPACE_NAME")
    domain = os.environ.get("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN")
    return f"https://{name}-{port}.{domain}" if name and domain else None


def ui_address(info: ServerInfo) -> str:
    """Return where a learner's browser reaches the UI: directly, through JupyterHub's proxy, or a codespace's."""
    prefix = proxy_prefix()
    if prefix:
        return f"{prefix.rstrip('/')}/proxy/absolute/{info.port}/"
    return codespace_url(info.port) or info.url


def _remote_ui_settings(port: int) -> dict[str, str]:
    """Point the UI's browser code at an API address the browser can reach: Binder's proxy or a codespace's port."""
    prefix = proxy_prefix()
    if prefix is not None:
        base = prefix.rstrip("/")
        return {
            "PREFECT_UI_SERVE_BASE": f"{base}/proxy/absolute/{port}",
            "PREFECT_UI_API_URL": f"{base}/proxy/{port}/api",
        }
    forwarded = codespace_url(port)
    return {"PREFECT_UI_API_URL": f"{forwarded}/api"} if forwarded else {}


def _server_env(port: int, db: database.Database | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(SERVER_SETTINGS)
    env.update(_remote_ui_settings(port))
    env["PREFECT_HOME"] = str(prefect_home())
    # The UI's files, copied with this server's URL prefix written into them, live in the course home: by default
    # Prefect writes them inside the installed package, where a server started with another prefix (Binder's proxy,
    # a parallel test) deletes and rewrites them while this one starts ("index.html does not exist").
    env["PREFECT_SERVER_UI_STATIC_DIRECTORY"] = str(prefect_home() / "ui_build")
    env["PREFECT_API_URL"] = f"http://{HOST}:{port}/api"
    if db is not None and db.url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = db.url
    return env


def start_server(
    port: int | None = None, timeout: float = START_TIMEOUT_S, say: Callable[[str], None] | None = print
) -> ServerInfo:
    """Start the course server in the background, or return the healthy one already running (or being started).

    A start that takes more than a moment says what it waits for through `say` (None: silently).
    """
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {port!r}")
    tell = say or (lambda _: None)

    def another_process_starts_it(seconds: float) -> None:
        tell(f"Another process is starting the course server; waiting for it ({seconds:.0f} s)...")

    with start_lock(_files().lock, waiting=another_process_starts_it):
        return running_server() or _start(port, timeout, tell)


def _start(port: int | None, timeout: float, tell: Callable[[str], None]) -> ServerInfo:
    previous = _read_state()
    if previous and _is_course_server(previous):  # alive but unhealthy, or its database died: start both afresh
        tell(f"The course server (pid {previous.pid}) no longer answers or lost its database; restarting it.")
        terminate(previous.pid)
    port = choose_port(port or (previous.port if previous else preferred_port()))
    fresh = not (prefect_home() / "prefect.db").exists() and not database.data_folder().exists()
    db = database.start_database(tell)
    first = " (a first start creates its database: up to a minute)" if fresh else ""
    tell(f"Starting the course's Prefect server on port {port}, on {db.kind}{first}...")

    def still_starting(seconds: float) -> None:
        tell(f"  still starting ({seconds:.0f} s; its log: {_files().log})")

    log = _files().log
    for attempt in range(1, PORT_ATTEMPTS + 1):
        printed_before = log.stat().st_size if log.exists() else 0  # the log keeps earlier starts' output
        command = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            HOST,
            "--port",
            str(port),
            "--analytics-off",
        ]
        try:
            process = start_service(
                command,
                _files().log,
                lambda pid, port=port: is_healthy(port) and listens_on(pid, port),  # ours, not another's on the port
                timeout,
                _server_env(port, db),
                0.2,
                still_starting,
            )
            break
        except ServiceStartError as error:
            output = log.read_bytes()[printed_before:].decode(errors="replace")
            if attempt == PORT_ATTEMPTS or not _port_was_taken(port, output):
                raise CourseServerError(
                    f"The Prefect server did not start: {error}\nThen run: {START_COMMAND}"
                ) from None
            port = choose_port(port + 1)  # another process took the port between the check and the start
            tell(f"  that port was taken meanwhile; trying port {port}")
    info = ServerInfo(pid=process.pid, port=port, home=str(prefect_home()), database=db.kind, database_pid=db.pid)
    _files().write(info)
    return info


def stop_server() -> bool:
    """Stop the course server, then its database; return True when a server was stopped."""
    info = _read_state()
    _files().forget()
    stopped = bool(info and _is_course_server(info))
    if stopped:
        terminate(info.pid)
    database.stop_database()  # after the server: PostgreSQL's clients are gone
    return stopped


def reset_server() -> ServerInfo | None:
    """Wipe the course database (flows, runs, limits, variables); restart the server if it was running."""
    was_running = stop_server()
    database.delete_database()
    shutil.rmtree(prefect_home(), ignore_errors=True)
    prefect_home()
    return start_server() if was_running else None


def migrate_database() -> None:
    """Create or upgrade the course database ahead of the first start (Binder runs this at build time)."""
    db = database.start_database(print)
    try:
        env = _server_env(DEFAULT_PORT, db)
        command = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
        subprocess.run(command, env=env, check=True)
    finally:
        database.stop_database()


def server_problem(timeout: float = 2.0) -> str | None:
    """Return why the server this process's Prefect client uses does not answer, with the fix, or None if it does."""
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        return None  # not connected to a course server (setup() not run): nothing of the course's to blame
    try:
        answered = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        answered = False
    if answered:
        return None
    return (
        f"the course's Prefect server at {api_url} did not answer. Start it with `{START_COMMAND}`, run the "
        "notebook's first cell (setup()) again, then this cell."
    )


def server_status() -> str:
    """Return one line saying whether the course server runs and where."""
    info = running_server()
    if info:
        return (
            f"running: UI {ui_address(info)}  API {info.api_url}  (pid {info.pid}, {info.database}, home {info.home})"
        )
    return f"not running. Start it with: {START_COMMAND}"
