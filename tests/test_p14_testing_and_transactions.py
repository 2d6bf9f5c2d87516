"""Lesson 14's machinery: planted bugs, test folders outside the repository, pytest in subprocesses (now, several at
once, or in the background) read from their JUnit reports, and the figure of background task runs."""

import os
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from lessons_src.pairs import p14_testing_and_transactions as p14
from lessons_src.task_workers import BackgroundRun

PASSING = "def test_one():\n    assert 1 + 1 == 2\n\n\ndef test_two():\n    assert 'a' in 'abc'\n"
FAILING = "def test_good():\n    assert True\n\n\ndef test_bad():\n    assert 2 + 2 == 5\n"


def test_the_tested_module_is_the_file_in_flows():
    assert p14.module_source() == p14.tested_module_path().read_text(encoding="utf-8")
    orders = p14.load_tested_module()
    assert {"order_total", "fetch_order", "orders_total", "request_report"} <= set(vars(orders))


@pytest.mark.parametrize("bug", sorted(p14.PLANTED_BUGS))
def test_every_planted_bug_changes_the_module_once_and_still_compiles(bug):
    original, _ = p14.PLANTED_BUGS[bug]
    source = p14.module_source(bug)
    assert source != p14.module_source() and p14.module_source().count(original) == 1 and original not in source
    compile(source, "orders.py", "exec")


def test_an_unknown_bug_is_refused():
    with pytest.raises(KeyError):
        p14.module_source("no such bug")


def test_folders_are_fresh_and_removed_by_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    folder = p14.fresh_folder("lesson-14-a")
    (folder / "left.txt").write_text("x")
    assert list(p14.fresh_folder("lesson-14-a").iterdir()) == []
    p14.fresh_folder("lesson-14-b")
    p14.fresh_folder("ex14-c")
    assert p14.remove_folders("lesson-14-") == ["lesson-14-a", "lesson-14-b"]
    assert p14.remove_folders("lesson-14-") == [] and (p14.lessons_root() / "ex14-c").is_dir()
    assert p14.remove_folders("ex14-") == ["ex14-c"] and not p14.lessons_root().exists()


def test_a_project_holds_the_module_its_tests_a_pytest_ini_and_an_optional_conftest(tmp_path):
    p14.write_project(tmp_path, {"test_x.py": PASSING}, bug="no rounding", conftest="# conftest\n")
    assert (tmp_path / "orders.py").read_text() == p14.module_source("no rounding")
    assert (tmp_path / "test_x.py").read_text() == PASSING
    assert (tmp_path / "pytest.ini").read_text().startswith("[pytest]")
    assert (tmp_path / "conftest.py").read_text() == "# conftest\n"


