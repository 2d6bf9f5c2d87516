"""Background processes a notebook starts and stops: serve processes (08), workers (11) and what later pairs add.

Each runs in its own process group with its output in a log file in the course home. It is stopped by `stop()`,
by leaving its `with` block, by `stop_all()`, or at the latest when the Python process that started it exits
(atexit), together with every process it started (a worker's or serve process's flow runs).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from lessons_src.paths import course_home, repo_root
from lessons_src.processes import detached, log_tail, pid_alive, terminate

# How flow-run processes show in their command line: `python -m prefect.engine` for a flow loaded from its file,
# multiprocessing's `spawn_main` when a serve process's runner holds the flow object itself
FLOW_RUN_COMMANDS = ("prefect.engine", "spawn_main")
_STARTED: list[BackgroundProcess] = []


def _sigint_as_default() -> None:
    """Undo an inherited 'ignore SIGINT' (a shell's `&` sets it), which Prefect's worker needs to stop on SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class BackgroundProcess:
    """A command running in the background; stopping it also stops every process it started."""

    def __init__(self, command: list[str], label: str, env: dict[str, str] | None = None) -> None:
        self.command = command
        self.env = env
        self.log_path: Path = course_home() / f"{label}.log"
        self.started_at: datetime | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> BackgroundProcess:
        """Start the process (returns at once)."""
        self.started_at = datetime.now(UTC)
        extra = {"preexec_fn": _sigint_as_default} if os.name == "posix" else {}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=repo_root(),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **detached(),
                **extra,
            )
        _STARTED.append(self)
        return self

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def flow_run_pids(self) -> set[int]:
        """Return the process ids of the flow runs this process (a serve process, a worker) is executing now."""
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
        """Stop it and what it started (SIGTERM, then SIGKILL after `grace` s); return its exit status."""
        if self.process is None:
            return None
        terminate(self.process, grace=grace)
        return self.process.returncode

    def log(self, lines: int = 15) -> str:
        """Return the last lines the process printed."""
        return log_tail(self.log_path, lines)

    def exited_error(self, what: str) -> RuntimeError:
        """Return the error to raise when the process exited while `what` was awaited, with its last log lines."""
        code = self.process.returncode if self.process else None
        return RuntimeError(f"The {what} exited (code {code}). Last lines of {self.log_path}:\n{self.log()}")

    def __enter__(self) -> BackgroundProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def running_processes(kind: type[BackgroundProcess] = BackgroundProcess) -> list[BackgroundProcess]:
    """Return the background processes of `kind` started from this Python process that are still alive."""
    return [p for p in _STARTED if isinstance(p, kind) and (p.running or (p.pid and pid_alive(p.pid)))]


def stop_all(kind: type[BackgroundProcess] = BackgroundProcess) -> None:
    """Stop every background process of `kind` started from this Python process."""
    for process in _STARTED:
        if isinstance(process, kind):
            process.stop()


atexit.register(stop_all)
