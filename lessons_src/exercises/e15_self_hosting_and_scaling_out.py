"""Exercises for pair 15 (self-hosting and scaling out): graders read back what a database, a server, a proxy and a
Dask scheduler recorded: the database file the server's own database code opened in a fresh process, the Variable a
fresh client process created on a password-protected server, the requests the proxy forwarded, and which Dask worker
the scheduler says ran each task.

The exercise server (SQLite, under `/ex15`, with a password), its proxy and a Dask cluster of two named workers are
started once per process (`start_services()`, the notebook's first cell), shared by every check, and stopped by
`clean_up()`.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from distributed import get_worker
from prefect import flow, task
from prefect_dask import DaskTaskRunner

from lessons_src.checks import (
    CheckFailed,
    CourseProblem,
    Exercise,
    ExerciseSet,
    call_answer,
    expect,
    require_signature,
    require_type,
    short,
)
from lessons_src.logs import quiet_console
from lessons_src.pairs.p15_self_hosting_and_scaling_out import (
    DaskCluster,
    PathProxy,
    Services,
    TeamServer,
    clean_env,
    free_port,
    is_setting,
    last_error,
    lesson_folder,
    run_client,
)
from lessons_src.pairs.p15_self_hosting_and_scaling_out import clean_up as clean_up_by_prefix

PREFIX = "ex15-"
BASE = "/ex15"
DATABASE_FILE = "team.db"
JOBS = 4


# ---- reference solutions (shown by ex.solution(n)) ----


def database_env(folder: Path) -> dict[str, str]:
    return {"PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder / 'team.db'}"}


def client_env(api_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_URL": api_url, "PREFECT_API_AUTH_STRING": auth_string}


def proxy_env(proxy_url: str, auth_string: str) -> dict[str, str]:
    return {"PREFECT_API_URL": f"{proxy_url}/ex15/api", "PREFECT_API_AUTH_STRING": auth_string}


@task
def worker_name(job: int) -> str:
    return get_worker().name


def where_did_they_run(address: str, jobs: int) -> list[str]:
    @flow(task_runner=DaskTaskRunner(address=address))
    def spread(jobs: int) -> list[str]:
        return [future.result() for future in worker_name.map(range(jobs))]

    return spread(jobs)


# ---- the exercise services, started once per process ----


@dataclass
class ExerciseServices:
    """The exercise server (SQLite, under /ex15, with a password), its proxy and a Dask cluster, started together."""

    services: Services
    server: TeamServer
    proxy: PathProxy
    cluster: DaskCluster
    auth: str

    @property
    def proxy_root(self) -> str:
        """The proxy's address without the path prefix: what the learner is given in exercise 3."""
        return f"http://127.0.0.1:{self.proxy.port}"

    def wait_until_ready(self) -> None:
        """Wait until the server, the proxy and both Dask workers answer."""
        self.server.wait_until_ready()
        self.proxy.wait_until_ready()
        self.cluster.wait_until_ready()


_STARTED: list[ExerciseServices] = []


def start_services() -> ExerciseServices:
    """Start the exercise services in the background (once per process) and return them at once."""
    if _STARTED and all(p.running for p in _STARTED[0].services.processes):
        return _STARTED[0]
    clean_up()
    services = Services(PREFIX)
    proxy_port = free_port()
    auth = "ex15:" + secrets.token_urlsafe(9)
    server = TeamServer(
        "ex15-server",
        services.folder("server-home"),
        base=BASE,
        auth_string=auth,
        public_url=f"http://127.0.0.1:{proxy_port}",
    )
    proxy = PathProxy("ex15-proxy", BASE, f"http://127.0.0.1:{server.port}", port=proxy_port)
    cluster = DaskCluster(PREFIX, [services.folder("worker-a"), services.folder("worker-b")])
    services.add(server, proxy, *cluster.processes)
    _STARTED.append(ExerciseServices(services, server, proxy, cluster, auth))
    return _STARTED[-1]


