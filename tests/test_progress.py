"""Learner progress: a check records its verdict (only the verdict) in the learner's course home, `progress` prints
it, and the class view finds every learner's home, says where each one is and who is stuck where."""

from __future__ import annotations

import json

import pytest

from lessons_src import progress
from lessons_src.checks import Exercise, ExerciseSet, expect
from lessons_src.cli import main
from lessons_src.paths import course_home_at


def _grade(answer: int) -> str:
    expect(answer == 42, f"expected 42, got {answer}")
    return "right"


def _exercises() -> ExerciseSet:
    return ExerciseSet("99", "Practice", [Exercise(1, "The answer", _grade, ["think"], [], lambda: 42)])


@pytest.fixture
def home(tmp_path, monkeypatch, no_course_server):
    """A course home of this test's own, for a learner called ada, whose checks need no server."""
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    with course_home_at(tmp_path / "ada") as path:
        yield path


def test_a_check_records_its_latest_verdict_and_counts_failures_in_a_row(home, capsys):
    ex = _exercises()
    for answer in (41, 40, 39):
        ex.check(1, answer)
    verdict = progress.read_progress().verdicts["99.1"]
    assert (verdict.status, verdict.attempts, verdict.failed_in_a_row) == ("failed", 3, 3)
    ex.check(1, 42)
    verdict = progress.read_progress().verdicts["99.1"]
    assert (verdict.status, verdict.attempts, verdict.failed_in_a_row) == ("passed", 4, 0)
    assert verdict.first_checked <= verdict.last_checked


def test_only_verdicts_are_kept_never_the_answer_or_the_message(home, capsys):
    _exercises().check(1, 31337)
    stored = progress.progress_file().read_text()
    assert "31337" not in stored and "expected 42" not in stored, stored
    assert json.loads(stored)["learner"] == "ada"


def test_evaluate_alone_records_nothing(home):
    _exercises().evaluate(1, 41)
    assert not progress.progress_file().exists()


def test_an_unsolved_check_is_no_attempt(home, capsys):
    from lessons_src.checks import TODO

    _exercises().check(1, TODO)
    verdict = progress.read_progress().verdicts["99.1"]
    assert (verdict.status, verdict.attempts) == ("unsolved", 0)


def test_an_unreadable_progress_file_starts_afresh_instead_of_breaking_checks(home, capsys):
    progress.progress_file().write_text("{not json")
    assert _exercises().check(1, 42)
    assert progress.read_progress().verdicts["99.1"].status == "passed"


def test_an_unknown_verdict_is_refused(home):
    with pytest.raises(ValueError, match="unknown verdict 'maybe'"):
        progress.record_verdict("99", 1, "The answer", "maybe")


def test_the_progress_command_prints_this_learners_table(home, capsys):
    assert main(["progress"]) == 0
    assert "ada: no exercise checked yet." in capsys.readouterr().out
    progress.record_verdict("02", 3, "Backoff", "failed")
    progress.record_verdict("01", 1, "Your first flow", "passed")
    assert main(["progress"]) == 0
    out = capsys.readouterr().out
    first, second = "| 01.1 | Your first flow | ✅ passed | 1 |", "| 02.3 | Backoff | ❌ failed | 1 |"
    assert first in out and second in out and out.index(first) < out.index(second), out
    assert "1 of 2 exercises checked have passed." in out


def _learner(root, name: str, verdicts: list[tuple[str, int, str, str]]) -> None:
    with course_home_at(root / name / ".course"):
        for pair, number, title, status in verdicts:
            progress.record_verdict(pair, number, title, status)


def test_the_class_view_collects_every_learner_and_names_who_is_stuck_where(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    _learner(tmp_path, "ada", [("01", 1, "First flow", "passed"), ("01", 2, "Tasks", "passed")])
    monkeypatch.setenv("JUPYTERHUB_USER", "bo")
    _learner(tmp_path, "bo", [("01", 1, "First flow", "passed")] + [("01", 2, "Tasks", "failed")] * 3)
    monkeypatch.setenv("JUPYTERHUB_USER", "cy")
    _learner(tmp_path, "cy", [("01", 2, "Tasks", "failed")] * 2)  # two failures: not stuck yet
    (tmp_path / "dee" / ".course").mkdir(parents=True)  # a learner who never ran a check
    assert main(["progress", "--class", str(tmp_path / "*" / ".course")]) == 0
    out = capsys.readouterr().out
    assert "Class of 3 learners" in out, out
    assert "| ada | 2 | 01.2 Tasks | ✅ passed |" in out, out
    assert "| bo | 1 | 01.2 Tasks | ❌ failed |" in out, out
    assert "- 01.2 Tasks: 1 (bo)" in out and "cy)" not in out, out


def test_the_class_view_says_so_when_no_home_matches(tmp_path, capsys):
    assert main(["progress", "--class", str(tmp_path / "*" / ".course")]) == 1
    assert "No course home with a progress.json matches" in capsys.readouterr().err
