"""Access retrieval driven step by step against the sandbox, on an injected clock: the entries
budget, erasure's priority over reads, the activity window an erasure waits for, retention."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from erasure.access import retention, retrieve
from erasure.access.budget import EntriesWindow
from erasure.access.disclose import open_export
from erasure.access.models import AccessRead, AccessRequest, AccessStatus, EntryCall
from erasure.audit.models import AuditLeaf
from erasure.core.models import IdentifierKind, RequestStatus
from erasure.salesforce.sandbox import Fault
from erasure.salesforce.sandbox.seed import demo_phone
from tests.support.access import submit_access_for
from tests.support.holds import place as place_hold
from tests.support.pipeline import World


def access_row(world: World, request_id: uuid.UUID) -> AccessRequest:
    with world.session() as session:
        return session.get_one(AccessRequest, request_id)


def entries_calls(world: World) -> int:
    return world.sandbox.org.call_count("entries")


def test_reads_stay_within_the_entries_window_and_the_export_is_sealed(world: World) -> None:
    # Demo user 1 has two conversations of three entries; two entries a page: four calls.
    tunables = retrieve.AccessTunables(window=EntriesWindow(calls=2, window_s=60), record_limit=2)
    with world.clock.hold():
        rid = submit_access_for(world, demo_phone(1))
        retrieve.run(world.ctx, tunables)
        first = access_row(world, rid)
        assert first.status is AccessStatus.RETRIEVING
        assert entries_calls(world) == 2  # the window is full: no call past it, no 429
        retrieve.run(world.ctx, tunables)  # not due yet: the next_attempt_at is the window's end
        assert entries_calls(world) == 2
        world.clock.advance(61)
        retrieve.run(world.ctx, tunables)
    done = access_row(world, rid)
    assert done.status is AccessStatus.READY
    assert entries_calls(world) == 4
    assert (done.end_users, done.conversations, done.entries) == (1, 2, 6)
    with world.session() as session:
        assert session.scalar(select(func.count()).select_from(EntryCall)) >= 4
    document = open_export(world.ctx.vault, done)
    assert document is not None
    assert hashlib.sha256(document.json_text.encode()).hexdigest() == done.export_sha256
    exported = json.loads(document.json_text)
    (user,) = exported["messaging_end_users"]
    assert sum(len(c["entries"]) for c in user["conversations"]) == 6
    assert "message 0" in document.html_text
    assert done.export_ciphertext is not None
    assert b"message 0" not in done.export_ciphertext  # sealed at rest


def test_an_erasure_comes_first_and_what_it_deleted_is_reported_not_read(world: World) -> None:
    tunables = retrieve.AccessTunables()
    erasure_id = world.submit(demo_phone(2))
    world.relay()  # resolved: the erasure's target is pending
    access_id = submit_access_for(world, demo_phone(2))
    retrieve.run(world.ctx, tunables)
    assert entries_calls(world) == 0  # never reads what an erasure is about to delete
    assert access_row(world, access_id).status is AccessStatus.RETRIEVING
    world.wait_for([erasure_id])
    assert world.sandbox.org.call_count("delete_participants") == 1
    world.clock.advance(tunables.erasure_recheck_s + 1)
    retrieve.run(world.ctx, tunables)
    done = access_row(world, access_id)
    assert done.status is AccessStatus.READY
    assert (done.conversations, done.entries) == (1, 0)
    assert entries_calls(world) == 0
    document = open_export(world.ctx.vault, done)
    assert document is not None
    assert json.loads(document.json_text)["conversations_erased_before_reading"] == 1


def test_an_erasure_after_an_export_waits_for_the_activity_window_instead_of_a_412(
    world: World,
) -> None:
    world.sandbox.org.configure(entries_activity_s=1800.0)
    world.sandbox.org.hold_clock(True)
    tunables = retrieve.AccessTunables()
    access_id = submit_access_for(world, demo_phone(4))
    retrieve.run(world.ctx, tunables)
    assert access_row(world, access_id).status is AccessStatus.READY
    erasure_id = world.submit(demo_phone(4))
    for _ in range(5):
        world.step()
    assert world.status(erasure_id) is RequestStatus.DELETING
    assert world.sandbox.org.call_count("delete_participants") == 0  # no call spent on a 412
    world.clock.advance(1801)
    world.sandbox.org.advance(1801)
    world.sandbox.org.hold_clock(False)
    world.wait_for([erasure_id])
    assert world.sandbox.org.call_count("delete_participants") == 1


def test_the_export_is_destroyed_at_its_retention_date(world: World) -> None:
    tunables = retrieve.AccessTunables(export_retention=timedelta(days=7))
    access_id = submit_access_for(world, demo_phone(2))
    retrieve.run(world.ctx, tunables)
    ready = access_row(world, access_id)
    assert ready.status is AccessStatus.READY and ready.expires_at is not None
    with world.session() as session:
        assert retention.destroy_expired(session, now=ready.expires_at - timedelta(seconds=1)) == 0
        assert retention.destroy_expired(session, now=ready.expires_at) == 1
        session.commit()
    gone = access_row(world, access_id)
    assert gone.status is AccessStatus.DESTROYED
    assert gone.export_ciphertext is None and gone.export_sha256 == ready.export_sha256
    assert open_export(world.ctx.vault, gone) is None
    with world.session() as session:
        kinds = session.scalars(
            select(AuditLeaf.kind).where(AuditLeaf.request_id == access_id).order_by(AuditLeaf.id)
        ).all()
    assert kinds == [
        "access.received",
        "access.resolved",
        "access.disclosed",
        "access.export_destroyed",
    ]


def test_a_failed_read_waits_and_resumes_without_reading_twice(world: World) -> None:
    tunables = retrieve.AccessTunables(retry_s=30)
    # Demo user 1 has two conversations; the entries route answers 503 for a while.
    with world.clock.hold():
        rid = submit_access_for(world, demo_phone(1))
        world.sandbox.org.inject(Fault(route="entries", count=5, status=503))
        retrieve.run(world.ctx, tunables)
        waiting = access_row(world, rid)
        assert waiting.status is AccessStatus.RETRIEVING
        assert waiting.next_attempt_at is not None
        assert waiting.next_attempt_at >= world.clock() + timedelta(seconds=29)
        world.sandbox.org.faults.clear()
        retrieve.run(world.ctx, tunables)
        assert access_row(world, rid).status is AccessStatus.RETRIEVING  # not due yet
        world.clock.advance(31)
        retrieve.run(world.ctx, tunables)
    done = access_row(world, rid)
    assert done.status is AccessStatus.READY and done.entries == 6
    # Each conversation is read into the export once.
    with world.session() as session:
        read_once = session.scalar(
            select(func.count()).select_from(AccessRead).where(AccessRead.request_id == rid)
        )
    assert read_once == 2


def test_a_subject_under_legal_hold_is_disclosed_while_its_erasure_waits(world: World) -> None:
    erasure_id = world.submit(demo_phone(2))
    place_hold(world, subject=(IdentifierKind.PHONE, demo_phone(2)))
    for _ in range(3):
        world.step()
    assert world.status(erasure_id) is RequestStatus.ON_HOLD
    access_id = submit_access_for(world, demo_phone(2))
    retrieve.run(world.ctx, retrieve.AccessTunables())
    done = access_row(world, access_id)
    # The held erasure will not delete soon: waiting on it could cost the access deadline.
    assert done.status is AccessStatus.READY and done.entries == 3
    assert world.sandbox.org.call_count("delete_participants") == 0
