from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.figure import Figure

from lessons_src.plots import assign_lanes, plot_in_flight, plot_measured_vs_ideal, plot_timeline
from lessons_src.runs import TaskRunRecord


def _run(name, start_s, end_s, state="Completed"):
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    return TaskRunRecord(
        name, name, state, origin + timedelta(seconds=start_s), origin + timedelta(seconds=end_s), 1, ()
    )


def test_assign_lanes_never_puts_overlapping_intervals_on_one_lane():
    intervals = [(0, 2), (1, 3), (2, 4), (0.5, 1), (3, 5)]
    lanes = assign_lanes(intervals)
    for i, (a_start, a_end) in enumerate(intervals):
        for j, (b_start, b_end) in enumerate(intervals):
            if i < j and lanes[i] == lanes[j]:
                assert a_end <= b_start or b_end <= a_start
    assert max(lanes) + 1 == 2  # never more than two intervals overlap


def test_assign_lanes_reuses_a_lane_once_it_is_free_and_rejects_reversed_intervals():
    assert assign_lanes([(0, 1), (1, 2), (2, 3)]) == [0, 0, 0]
    with pytest.raises(ValueError, match="ends"):
        assign_lanes([(2, 1)])


def test_measured_vs_ideal_returns_a_figure_with_both_bar_sets():
    figure = plot_measured_vs_ideal(["a", "b"], [1.2, 0.7], [1.0, 0.5], "title")
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["measured", "ideal"]


def test_measured_vs_ideal_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same non-zero length"):
        plot_measured_vs_ideal(["a"], [1.0, 2.0], [1.0], "t")


def test_timeline_draws_one_bar_per_run_on_concurrent_lanes_and_a_limit_line():
    runs = [_run("a", 0, 1), _run("b", 0.2, 1.2, "Failed"), _run("c", 1.0, 2.0)]
    figure = plot_timeline(runs, "timeline", limit=2)
    ax = figure.axes[0]
    assert len(ax.patches) == 3
    lanes = [round(bar.get_y() + bar.get_height() / 2) for bar in ax.patches]
    assert lanes == [0, 1, 0], (
        f"a and b overlap, so they need two lanes; c starts when a ends and reuses lane 0: {lanes}"
    )
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"Completed", "Failed"}
    assert any(text.get_text() == "limit = 2" for text in ax.texts)


def test_timeline_accepts_epoch_seconds_and_rejects_runs_without_times():
    class Request:
        def __init__(self, start, end):
            self.name, self.state, self.start, self.end = "GET", "Completed", start, end

    assert isinstance(plot_timeline([Request(100.0, 100.5), Request(100.1, 100.4)], "requests"), Figure)
    with pytest.raises(ValueError, match="Nothing to draw"):
        plot_timeline([Request(None, None)], "empty")


def test_in_flight_plot_has_a_step_line_and_limit():
    figure = plot_in_flight([10.0, 10.5, 11.0], [1, 2, 0], "in flight", limit=2)
    ax = figure.axes[0]
    assert len(ax.lines) == 2
    with pytest.raises(ValueError):
        plot_in_flight([], [], "empty")


def test_measured_vs_ideal_labels_use_the_value_format_and_in_flight_ticks_are_whole():
    figure = plot_measured_vs_ideal(["a"], [8], [8], "counts", unit="", value_format="%d")
    assert [t.get_text() for t in figure.axes[0].texts] == ["8", "8"]
    ticks = plot_in_flight([0.0, 1.0], [3, 0], "whole").axes[0].get_yticks()
    assert all(float(t).is_integer() for t in ticks)
