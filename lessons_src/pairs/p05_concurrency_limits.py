"""Create, inspect and remove the course's concurrency limits and variables by name, idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import ConcurrencyLimit
from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

TAG_PREFIX = "tag:"  # Prefect 3 stores a tag limit as a global concurrency limit named "tag:<tag>"


def ensure_limit(
    name: str, limit: int, slot_decay_per_second: float = 0.0, active: bool = True
) -> GlobalConcurrencyLimitResponse:
    """Create global concurrency limit `name`, or set it to these values with its count of occupied slots at 0.

    For a notebook's own limit at its start. It edits the count only: a lease still held on the limit keeps its
    slots and gives them back later (lesson 05, section 6.2), so it is no way to free a live system's slots.
    """
    settings = {"limit": limit, "slot_decay_per_second": slot_decay_per_second, "active": active}
    update = GlobalConcurrencyLimitUpdate(**settings, active_slots=0)
    with get_client(sync_client=True) as client:
        try:
            client.update_global_concurrency_limit(name, update)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, **settings))
            except ObjectAlreadyExists:  # another process created it a moment ago
                client.update_global_concurrency_limit(name, update)
        return client.read_global_concurrency_limit_by_name(name)


def read_limit(name: str) -> GlobalConcurrencyLimitResponse | None:
    """Return global concurrency limit `name` as the server has it now, or None if it does not exist."""
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return None


def delete_limit(name: str) -> bool:
    """Delete global concurrency limit `name` if it exists; return whether there was one."""
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return False
    return True


def ensure_tag_limit(tag: str, limit: int) -> ConcurrencyLimit:
    """Create the task concurrency limit for `tag`, or set it to `limit` with no lease and no slot occupied.

    For a notebook's own tag at its start: it drops the leases of every holder, live ones included.
    """
    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag=tag, concurrency_limit=limit)  # the server creates or updates
        client.reset_concurrency_limit_by_tag(tag)  # deletes the tag's leases but leaves the count as it was...
        client.update_global_concurrency_limit(TAG_PREFIX + tag, GlobalConcurrencyLimitUpdate(active_slots=0))
        return client.read_concurrency_limit_by_tag(tag)  # ...so the count is set to 0 as well


def lease_exists(lease_id: UUID | str) -> bool:
    """Return whether the server still holds concurrency lease `lease_id` (renewing a released one answers 410)."""
    with get_client(sync_client=True) as client:
        try:
            client.renew_concurrency_lease(lease_id, lease_duration=60)  # the shortest lease the server accepts
        except httpx.HTTPStatusError as error:
            if error.response.status_code == 410:
                return False
            raise
    return True


def remove_course_objects(prefix: str) -> list[str]:
    """Delete every global limit, tag limit and variable whose name starts with `prefix`; return their names."""
    if len(prefix) < 3:
        raise ValueError(f"prefix {prefix!r} is too short to be one notebook's own; use e.g. 'course-05-'")
    removed: list[str] = []
    with get_client(sync_client=True) as client:
        limits = client.read_global_concurrency_limits(limit=200)
        for limit in limits:
            if limit.name.startswith(prefix) or limit.name.startswith(TAG_PREFIX + prefix):
                client.delete_global_concurrency_limit_by_name(limit.name)
                removed.append(limit.name)
        for variable in client.read_variables():
            if variable.name.startswith(prefix):
                client.delete_variable_by_name(variable.name)
                removed.append(variable.name)
    return removed


def max_in_window(times: Sequence[float], seconds: float) -> int:
    """Return the largest number of `times` inside any window of `seconds` (a time exactly `seconds` later is out)."""
    ordered = sorted(times)
    best = first = 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - seconds:
            first += 1
        best = max(best, last - first + 1)
    return best
