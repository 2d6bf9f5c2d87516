"""When a schedule fires, computed by the Prefect server's own code: how graders compare schedules by what they do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lessons_src.checks import run_coroutine

# A leap year from 1 January: every weekday, both daylight-saving changes of Europe and 29 February.
WINDOW_START = datetime(2028, 1, 1, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=366)


def fire_times(schedule: Any, start: datetime = WINDOW_START, end: datetime = WINDOW_END) -> list[datetime]:
    """Return when a schedule fires between `start` and `end` (at most 1000 times), computed by the server's own code.

    The server's scheduler creates runs from `prefect.server.schemas.schedules` (its `_get_dates_generator`); a
    schedule read back through the client is converted to that model, so `'0 9 * * MON-FRI'` and `'0 9 * * 1-5'`,
    or `Interval(21600)` and `Interval(timedelta(hours=6))`, give the same times.
    """
    from prefect.server.schemas import schedules as server_schedules

    kind = getattr(server_schedules, type(schedule).__name__)
    server_schedule = kind.model_validate(schedule.model_dump())
    dates = run_coroutine(server_schedule.get_dates(n=1000, start=start, end=end))
    return [datetime.fromtimestamp(date.timestamp(), UTC) for date in dates]