def ready_services() -> ExerciseServices:
    """Return the exercise services once they answer; a failure to start them is the course's problem."""
    started = start_services()
    try:
        started.wait_until_ready()
    except (RuntimeError, TimeoutError, OSError) as error:
        raise CourseProblem(
            f"the exercise services did not start: {str(error)[:400]}. Run the notebook's first cell again."
        ) from None
    return started


def clean_up() -> list[str]:
    """Stop the exercise services and remove what the exercises left (ex15-... processes and folders)."""
    stopped = [name for started in _STARTED for name in started.services.stop()]
    _STARTED.clear()
    return stopped + clean_up_by_prefix(PREFIX)


# ---- shared by the graders ----

PREFECT_2_HINT = "PREFECT_ORION_* are Prefect 2's names (its server was called Orion); Prefect 3 ignores them"


def _environment(answer: Any, *args: Any) -> dict[str, str]:
    """Call the learner's function and return its environment, failing on anything but real Prefect settings."""
    env = require_type(call_answer(answer, *args), dict, "your function's value", "{'PREFECT_API_URL': '...'}")
    for name, value in env.items():
        require_type(name, str, "each variable's name", "'PREFECT_API_URL'")
        require_type(value, str, f"the value of {name} (environment variables are text)", "'http://...'")
        if name.startswith("PREFECT_ORION_"):
            raise CheckFailed(f"{name}: {PREFECT_2_HINT}.")
        expect(is_setting(name), f"{name} is not a setting of Prefect 3: Prefect would ignore it without a word")
    return env


def _read_variable(started: ExerciseServices, name: str) -> Any | None:
    """Return Variable `name` as the exercise server has it (read with the password), or None."""
    response = httpx.get(
        f"{started.server.api_url}/variables/name/{name}", auth=tuple(started.auth.split(":", 1)), timeout=10
    )
    return response.json().get("value") if response.status_code == 200 else None


def _refused_without_password(started: ExerciseServices) -> int:
    """Return the status the exercise server answers to a request without the password."""
    return httpx.post(f"{started.server.api_url}/variables/filter", json={}, timeout=10).status_code


def _why_refused(env: dict[str, str], auth: str) -> str:
    """Say why the server refused a client with `env` (it answered 401)."""
    if "PREFECT_API_AUTH_STRING" not in env and "PREFECT_SERVER_API_AUTH_STRING" in env:
        return (
            "PREFECT_SERVER_API_AUTH_STRING is the server's setting (the password it asks for); a client sends its "
            "password from PREFECT_API_AUTH_STRING"
        )
    if "PREFECT_API_KEY" in env and "PREFECT_API_AUTH_STRING" not in env:
        return "PREFECT_API_KEY is Prefect Cloud's key; a self-hosted server asks for PREFECT_API_AUTH_STRING"
    given = env.get("PREFECT_API_AUTH_STRING")
    if given is None:
        return "the client sent no password: set PREFECT_API_AUTH_STRING"
    if given != auth:
        return (
            "the server refused the string your client sent: give 'user:password' exactly as you were given it "
            "(the client encodes it for HTTP basic authentication itself)"
        )
    return "the server answered 401 Unauthorized"


def _client_run(started: ExerciseServices, env: dict[str, str], what: str) -> tuple[Any, str, str]:
    """Run a fresh client with `env` that creates a new Variable; return (the value the server has, name, output)."""
    expect(
        "PREFECT_API_URL" in env,
        f"your environment has no PREFECT_API_URL, so {what} would not know which server to talk to",
    )
    name, value = f"ex15-client-{secrets.token_hex(4)}", secrets.token_hex(8)
    folder = lesson_folder(f"client-{name[-8:]}", PREFIX)
    done = run_client(env, name, value, folder)
    output = done.stdout + done.stderr
    stored = _read_variable(started, name)
    if stored is not None:
        expect(stored == value, f"the server's Variable {name} holds {short(stored)}; the client wrote {value!r}")
    return stored, name, output


# ---- exercise 1: where the server keeps its data ----


