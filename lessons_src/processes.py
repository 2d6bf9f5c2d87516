"""Background processes the course starts (Prefect server, demo API): liveness, stopping, logs and a start lock."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class ServiceStartError(RuntimeError):
    """A background service exited at start or never answered; the message ends with its log's last lines."""


def pid_alive(pid: int) -> bool:
    """Return True for a live process (a finished one waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def terminate(target: int | subprocess.Popen, grace: float = 10.0) -> None:
    """Send SIGTERM to the process group led by `target`, then SIGKILL if it is still alive after `grace` seconds.

    Pass the `Popen` when you hold it: its exit status is then kept (`returncode`, e.g. -15 for SIGTERM). A bare pid
    is reaped here when it is this process's child, so it does not linger as a zombie.
    """
    process = target if isinstance(target, subprocess.Popen) else None
    pid = process.pid if process else int(target)

    def alive() -> bool:
        if process is not None:
            return process.poll() is None
        try:
            os.waitpid(pid, os.WNOHANG)  # reap a child whose Popen this process no longer holds
        except ChildProcessError:
            pass
        return pid_alive(pid)

    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        alive()
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive():
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process is not None:
        process.wait()


def log_tail(path: Path, lines: int = 15) -> str:
    """Return the last `lines` lines of a log file, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


@contextmanager
def start_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`, so two kernels starting the same service at once share one instance."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def start_service(
    command: Sequence[str],
    log_path: Path,
    is_ready: Callable[[], bool],
    timeout: float,
    env: dict[str, str] | None = None,
    poll_seconds: float = 0.05,
) -> subprocess.Popen:
    """Start `command` in its own session, logging to `log_path`, and return it once `is_ready()` is true."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceStartError(
                f"it exited at start (code {process.returncode}). Last lines of {log_path}:\n{log_tail(log_path)}"
            )
        if is_ready():
            return process
        time.sleep(poll_seconds)
    terminate(process.pid)
    raise ServiceStartError(f"it did not answer within {timeout:g} s. Last lines of {log_path}:\n{log_tail(log_path)}")
