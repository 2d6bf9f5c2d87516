"""The limit helpers create, update, read and remove limits and variables by name, reset a tag limit to no lease
and no slot taken, tell a live lease from a released one, and count what they should."""

from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.variables import Variable

from lessons_src.checks import CheckFailed, require_rate_limit
from lessons_src.pairs.p05_concurrency_limits import (
    delete_limit,
    ensure_limit,
    ensure_tag_limit,
    lease_exists,
    max_in_window,
    read_limit,
    remove_course_objects,
)

PREFIX = "course-test-limits-"


@pytest.fixture
def clean_prefix(course_server):
    """Start and end with nothing on the server under this test module's prefix."""
    remove_course_objects(PREFIX)
    yield PREFIX
    remove_course_objects(PREFIX)


def test_ensure_limit_creates_then_updates_and_frees_slots(clean_prefix):
    name = clean_prefix + "a"
    created = ensure_limit(name, 2)
    assert (created.limit, created.active, created.active_slots) == (2, True, 0)
    with get_client(sync_client=True) as client:
        client.increment_concurrency_slots_with_lease(names=[name], slots=1, mode="concurrency", lease_duration=60)
    assert read_limit(name).active_slots == 1
    updated = ensure_limit(name, 3, slot_decay_per_second=1.5, active=False)
    assert updated.id == created.id
    assert (updated.limit, updated.slot_decay_per_second, updated.active, updated.active_slots) == (3, 1.5, False, 0)


def test_read_limit_of_a_missing_name_is_none(clean_prefix):
    assert read_limit(clean_prefix + "missing") is None


def test_delete_limit_says_whether_there_was_one(clean_prefix):
    name = clean_prefix + "gone"
    ensure_limit(name, 1)
    assert delete_limit(name) is True
    assert read_limit(name) is None
    assert delete_limit(name) is False


def test_require_rate_limit_accepts_a_decaying_limit_and_rejects_others(clean_prefix):
    name = clean_prefix + "pace"
    ensure_limit(name, 5)  # left over from an earlier attempt: must not count
    made = require_rate_limit(lambda n: ensure_limit(n, 1, slot_decay_per_second=2), name)
    assert (made.limit, made.slot_decay_per_second) == (1, 2)
    with pytest.raises(CheckFailed, match="left no limit"):
        require_rate_limit(lambda n: None, name)
    with pytest.raises(CheckFailed, match="never free by themselves"):
        require_rate_limit(lambda n: ensure_limit(n, 1), name)
    with pytest.raises(CheckFailed, match="should be a function"):
        require_rate_limit("not callable", name)

    async def create_async(limit_name: str) -> None:  # an async answer is awaited, not left as a coroutine
        ensure_limit(limit_name, 1, slot_decay_per_second=3)

    assert require_rate_limit(create_async, name).slot_decay_per_second == 3


def test_ensure_tag_limit_is_a_tag_limit_stored_as_a_global_one(clean_prefix):
    tag = clean_prefix + "tag"
    assert ensure_tag_limit(tag, 2).concurrency_limit == 2
    assert ensure_tag_limit(tag, 4).concurrency_limit == 4
    assert read_limit("tag:" + tag).limit == 4


def test_ensure_tag_limit_leaves_no_lease_and_no_slot_taken(clean_prefix):
    tag = clean_prefix + "held"
    ensure_tag_limit(tag, 2)
    with get_client(sync_client=True) as client:  # a task run holds a slot, as the task engine takes it
        lease_id = client.increment_concurrency_slots_with_lease(
            names=["tag:" + tag],
            slots=1,
            mode="concurrency",
            lease_duration=60,
            holder=ConcurrencyLeaseHolder(type="task_run", id=uuid4()),
        ).json()["lease_id"]
    assert read_limit("tag:" + tag).active_slots == 1
    reset = ensure_tag_limit(tag, 2)  # the server's tag reset alone deletes the lease but keeps the count at 1
    assert (reset.active_slots, read_limit("tag:" + tag).active_slots, lease_exists(lease_id)) == ([], 0, False)


def test_lease_exists_until_the_lease_is_released(clean_prefix):
    name = clean_prefix + "leased"
    ensure_limit(name, 1)
    with get_client(sync_client=True) as client:
        lease_id = client.increment_concurrency_slots_with_lease(
            names=[name], slots=1, mode="concurrency", lease_duration=60
        ).json()["lease_id"]
        assert lease_exists(lease_id) is True
        client.release_concurrency_slots_with_lease(lease_id)
    assert lease_exists(lease_id) is False
    assert lease_exists(uuid4()) is False  # never existed


def test_remove_course_objects_removes_only_its_prefix(clean_prefix):
    ensure_limit(clean_prefix + "x", 1)
    ensure_tag_limit(clean_prefix + "t", 1)
    Variable.set(clean_prefix + "v", {"dev": 1}, overwrite=True)
    ensure_limit("course-test-other-x", 1)
    try:
        removed = remove_course_objects(clean_prefix)
        assert sorted(removed) == sorted([clean_prefix + "x", "tag:" + clean_prefix + "t", clean_prefix + "v"])
        assert read_limit("course-test-other-x") is not None
    finally:
        remove_course_objects("course-test-other-")


def test_remove_course_objects_refuses_a_short_prefix():
    with pytest.raises(ValueError, match="too short"):
        remove_course_objects("c")


@pytest.mark.parametrize(
    ("times", "seconds", "expected"),
    [
        ([], 1.0, 0),
        ([0.0], 1.0, 1),
        ([0.0, 0.25, 0.5, 0.75, 1.0], 1.0, 4),  # a time exactly one window later is outside it
        ([0.0, 0.1, 0.2, 5.0], 1.0, 3),
        ([3.0, 0.0, 2.9, 2.95], 0.5, 3),
    ],
)
def test_max_in_window(times, seconds, expected):
    assert max_in_window(times, seconds) == expected
