"""The capstone's pandas helpers read the weather file correctly and predict the demo API's seeded failures."""

from lessons_src.demo_api.app import fails_by_rate
from lessons_src.pairs.p09_capstone_etl import (
    climate_by_month,
    file_sha256,
    plot_orders_vs_rain,
    read_weather,
    seeded_attempts,
)


def test_weather_file_has_four_years_of_days():
    weather = read_weather()
    assert len(weather) == 1461 and weather["date"].is_unique
    assert list(weather.columns) == ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"]
    assert weather["precipitation"].ge(0).all() and (weather["temp_max"] >= weather["temp_min"]).all()


def test_climate_normals_have_one_row_per_month():
    normals = climate_by_month(read_weather())
    assert list(normals["month"]) == list(range(1, 13)) and normals["month_name"].iloc[0] == "Jan"
    assert (
        normals.loc[normals["month"] == 7, "precipitation_mm"].item()
        < normals.loc[normals["month"] == 11, "precipitation_mm"].item()
    )  # Seattle summers are dry, Novembers wet


def test_seeded_attempts_match_the_api_rule():
    outcome = seeded_attempts(range(1, 6), 0.4, 40, 3, "orders-page-")
    for page, attempt in outcome.items():
        draws = [fails_by_rate(0.4, 40, f"orders-page-{page}", a) for a in (1, 2, 3)]
        assert attempt == (draws.index(False) + 1 if False in draws else None)
    assert outcome[5] is None


def test_file_hash_changes_with_content(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("a\n1\n")
    first = file_sha256(path)
    path.write_text("a\n2\n")
    assert file_sha256(path) != first and len(first) == 64


def test_report_plot_has_two_panels():
    import pandas as pd

    monthly = pd.DataFrame(
        {
            "month": [1, 2],
            "month_name": ["Jan", "Feb"],
            "orders": [3, 4],
            "revenue": [10.0, 20.0],
            "precipitation_mm": [100.0, 90.0],
        }
    )
    figure = plot_orders_vs_rain(monthly, "test")
    assert len(figure.axes) == 3  # orders, its rain twin, revenue
