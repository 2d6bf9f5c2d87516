"""Time a trivial flow in its own Python process, against a temporary server or a running one (pair 10)."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lessons_src.paths import course_home
from lessons_src.processes import detached, terminate

# What a learner's `python my_flow.py` does: import Prefect, run one flow, print how long each part took.
TRIVIAL_FLOW = """
import json, time
started = time.perf_counter()
from prefect import flow

@flow
def hello() -> str:
    return "hello"

imported = time.perf_counter()
result = hello()
print(json.dumps({"result": result, "import_s": imported - started, "flow_s": time.perf_counter() - imported}))
"""

NOISE_MARKERS = ("Traceback", "ERROR", "WARNING", "Error:", "database is locked")
# Prefect waits 20 s by default for a temporary server to answer; on a busy 2-core machine a fresh one can need more.
TEMPORARY_SERVER_TIMEOUT_S = 90


@dataclass(frozen=True)
class ScriptResult:
    """What one run of the trivial flow's process did: its wall time, its phases, and what it printed."""

    label: str
    seconds: float
    import_seconds: float | None
    flow_seconds: float | None
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        """The non-empty lines the process wrote to stderr (Prefect's console log goes there)."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    @property
    def noise(self) -> list[str]:
        """The stderr lines that look like trouble: warnings, errors, tracebacks, "database is locked"."""
        return [line for line in self.stderr_lines if any(marker in line for marker in NOISE_MARKERS)]


class FlowScript:
    """The trivial flow running in its own process, started now and collected later; its files live in `folder`."""

    def __init__(self, label: str, process: subprocess.Popen, folder: Path, started: float) -> None:
        self.label = label
        self.process = process
        self.folder = folder
        self.started = started
        self.finished: float | None = None
        self._waiter = threading.Thread(target=self._note_exit, daemon=True)
        self._waiter.start()
        atexit.register(self.stop)  # a kernel that exits before collect() leaves no process or files behind

    def _note_exit(self) -> None:
        self.process.wait()
        self.finished = time.time()

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process.poll() is None

    def collect(self, timeout: float = 120.0) -> ScriptResult:
        """Wait up to `timeout` s for the process to exit and return what it did; it never outlives this call."""
        try:
            self.process.wait(timeout=timeout)
            self._waiter.join(timeout=5.0)
            return self._result()
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"the {self.label} run did not finish within {timeout:g} s and was stopped. "
                f"The end of its stderr:\n{self._read('stderr.txt')[-2000:]}"
            ) from None
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the process and anything it started (a temporary server), delete its files; harmless to repeat."""
        terminate(self.process, grace=5.0)  # the whole process group, also after the script itself exited
        shutil.rmtree(self.folder, ignore_errors=True)
        atexit.unregister(self.stop)

    def _read(self, name: str) -> str:
        try:
            return (self.folder / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _result(self) -> ScriptResult:
        stdout = self._read("stdout.txt")
        report = next((line for line in reversed(stdout.splitlines()) if line.startswith("{")), None)
        phases = json.loads(report) if report else {}
        return ScriptResult(
            label=self.label,
            seconds=(self.finished or time.time()) - self.started,
            import_seconds=phases.get("import_s"),
            flow_seconds=phases.get("flow_s"),
            returncode=self.process.returncode,
            stdout=stdout,
            stderr=self._read("stderr.txt"),
        )


def script_environment(api_url: str | None, prefect_home: Path) -> dict[str, str]:
    """Return this process's environment for the script: a server's API URL, or none (a temporary server)."""
    env = {name: value for name, value in os.environ.items() if name != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(prefect_home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # as on the course server: no telemetry
    if api_url is None:
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = str(TEMPORARY_SERVER_TIMEOUT_S)
    else:
        env["PREFECT_API_URL"] = api_url
    return env


def start_flow_script(label: str, api_url: str | None = None) -> FlowScript:
    """Start the trivial flow in a new process: on `api_url`'s server, or without one on a fresh PREFECT_HOME."""
    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise ValueError(f"api_url should look like http://127.0.0.1:4200/api, got {api_url!r}; or pass None")
    if api_url is not None and not os.environ.get("PREFECT_HOME"):
        raise RuntimeError("PREFECT_HOME is not set in this process: run `setup()` first")
    folder = Path(tempfile.mkdtemp(prefix="flow-script-", dir=course_home()))
    prefect_home = Path(os.environ["PREFECT_HOME"]) if api_url else folder / "prefect_home"
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        started = time.time()
        process = subprocess.Popen(
            [sys.executable, "-c", TRIVIAL_FLOW],
            env=script_environment(api_url, prefect_home),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=folder,
            **detached(),
        )
    return FlowScript(label, process, folder, started)