def test_the_environment_points_at_the_course_server_or_at_no_server(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    env = p14.pytest_env(tmp_path)
    assert env["PYTHONPATH"] == str(tmp_path) and env["PREFECT_API_URL"] == "http://127.0.0.1:1/api"
    harness = p14.pytest_env(tmp_path, harness=True)
    assert "PREFECT_API_URL" not in harness and harness["PREFECT_HOME"] == str(tmp_path / "prefect_home")
    monkeypatch.delenv("PREFECT_API_URL")
    with pytest.raises(RuntimeError, match="setup"):
        p14.pytest_env(tmp_path)


def test_a_junit_report_gives_each_test_its_outcome_and_seconds(tmp_path):
    (tmp_path / "report.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="t" name="test_ok" time="0.5"/>'
        '<testcase classname="t" name="test_wrong" time="0.1"><failure message="assert 1 == 2"/></testcase>'
        '<testcase classname="t" name="test_broken" time="0"><error message="fixture"/></testcase>'
        '<testcase classname="t" name="test_later" time="0"><skipped message="later"/></testcase>'
        "</testsuite></testsuites>"
    )
    output = "E   assert 1 == 2\nsomething else\n==== 1 failed, 1 passed, 1 skipped, 1 error in 0.62s ===="
    run = p14.read_report(tmp_path, 1, 2.0, output)
    assert run.outcomes == {
        "test_ok": "passed",
        "test_wrong": "failed",
        "test_broken": "error",
        "test_later": "skipped",
    }
    assert run.durations["test_ok"] == 0.5 and not run.passed
    assert run.failed_tests == ["test_wrong", "test_broken"]
    assert run.summary() == "1 failed, 1 passed, 1 skipped, 1 error in 0.62s"
    assert run.failure_lines() == ["E   assert 1 == 2"]


def test_a_run_without_a_report_has_no_outcomes(tmp_path):
    run = p14.read_report(tmp_path, 2, 1.0, "")
    assert run.outcomes == {} and run.summary() == "no output (exit code 2)"


def test_pytest_runs_in_a_subprocess_and_reports_passes_and_failures(course_server, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder, tests in ((good, PASSING), (bad, FAILING)):
        folder.mkdir()
        p14.write_project(folder, {"test_it.py": tests})
    passed = p14.run_pytest(good)
    assert passed.passed and passed.outcomes == {"test_one": "passed", "test_two": "passed"}, passed.output
    on_good, on_bad = p14.run_pytest_many([good, bad])
    assert on_good.passed and not on_bad.passed and on_bad.failed_tests == ["test_bad"]
    assert any("assert (2 + 2) == 5" in line for line in on_bad.failure_lines()), on_bad.output


def test_the_tests_import_the_module_of_their_own_folder(course_server, tmp_path):
    test = f"import orders\n\n\ndef test_it():\n    assert orders.__file__.startswith({str(tmp_path)!r})\n"
    p14.write_project(tmp_path, {"test_where.py": test})
    assert p14.run_pytest(tmp_path).passed


def test_a_background_pytest_run_is_collected_later(course_server, tmp_path):
    p14.write_project(tmp_path, {"test_it.py": FAILING})
    process = p14.start_pytest(tmp_path, "test-p14-background")
    run = process.result(timeout=120)
    assert run.failed_tests == ["test_bad"] and run.seconds > 0 and "1 failed, 1 passed" in run.summary()
    assert process.harness_seconds() is None and not process.running


def test_collecting_a_run_never_started_says_so(tmp_path):
    with pytest.raises(RuntimeError, match="start"):
        p14.PytestProcess(tmp_path, "test-p14-unstarted").result()


def test_the_harness_conftest_starts_prefects_harness_once_per_session():
    assert "prefect_test_harness(server_startup_timeout=" in p14.HARNESS_CONFTEST
    assert 'scope="session"' in p14.HARNESS_CONFTEST and p14.HARNESS_SECONDS_FILE in p14.HARNESS_CONFTEST
    compile(p14.HARNESS_CONFTEST, "conftest.py", "exec")


def _run(offset: float, received: float | None, running: float | None, end: float | None, state: str) -> BackgroundRun:
    zero = datetime(2026, 12, 1, tzinfo=UTC)

    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else zero + timedelta(seconds=seconds)

    return BackgroundRun(
        uuid4(), "make_thumbnail", "make_thumbnail-1", state, at(offset), at(received), at(running), at(end)
    )


def test_background_runs_are_drawn_one_lane_each_with_their_phases():
    runs = [_run(0, 0.1, 0.2, 0.7, "Completed"), _run(0.1, 0.5, 0.7, 1.2, "Completed"), _run(0.2, None, None, None, "")]
    figure = p14.plot_background_runs(runs, "two runs")
    ax = figure.axes[0]
    assert len(ax.get_yticks()) == 2 and ax.get_title() == "two runs"
    assert len(ax.patches) == 6  # queued, received, running: three bars per ended run
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "queued (Scheduled)",
        "received (Pending)",
        "Completed",
    ]


def test_nothing_ended_is_nothing_to_draw():
    with pytest.raises(ValueError, match="Nothing to draw"):
        p14.plot_background_runs([_run(0, None, None, None, "Scheduled")], "none")


def test_pytest_in_the_lesson_never_loads_the_installed_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert p14.pytest_env(tmp_path)["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    assert "--color=no" in p14.pytest_command(tmp_path) and os.sep in p14.pytest_command(tmp_path)[-1]


VARIANT_TESTS = """\
import sys

from prefect.logging import disable_run_logger

import orders


def test_half_off():
    with disable_run_logger():
        assert orders.order_total.fn({"id": 1, "amount": 10.0}, discount=0.5) == 5.0


def test_each_folder_has_its_own_module(monkeypatch):
    monkeypatch.setattr("orders.run_deployment", lambda *a, **k: None)  # a patch by name finds this folder's module
    assert sys.modules["orders"] is orders and orders.run_deployment(1) is None
"""


def test_variants_run_in_one_process_each_with_its_own_planted_bug(course_server, tmp_path):
    outcomes = p14.run_variants(tmp_path, {"test_orders.py": VARIANT_TESTS}, ["discount added", "no rounding"])
    assert outcomes == {"discount added": ["failure", "passed"], "no rounding": ["passed", "passed"]}
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["bug-0", "bug-1"]