# The server's own way to its database (`/api/ready` asks the same), run in a fresh process with the learner's settings
CONNECT_SCRIPT = """
import asyncio
from prefect.server.database import provide_database_interface
async def connect():
    engine = await provide_database_interface().engine()
    async with engine.connect():
        print("connected to", engine.url.render_as_string(hide_password=True))
asyncio.run(connect())
"""


def _grade_database_env(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function of folder; got {short(answer)}")
    require_signature(answer, (Path("."),), "your function", "one argument, the folder")
    root = lesson_folder("database", PREFIX)
    folder, home, elsewhere = root / "data", root / "home", root / "current-folder"
    for made in (folder, home, elsewhere):
        made.mkdir()
    env = _environment(answer, folder)
    done = subprocess.run(
        [sys.executable, "-c", CONNECT_SCRIPT],
        cwd=elsewhere,
        env={**clean_env(PREFECT_HOME=str(home)), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        hint = " Prefect's server needs an async driver: sqlite+aiosqlite:///..." if "async driver" in output else ""
        raise CheckFailed(
            f"the server's database code failed with your settings: {last_error(output).rstrip('.')}.{hint}"
        )
    target = folder / DATABASE_FILE
    if not target.is_file():
        made = sorted(str(p.relative_to(root)) for p in root.rglob("*.db"))
        where = f"the database went to {made}" if made else "no database file was written under the folders"
        hint = ""
        if any(p.startswith("current-folder") for p in made):
            hint = ": a relative path counts from the process's current folder; give the absolute path (4 slashes)"
        elif any(p.endswith("prefect.db") for p in made):
            hint = ": prefect.db in PREFECT_HOME is the default, used when no connection URL is set"
        raise CheckFailed(f"{where}{hint}; expected {DATABASE_FILE} in the folder you were given")
    said = next((line for line in output.splitlines() if line.startswith("connected to")), "connected")
    return (
        f"In a fresh process with your settings, the server's database code {said}: "
        f"{target.name} in the folder you were given."
    )


# ---- exercise 2: an accepted client ----


def _grade_client_env(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function of (api_url, auth_string); got {short(answer)}")
    require_signature(answer, ("http://x/api", "u:p"), "your function", "two arguments, api_url and auth_string")
    started = ready_services()
    env = _environment(answer, started.server.api_url, started.auth)
    stored, name, output = _client_run(started, env, "the client")
    if stored is None:
        if "401" in output:
            raise CheckFailed(f"the server refused the client (401 Unauthorized): {_why_refused(env, started.auth)}")
        raise CheckFailed(f"the client process created nothing on the exercise server: {last_error(output)}")
    refused = _refused_without_password(started)
    expect(refused == 401, f"a request without the password was answered {refused}; the course expected 401")
    return (
        f"A fresh client with your settings created the Variable {name} on the server; a request without the "
        f"password is refused ({refused})."
    )


# ---- exercise 3: through the proxy ----


def _grade_proxy_env(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function of (proxy_url, auth_string); got {short(answer)}")
    require_signature(answer, ("http://x", "u:p"), "your function", "two arguments, proxy_url and auth_string")
    started = ready_services()
    env = _environment(answer, started.proxy_root, started.auth)
    before = len(started.proxy.requests())
    stored, name, output = _client_run(started, env, "the client")
    seen = started.proxy.requests()[before:]
    routed = [r for r in seen if r.routed]
    if stored is None:
        if seen and not routed:
            raise CheckFailed(
                f"the proxy received {seen[0].method} {seen[0].path} and routes only {BASE}/...: put the prefix "
                "in PREFECT_API_URL"
            )
        if routed and not any(r.path.startswith(f"{BASE}/api/") for r in routed):
            raise CheckFailed(
                f"the proxy forwarded {routed[0].path}: {BASE} is the UI; the API is at {BASE}/api under the proxy"
            )
        if "401" in output:
            raise CheckFailed(f"the server refused the client (401): {_why_refused(env, started.auth)}")
        reason = "the proxy received no request" if not seen else f"the proxy saw {[r.path for r in seen][:3]}"
        raise CheckFailed(f"the client created nothing on the server ({reason}): {last_error(output)}")
    expect(
        routed,
        f"the client created {name} on the server, but the proxy received none of its requests: it went to the "
        "server directly. Give it the proxy's address, as a client on another machine would have",
    )
    paths = sorted({r.path for r in routed})
    return f"The client reached the server through the proxy ({len(routed)} requests, e.g. {paths[-1]}); made {name}."


# ---- exercise 4: which Dask worker ran each task ----


def _grade_where(answer: Any) -> str:
    expect(callable(answer), f"your answer should be a function of (address, jobs); got {short(answer)}")
    require_signature(answer, ("tcp://x", 1), "your function", "two arguments, address and jobs")
    started = ready_services()
    names = set(started.cluster.worker_names().values())
    since = time.time()
    with quiet_console(logging.CRITICAL):
        said = call_answer(answer, started.cluster.address, JOBS)
    said = require_type(said, list, "your function's value", "['ex15-worker-a', ...]")
    expect(len(said) == JOBS, f"your function returned {len(said)} names for {JOBS} jobs: {short(said)}")
    recorded = started.cluster.tasks_since(since)
    expect(
        recorded,
        f"the exercise cluster's scheduler recorded no task since the check began; your tasks ran elsewhere (they "
        f"said {short(said)}): pass address= to DaskTaskRunner, or it starts a temporary cluster of its own",
    )
    by_scheduler = sorted(record.worker for record in recorded)[-JOBS:]
    expect(
        sorted(said) == sorted(by_scheduler) and set(said) <= names,
        f"your tasks said {short(sorted(said))}; the scheduler recorded {short(by_scheduler)}. Return each task's "
        "Dask worker name: distributed.get_worker().name, inside the task",
    )
    return f"Your {JOBS} tasks ran on {sorted(set(said))}, as the scheduler recorded."


EXERCISES = ExerciseSet(
    pair="15",
    title="Self-hosting and scaling out",
    exercises=[
        Exercise(
            1,
            "where the server keeps its data",
            _grade_database_env,
            hints=[
                "One setting names the database: PREFECT_API_DATABASE_CONNECTION_URL, a SQLAlchemy URL with an async "
                "driver (sqlite+aiosqlite for SQLite, postgresql+asyncpg for PostgreSQL).",
                "f'sqlite+aiosqlite:///{folder / \"team.db\"}': three slashes, then the absolute path (which starts "
                "with its own slash).",
            ],
            solution=[database_env],
            answer=lambda: database_env,
        ),
        Exercise(
            2,
            "an accepted client",
            _grade_client_env,
            hints=[
                "A client needs the server's address and the password: two settings, both read by every Prefect "
                "process from its environment.",
                "{'PREFECT_API_URL': api_url, 'PREFECT_API_AUTH_STRING': auth_string}; the server's own setting is "
                "PREFECT_SERVER_API_AUTH_STRING.",
            ],
            solution=[client_env],
            answer=lambda: client_env,
        ),
        Exercise(
            3,
            "through the proxy",
            _grade_proxy_env,
            hints=[
                "The proxy forwards only paths under /ex15, unchanged; the server serves its API at /ex15/api.",
                "PREFECT_API_URL = f'{proxy_url}/ex15/api', and the password as in exercise 2.",
            ],
            solution=[proxy_env],
            answer=lambda: proxy_env,
        ),
        Exercise(
            4,
            "which Dask worker ran each task",
            _grade_where,
            hints=[
                "A task that returns distributed.get_worker().name; a flow with task_runner=DaskTaskRunner(address="
                "address) that maps it over range(jobs). Define the flow inside your function: the address is known "
                "only then.",
                "@flow(task_runner=DaskTaskRunner(address=address)) def spread(jobs): return [f.result() for f in "
                "worker_name.map(range(jobs))]; then return spread(jobs).",
            ],
            solution=[worker_name, where_did_they_run],
            answer=lambda: where_did_they_run,
        ),
    ],
)
