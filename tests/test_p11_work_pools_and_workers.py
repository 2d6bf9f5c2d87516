"""Lesson 11's machinery: the running server's late-run setting, and the figure of each run's phases."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from lessons_src.pairs.p11_work_pools_and_workers import late_after_seconds, plot_run_phases, server_settings
from lessons_src.server import SERVER_SETTINGS
from lessons_src.workers import PoolRun

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def _run(name: str, pending: float | None, running: float | None, end: float | None, state: str) -> PoolRun:
    return PoolRun(uuid4(), name, state, "p", "default", "w", T0, _at(pending), _at(running), _at(end), {}, None)


def test_the_course_servers_late_run_setting_is_what_the_server_reports(course_server):
    after = float(
        SERVER_SETTINGS["PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS"].removeprefix("PT").removesuffix("S")
    )
    loop = float(SERVER_SETTINGS["PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS"])
    assert late_after_seconds() == after + loop == 6.0
    assert server_settings()["server"]["services"]["late_runs"]["enabled"] is True


def test_each_run_gets_a_lane_with_its_three_phases():
    runs = [
        _run("b", 1.0, 4.0, 5.0, "Completed"),
        _run("a", 0.5, 3.0, 3.5, "Crashed"),
        _run("c", None, None, None, "Late"),
    ]
    figure = plot_run_phases(runs, "t")
    ax = figure.axes[0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["b (w)", "a (w)"]  # the unfinished run is left out
    widths = sorted(round(bar.get_width(), 2) for bar in ax.patches)
    assert widths == [0.5, 0.5, 1.0, 1.0, 2.5, 3.0], widths  # waiting, starting and running of both runs
    assert "the first run was created" in ax.get_xlabel()


def test_a_run_cancelled_before_any_worker_took_it_is_one_waiting_bar():
    figure = plot_run_phases([_run("x", None, None, 0.2, "Cancelled")], "t", origin=T0, origin_label="the trigger")
    widths = [round(bar.get_width(), 2) for bar in figure.axes[0].patches]
    assert widths == [0.2, 0.02, 0.02] and figure.axes[0].get_xlabel() == "seconds since the trigger"


def test_nothing_to_draw_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="none of the runs has ended"):
        plot_run_phases([_run("c", None, None, None, "Late")], "t")
