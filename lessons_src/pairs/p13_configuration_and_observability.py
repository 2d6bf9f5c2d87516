"""Lesson 13's machinery: profiles kept in the course's own PREFECT_HOME, what a fresh process's settings are, the
log lines and artifacts a run stored, a figure of how late log lines reach the server, and removing by name what
the lesson (`lesson-13-...`) or its exercises (`ex13-...`) created.

A fresh process is the only honest witness of settings: Prefect reads them (and configures logging) when it is
imported, so changing `os.environ` in a running kernel changes nothing that Prefect already read.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from matplotlib.figure import Figure

from lessons_src.paths import course_home
from lessons_src.plots import new_axes
from lessons_src.runs import poll_until
from lessons_src.server import prefect_home
from lessons_src.serving import flows_dir

PREFIX = "lesson-13-"
CLI_TIMEOUT_S = 120.0
# A log line waits for the next batch (PREFECT_LOGGING_TO_API_BATCH_INTERVAL, 2 s), then for the server to store it:
# on 2026-12-01 (2 cores) 0.60-2.05 s in 5 lines of a 2-s run (quiet), 1.24-2.08 s in 15 lines of the lesson's two
# runs (load average 3); the margin is for the request and the database write after the batch leaves.
LOG_STORE_MARGIN_S = 0.5
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor moves of the CLI's spinner
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


# ---- profiles, only ever in the course's PREFECT_HOME ----


def profiles_path() -> Path:
    """Return the course's profiles file, after checking that this process's Prefect reads and writes that one."""
    from prefect.settings import get_current_settings

    path = prefect_home() / "profiles.toml"
    used = get_current_settings().profiles_path
    if used is None or Path(used).resolve() != path.resolve():
        raise RuntimeError(
            f"This kernel's Prefect uses the profiles file {used}, not the course's {path}: is PREFECT_PROFILES_PATH "
            "set in your environment? Unset it and restart the kernel, so the lesson never touches your own profiles."
        )
    return path


def read_profiles_file() -> dict[str, Any]:
    """Return the course's profiles file as TOML data ({} when there is none yet)."""
    import tomllib

    path = profiles_path()
    return tomllib.loads(path.read_text()) if path.exists() else {}


def create_profile(name: str, settings: Mapping[str, str]) -> Path:
    """Add profile `name` with `settings` to the course's profiles file, as `prefect profile create` and
    `prefect -p NAME config set KEY=VALUE ...` do; return the file."""
    from prefect.settings import Profile, load_profiles, save_profiles

    path = profiles_path()
    profiles = load_profiles(include_defaults=False)
    profiles.add_profile(Profile(name=name, settings=dict(settings)))
    save_profiles(profiles)
    return path


def remove_profiles(prefix: str = PREFIX) -> list[str]:
    """Remove every profile whose name starts with `prefix` from the course's profiles file; return their names.

    When one of them is the active profile, no profile stays marked active (Prefect then uses its default).
    """
    from prefect.settings import load_profiles, save_profiles

    if not profiles_path().exists():
        return []
    profiles = load_profiles(include_defaults=False)
    removed = sorted(name for name in profiles.names if name.startswith(prefix))
    for name in removed:
        profiles.remove_profile(name)
    was_active = bool(profiles.active_name and profiles.active_name.startswith(prefix))
    if was_active:
        profiles.set_active(None)
    if removed or was_active:
        save_profiles(profiles)
    return removed


@contextmanager
def profiles_restored() -> Iterator[Path]:
    """Put the course's profiles file back exactly as it was when the block ends, also after an error."""
    path = profiles_path()
    before = path.read_bytes() if path.exists() else None
    try:
        yield path
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)


def learner_profiles_stamp() -> tuple[int, int] | None:
    """Return (size, modification time in ns) of the learner's own ~/.prefect/profiles.toml, or None if absent."""
    path = Path.home() / ".prefect" / "profiles.toml"
    if not path.exists():
        return None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


# ---- fresh processes and the settings they see ----


