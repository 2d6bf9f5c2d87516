"""Learner progress: each exercise check's latest verdict, kept in the learner's course home, and a class view of many.

Only verdicts are kept (the status, how many attempts, when): never the learner's code, answers or the check's
message, so an instructor's class view reads nothing a learner wrote.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from lessons_src.paths import course_home

FILE_NAME = "progress.json"
STUCK_AFTER = 3  # failed checks in a row on one exercise before the class view calls a learner stuck there
MARKS = {"passed": "✅", "failed": "❌", "unsolved": "⏳", "course-problem": "⚠️"}


@dataclass
class Verdict:
    """The latest verdict on one exercise, with how many checks the learner ran and how many failed in a row."""

    pair: str
    exercise: int
    title: str
    status: str
    attempts: int
    failed_in_a_row: int
    first_checked: str
    last_checked: str

    @property
    def key(self) -> str:
        """Return the exercise as 'pair.number', e.g. '01.3'."""
        return f"{self.pair}.{self.exercise}"


@dataclass
class Progress:
    """One learner's verdicts, keyed 'pair.number'."""

    learner: str
    verdicts: dict[str, Verdict]


def learner_name() -> str:
    """Return who this learner is: their JupyterHub user on a hub, else their login name."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def progress_file(home: Path | None = None) -> Path:
    """Return the progress file of a course home (this learner's by default)."""
    return (home or course_home()) / FILE_NAME


def read_progress(home: Path | None = None) -> Progress:
    """Return the progress kept in a course home; none yet (or an unreadable file) is an empty record."""
    path = progress_file(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        verdicts = {key: Verdict(**value) for key, value in data["verdicts"].items()}
        return Progress(data["learner"], verdicts)
    except (OSError, ValueError, KeyError, TypeError):
        return Progress(learner_name(), {})


def record_verdict(pair: str, exercise: int, title: str, status: str, home: Path | None = None) -> Verdict:
    """Record the latest verdict of one check in the learner's course home and return it."""
    if status not in MARKS:
        raise ValueError(f"unknown verdict {status!r}; one of {', '.join(MARKS)}")
    progress = read_progress(home)
    now = datetime.now(UTC).isoformat(timespec="microseconds")  # orders checks made within one second
    key = f"{pair}.{exercise}"
    before = progress.verdicts.get(key)
    failed_in_a_row = (before.failed_in_a_row if before else 0) + 1 if status == "failed" else 0
    verdict = Verdict(
        pair=pair,
        exercise=exercise,
        title=title,
        status=status,
        attempts=(before.attempts if before else 0) + (status != "unsolved"),
        failed_in_a_row=failed_in_a_row,
        first_checked=before.first_checked if before else now,
        last_checked=now,
    )
    progress.verdicts[key] = verdict
    path = progress_file(home)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    payload = {"learner": progress.learner, "verdicts": {k: asdict(v) for k, v in progress.verdicts.items()}}
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(path)  # atomic: a reader never sees half a file
    return verdict


def _ordered(verdicts: Iterable[Verdict]) -> list[Verdict]:
    return sorted(verdicts, key=lambda v: (v.pair, v.exercise))


def learner_table(progress: Progress) -> str:
    """Return one learner's progress as a table: one row per exercise checked."""
    if not progress.verdicts:
        return f"{progress.learner}: no exercise checked yet."
    rows = [
        f"Progress of {progress.learner}",
        "| Exercise | Title | Verdict | Checks | Last checked (UTC) |",
        "|---|---|---|---|---|",
    ]
    for verdict in _ordered(progress.verdicts.values()):
        rows.append(
            f"| {verdict.key} | {verdict.title} | {MARKS[verdict.status]} {verdict.status} | {verdict.attempts} "
            f"| {verdict.last_checked.replace('T', ' ')[:16]} |"
        )
    passed = sum(v.status == "passed" for v in progress.verdicts.values())
    rows.append(f"\n{passed} of {len(progress.verdicts)} exercises checked have passed.")
    return "\n".join(rows)


def current_exercise(progress: Progress) -> Verdict | None:
    """Return the exercise a learner checked last."""
    return max(progress.verdicts.values(), key=lambda v: v.last_checked, default=None)


def class_view(learners: Iterable[Progress]) -> str:
    """Return the class at a glance: per learner what passed and where they are; per exercise who is stuck."""
    learners = sorted(learners, key=lambda p: p.learner)
    if not learners:
        return "No learner has checked an exercise yet."
    rows = ["| Learner | Passed | Now on | Verdict there |", "|---|---|---|---|"]
    stuck: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    for progress in learners:
        now = current_exercise(progress)
        passed = sum(v.status == "passed" for v in progress.verdicts.values())
        where = f"{now.key} {now.title}" if now else "-"
        status = f"{MARKS[now.status]} {now.status}" if now else "-"
        rows.append(f"| {progress.learner} | {passed} | {where} | {status} |")
        for verdict in progress.verdicts.values():
            titles[verdict.key] = verdict.title
            if verdict.status == "failed" and verdict.failed_in_a_row >= STUCK_AFTER:
                stuck.setdefault(verdict.key, []).append(progress.learner)
    lines = [f"Class of {len(learners)} learners", *rows]
    if stuck:
        lines.append(f"\nStuck ({STUCK_AFTER} or more failed checks in a row):")
        for key in sorted(stuck, key=lambda k: (-len(stuck[k]), k)):
            lines.append(f"- {key} {titles[key]}: {len(stuck[key])} ({', '.join(stuck[key])})")
    else:
        lines.append(f"\nNobody is stuck ({STUCK_AFTER} or more failed checks in a row on one exercise).")
    return "\n".join(lines)


def find_homes(patterns: Iterable[str]) -> list[Path]:
    """Return the course homes that hold a progress file, matched by glob patterns such as '/home/*/course/.course'."""
    homes: set[Path] = set()
    for pattern in patterns:
        anchor = Path(pattern).anchor or "."
        relative = str(Path(pattern).relative_to(anchor)) if Path(pattern).is_absolute() else pattern
        for path in Path(anchor).glob(relative):
            if progress_file(path).is_file():
                homes.add(path)
    return sorted(homes)
