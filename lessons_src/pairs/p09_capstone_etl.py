"""Plain pandas and matplotlib pieces of the capstone pipeline (pair 09): weather file, climate normals, report."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from lessons_src.demo_api.app import fails_by_rate
from lessons_src.paths import data_dir

WEATHER_CSV = "seattle-weather.csv"
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def weather_csv() -> Path:
    """Return the path of the Seattle daily weather file in the repository's `data/` folder."""
    return data_dir() / WEATHER_CSV


def file_sha256(path: Path | str) -> str:
    """Return the SHA-256 hex digest of a file's bytes (a cache key that changes exactly when the file does)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_weather(path: Path | str | None = None) -> pd.DataFrame:
    """Read the daily weather CSV (Seattle 2012–2015) with `date` parsed as a datetime."""
    return pd.read_csv(path or weather_csv(), parse_dates=["date"], date_format="%Y/%m/%d")


def climate_by_month(weather: pd.DataFrame) -> pd.DataFrame:
    """Return normals per calendar month: mean monthly rain (mm), mean daily max/min (°C), share of rainy days."""
    days = weather.assign(year=weather["date"].dt.year, month=weather["date"].dt.month)
    monthly_rain = days.groupby(["year", "month"])["precipitation"].sum().groupby("month").mean()
    by_month = days.groupby("month")
    normals = pd.DataFrame(
        {
            "precipitation_mm": monthly_rain.round(1),
            "temp_max_c": by_month["temp_max"].mean().round(1),
            "temp_min_c": by_month["temp_min"].mean().round(1),
            "rainy_day_share": by_month["precipitation"].apply(lambda mm: (mm > 0).mean()).round(2),
        }
    ).reset_index()
    normals.insert(1, "month_name", [MONTH_NAMES[m - 1] for m in normals["month"]])
    return normals


def seeded_attempts(pages: Iterable[int], fail_rate: float, seed: int, attempts: int, key_prefix: str) -> dict:
    """Return, per page, the attempt that first succeeds under the demo API's fail_rate and seed, or None if none does.

    The demo API decides each failure from (seed, key, attempt number) alone, so this predicts a run exactly.
    """
    outcome: dict[int, int | None] = {}
    for page in pages:
        key = f"{key_prefix}{page}"
        outcome[page] = next((a for a in range(1, attempts + 1) if not fails_by_rate(fail_rate, seed, key, a)), None)
    return outcome


def plot_orders_vs_rain(monthly: pd.DataFrame, title: str) -> Figure:
    """Draw orders and revenue per month as bars beside the month's normal rainfall as a line (second y axis)."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.6), layout="constrained")
    plt.close(figure)
    labels = list(monthly["month_name"])
    left.bar(labels, monthly["orders"], color="#3a7bd5", label="orders")
    left.set_ylabel("orders (2024)", color="#3a7bd5")
    rain = left.twinx()
    rain.plot(labels, monthly["precipitation_mm"], color="#2e9d5b", marker="o", label="rain normal")
    rain.set_ylabel("normal rain, mm/month (2012–2015)", color="#2e9d5b")
    rain.set_ylim(0, monthly["precipitation_mm"].max() * 1.3)
    left.set_title("Orders per month vs Seattle rain normal")
    right.bar(labels, monthly["revenue"], color="#f0a030")
    right.set_ylabel("revenue (sum of amounts)")
    right.set_title("Revenue per month")
    figure.suptitle(title)
    return figure