def fresh_env(settings: Mapping[str, str] | None = None, drop_prefect: bool = False) -> dict[str, str]:
    """Return an environment for a fresh process: this one's, plus `settings`.

    With `drop_prefect`, every PREFECT_* variable of this process is left out except the course's PREFECT_HOME and
    profiles file, so the process finds its server through its profile, as a terminal would.
    """
    env = {k: v for k, v in os.environ.items() if not (drop_prefect and k.startswith("PREFECT_"))}
    env["PREFECT_HOME"] = str(prefect_home())
    env["PREFECT_PROFILES_PATH"] = str(prefect_home() / "profiles.toml")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings or {})
    return env


def prefect_cli(*args: str, env: Mapping[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `prefect ARGS` (as `python -m prefect`) in a new process with `env`, in folder `cwd`; return its result,
    its output without terminal colours."""
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        env=dict(env),
        cwd=cwd or course_home(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, ANSI_ESCAPE.sub("", done.stdout), ANSI_ESCAPE.sub("", done.stderr)
    )


@dataclass(frozen=True)
class SeenSetting:
    """One setting as `prefect config view --show-sources` reported it: its value and the source it came from."""

    name: str
    value: str
    source: str


@dataclass(frozen=True)
class ConfigView:
    """What two fresh processes in one folder reported: `prefect config view` (settings, sources, active profile)
    and the values Prefect's settings object really holds (`used`, None when unset)."""

    profile: str
    settings: dict[str, SeenSetting]
    used: dict[str, str | None]

    def source_of(self, name: str) -> str:
        """Return where `prefect config view` says setting `name` came from ('env', 'prefect.toml', ...)."""
        seen = self.settings.get(name)
        return seen.source if seen else "defaults"


# Prints the values a fresh process's Prefect resolved for the settings named on its command line, as JSON.
SETTINGS_PROBE = (
    "import json, sys; from prefect.settings import get_current_settings; "
    "used = get_current_settings().to_environment_variables(); "
    "print(json.dumps({name: used.get(name) for name in sys.argv[1:]}))"
)


class FreshProcessError(RuntimeError):
    """A fresh process exited with an error; `summary` is the end of what it printed (usually the error's message)."""

    def __init__(self, command: str, returncode: int, output: str) -> None:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith("For further information")]  # pydantic's link
        self.summary = " ".join(lines[-2:]) if lines else "(no output)"
        super().__init__(f"{command} exited {returncode}: {self.summary}")


def _run_together(commands: Mapping[str, list[str]], env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """Run each command in a new process at the same time; return each one's output, or raise FreshProcessError."""
    started = {
        name: subprocess.Popen(
            command, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, command in commands.items()
    }
    outputs = {}
    try:
        for name, process in started.items():
            stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_S)
            if process.returncode != 0:
                shown = " ".join(commands[name][1:3]) + " ..."
                raise FreshProcessError(shown, process.returncode, ANSI_ESCAPE.sub("", stdout + stderr))
            outputs[name] = ANSI_ESCAPE.sub("", stdout)
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return outputs


def settings_seen(folder: Path, env: Mapping[str, str], names: Sequence[str]) -> ConfigView:
    """Run `prefect config view --show-sources -o json` and a probe of settings `names` in `folder`, both with `env`."""
    outputs = _run_together(
        {
            "view": [sys.executable, "-m", "prefect", "config", "view", "--show-sources", "--output", "json"],
            "probe": [sys.executable, "-c", SETTINGS_PROBE, *names],
        },
        env,
        folder,
    )
    report = json.loads(outputs["view"][outputs["view"].index("{") :])
    seen = {s["name"]: SeenSetting(s["name"], s["value"], s["source"]) for s in report["settings"]}
    return ConfigView(report["profile"], seen, json.loads(outputs["probe"].strip().splitlines()[-1]))


def lesson_folder(name: str, prefix: str = PREFIX) -> Path:
    """Return an empty folder `<prefix><name>` in the course home (emptied if an earlier run left it)."""
    folder = course_home() / f"{prefix}{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# ---- a custom logging configuration ----


class OnlyRequestsTo(logging.Filter):
    """A logging filter that keeps only the records whose message mentions `prefix` (e.g. one service's address)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record only if its message mentions the prefix."""
        return self.prefix in record.getMessage()


def write_logging_config(
    path: Path, loggers: Mapping[str, Mapping[str, Any]], filters: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """Write Prefect's own logging configuration with `loggers` added or replaced (and `filters`) to `path` as YAML.

    A file named by PREFECT_LOGGING_CONFIG_PATH replaces Prefect's default entirely, so it starts from that default.
    """
    from prefect.logging.configuration import DEFAULT_LOGGING_SETTINGS_PATH

    config = yaml.safe_load(DEFAULT_LOGGING_SETTINGS_PATH.read_text())
    config["loggers"].update({name: dict(settings) for name, settings in loggers.items()})
    if filters:
        config.setdefault("filters", {}).update({name: dict(settings) for name, settings in filters.items()})
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---- flows run in a fresh process ----


@dataclass(frozen=True)
class FreshRun:
    """A `flows/observed_jobs.py` process: its exit status and output (the run's id is its last line)."""

    label: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def flow_run_id(self) -> UUID | None:
        """The id of the flow run the process printed last, or None if it printed none."""
        lines = self.stdout.strip().splitlines()
        try:
            return UUID(lines[-1].strip()) if lines else None
        except ValueError:
            return None


def observed_flow_runs(
    envs: Mapping[str, Mapping[str, str]], base_url: str, order_ids: Sequence[int], timeout: float = CLI_TIMEOUT_S
) -> dict[str, FreshRun]:
    """Run `flows/observed_jobs.py` once per label in `envs`, all at the same time, each with its environment."""
    script = flows_dir() / "observed_jobs.py"
    started: dict[str, subprocess.Popen[str]] = {}
    try:
        for label, env in envs.items():
            command = [sys.executable, str(script), base_url, label, *map(str, order_ids)]
            started[label] = subprocess.Popen(
                command, env=dict(env), cwd=course_home(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        finished = {}
        for label, process in started.items():
            stdout, stderr = process.communicate(timeout=timeout)
            finished[label] = FreshRun(label, process.returncode, stdout, stderr)
        return finished
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.communicate()


# ---- what the server stored ----


@dataclass(frozen=True)
class StoredLog:
    """One log line the server stored for a run: who logged it, its level, when it was logged and when stored."""

    name: str
    level: int
    message: str
    logged: datetime
    stored: datetime

    @property
    def level_name(self) -> str:
        """The level as a word (DEBUG, INFO, ...)."""
        return LEVEL_NAMES.get(self.level, str(self.level))

    @property
    def delay(self) -> float:
        """Seconds between the moment the line was logged and the moment the server stored it."""
        return (self.stored - self.logged).total_seconds()


def stored_logs(flow_run_id: UUID, timeout: float = 15.0) -> list[StoredLog]:
    """Return the log lines the server stored for a flow run, oldest first, once the run's last line is there.

    The last line is the flow run's own "Finished in state ..." (a task run's has the same words but another logger).
    Log lines reach the server in batches (every PREFECT_LOGGING_TO_API_BATCH_INTERVAL s, 2 s by default) and in
    order, so once the last one is stored, so are all the others.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:

        def read() -> list[StoredLog]:
            logs = client.read_logs(log_filter=log_filter, sort=LogSort.TIMESTAMP_ASC, limit=200)
            return [StoredLog(log.name, log.level, log.message, log.timestamp, log.created) for log in logs]

        return poll_until(
            read,
            lambda lines: any(is_last_line(line) for line in lines),
            timeout,
            lambda lines: f"flow run {flow_run_id}'s last log line is not stored after {timeout:.0f} s; "
            f"{len(lines)} line(s) are",
        )


def is_last_line(line: StoredLog) -> bool:
    """Return True for the line a flow run logs when it ends ("Finished in state ...", from `prefect.flow_runs`)."""
    return line.name == "prefect.flow_runs" and line.message.startswith("Finished in state")


def run_artifacts(flow_run_id: UUID) -> list[Any]:
    """Return the artifacts a flow run created (markdown, table, link, progress...), oldest first.

    The records Prefect keeps for persisted results have no type and are left out.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    artifact_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=artifact_filter, sort=ArtifactSort.CREATED_DESC)
    return [a for a in reversed(artifacts) if a.type is not None]


# ---- a figure ----


def plot_log_delays(lines: Sequence[StoredLog], batch_interval: float, title: str) -> Figure:
    """Draw, for each stored log line, the seconds from being logged to being stored, beside the ideal of zero."""
    if not lines:
        raise ValueError("Nothing to draw: no log lines.")
    figure, ax = new_axes((9.0, 1.2 + 0.28 * len(lines)))
    for lane, line in enumerate(lines):
        ax.barh(lane, max(line.delay, 0.01), color="#3a7bd5", height=0.6)
        ax.text(max(line.delay, 0.0) + 0.03, lane, f"{line.delay:.2f} s", va="center", fontsize=7)
    labels = [f"{line.level_name[:4]} {line.message[:48]}" for line in lines]
    ax.set_yticks(range(len(lines)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="#555555", linewidth=1.5, label="ideal: stored as it is logged (0 s)")
    ax.axvline(batch_interval, color="#d64545", linestyle="--", label=f"batch interval ({batch_interval:g} s)")
    ax.set_xlim(0.0, 1.15 * max(batch_interval, *(line.delay for line in lines)))
    ax.set_xlabel("seconds from logged to stored on the server")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 1.5 / (1.2 + 0.28 * len(lines))), ncol=2, fontsize=8)
    return figure


# ---- removing by name what the lesson or the exercises created ----


def delete_variables(prefix: str = PREFIX) -> list[str]:
    """Delete every Variable whose name starts with `prefix`; return their names."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = sorted(v.name for v in client.read_variables() if v.name.startswith(prefix))
        for name in names:
            client.delete_variable_by_name(name)
    return names


def delete_blocks(prefix: str = PREFIX) -> list[str]:
    """Delete every block document named `prefix...`, then every block type whose slug starts with `prefix`."""
    from prefect.client.orchestration import get_client

    deleted = []
    with get_client(sync_client=True) as client:
        for document in client.read_block_documents(include_secrets=False):
            if document.name and document.name.startswith(prefix):
                client.delete_block_document(document.id)
                slug = document.block_type.slug if document.block_type else "?"
                deleted.append(f"block {slug}/{document.name}")
        for block_type in client.read_block_types():
            if block_type.slug.startswith(prefix):
                for document in client.read_block_documents_by_type(block_type.slug, include_secrets=False):
                    client.delete_block_document(document.id)
                    deleted.append(f"block {block_type.slug}/{document.name}")
                client.delete_block_type(block_type.id)
                deleted.append(f"block type {block_type.slug}")
    return sorted(set(deleted))


def delete_artifacts(prefix: str = PREFIX) -> int:
    """Delete every artifact whose key starts with `prefix` (every version); return how many."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    artifact_filter = ArtifactFilter(key=ArtifactFilterKey(like_=f"{prefix}%"))
    deleted = 0
    with get_client(sync_client=True) as client:
        while batch := client.read_artifacts(artifact_filter=artifact_filter, limit=200):
            for artifact in batch:
                client.delete_artifact(artifact.id)
                deleted += 1
    return deleted


def clean_up(prefix: str = PREFIX) -> list[str]:
    """Remove what the lesson or the exercises made under `prefix`: profiles, variables, blocks, artifacts, folders."""
    removed = [f"profile {name}" for name in remove_profiles(prefix)]
    removed += [f"variable {name}" for name in delete_variables(prefix)]
    removed += delete_blocks(prefix)
    artifacts = delete_artifacts(prefix)
    if artifacts:
        removed.append(f"{artifacts} artifact(s) keyed {prefix}...")
    for folder in sorted(course_home().glob(f"{prefix}*")):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(f"folder {folder.name}")
    return removed
