"""Background processes the course starts (Prefect server, demo API): their files, ports, liveness and stopping."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
from filelock import FileLock, Timeout

Record = TypeVar("Record")


class ServiceStartError(RuntimeError):
    """A background service exited at start or never answered; the message ends with its log's last lines."""


@dataclass(frozen=True)
class ServiceFiles:
    """Where the background service `name` keeps its record (a dataclass as JSON), its log and its start lock."""

    folder: Path
    name: str

    @property
    def state(self) -> Path:
        """The JSON file that records which process runs the service and where."""
        return self.folder / f"{self.name}.json"

    @property
    def log(self) -> Path:
        """Where the service's output goes."""
        return self.folder / f"{self.name}.log"

    @property
    def lock(self) -> Path:
        """The file `start_lock` holds while one process starts the service."""
        return self.folder / f"{self.name}.lock"

    def read(self, kind: type[Record]) -> Record | None:
        """Return the record as a `kind`, or None when there is none or it cannot be read as one."""
        try:
            return kind(**json.loads(self.state.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def write(self, record: Any) -> None:
        """Record a started service (a dataclass instance)."""
        self.state.write_text(json.dumps(asdict(record)))

    def forget(self) -> None:
        """Remove the record (the service was stopped, or the record is stale)."""
        self.state.unlink(missing_ok=True)


def port_is_free(host: str, port: int) -> bool:
    """Return True when nothing listens on `port` of `host`, so a service can bind it now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port the system says is free on `host` now (another process may still take it before you bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def detached() -> dict[str, Any]:
    """Return Popen arguments that start a process in its own group, so a notebook's Ctrl+C or exit spares it."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def pid_alive(pid: int) -> bool:
    """Return True for a live process (a finished one waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def process_runs(pid: int, *words: str) -> bool:
    """Return True when `pid` is alive and its command line holds every one of `words` (it is still our process)."""
    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline())
        return process.status() != psutil.STATUS_ZOMBIE and all(word in command for word in words)
    except psutil.Error:
        return False


def listens_on(pid: int, port: int) -> bool:
    """Return True when process `pid` (or one it started) accepts connections on `port`: it is the one that answers."""
    unreadable = False
    for member in _process_tree(pid):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in member.net_connections("inet")):
                return True
        except psutil.AccessDenied:  # some systems hide another process's sockets: then we cannot tell
            unreadable = True
        except psutil.Error:
            continue
    return unreadable


def _process_tree(pid: int) -> list[psutil.Process]:
    """Return process `pid` and its descendants, and on POSIX whatever still runs in its process group."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        found[pid] = root
        found.update((child.pid, child) for child in root.children(recursive=True))
    group_of = getattr(os, "getpgid", None)  # POSIX: a child whose parent exited stays in the group it started in
    if group_of is not None:
        for other in psutil.process_iter():
            with contextlib.suppress(OSError, psutil.Error):
                if other.pid not in found and group_of(other.pid) == pid:
                    found[other.pid] = other
    return list(found.values())


def _still_running(member: psutil.Process, process: subprocess.Popen | None) -> bool:
    """Return True while `member` runs; reap it when it is a finished child of this process."""
    if process is not None and member.pid == process.pid:
        return process.poll() is None  # Popen reaps its own child and keeps the exit status
    try:
        if member.status() != psutil.STATUS_ZOMBIE:
            return member.is_running()
        with contextlib.suppress(psutil.Error, ChildProcessError):
            member.wait(timeout=0)  # reaps it when it is this process's child
        return False
    except psutil.NoSuchProcess:
        return False


def terminate(target: int | subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process and everything it started: terminate, then kill what still runs after `grace` seconds.

    Pass the `Popen` when you hold it: its exit status is then kept (`returncode`; on Linux and macOS -15 after
    SIGTERM). A bare pid is reaped here when it is this process's child, so it does not linger as a zombie.
    """
    process = target if isinstance(target, subprocess.Popen) else None
    pid = process.pid if process is not None else int(target)
    tree = _process_tree(pid)
    for member in tree:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    deadline = time.monotonic() + grace
    while any(_still_running(member, process) for member in tree):
        if time.monotonic() > deadline:
            for member in tree:
                with contextlib.suppress(psutil.Error):
                    member.kill()
            break
        time.sleep(0.05)
    if process is not None:
        process.wait()
    else:
        for member in tree:
            _still_running(member, None)  # reap what the kill ended


def log_tail(path: Path, lines: int = 15) -> str:
    """Return the last `lines` lines of a log file, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


PROGRESS_EVERY_S = 5.0  # how often a long wait says it is still waiting


@contextmanager
def start_lock(path: Path, waiting: Callable[[float], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path`, so two kernels starting the same service at once share one instance.

    While another process holds it, `waiting(seconds waited)` is called every few seconds.
    """
    lock = FileLock(path)
    started = time.monotonic()
    patience = 0.0  # say at once that another process holds it, then every few seconds
    while True:
        try:
            lock.acquire(timeout=patience if waiting else -1)
            break
        except Timeout:
            waiting(time.monotonic() - started)
            patience = PROGRESS_EVERY_S
    try:
        yield
    finally:
        lock.release()


def start_service(
    command: Sequence[str],
    log_path: Path,
    is_ready: Callable[[int], bool],
    timeout: float,
    env: dict[str, str] | None = None,
    poll_seconds: float = 0.05,
    waiting: Callable[[float], None] | None = None,
) -> subprocess.Popen:
    """Start `command` in its own process group, logging to `log_path`, and return it once `is_ready(its pid)`.

    While it is not ready, `waiting(seconds waited)` is called every few seconds.
    """
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **detached(),
        )
    started = time.monotonic()
    next_word = started + PROGRESS_EVERY_S
    while time.monotonic() < started + timeout:
        if process.poll() is not None:
            raise ServiceStartError(
                f"it exited at start (code {process.returncode}). Last lines of {log_path}:\n{log_tail(log_path)}"
            )
        if is_ready(process.pid):
            return process
        if waiting and time.monotonic() >= next_word:
            waiting(time.monotonic() - started)
            next_word += PROGRESS_EVERY_S
        time.sleep(poll_seconds)
    terminate(process.pid)
    raise ServiceStartError(f"it did not answer within {timeout:g} s. Last lines of {log_path}:\n{log_tail(log_path)}")
