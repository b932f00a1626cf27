"""One Salesforce record, several requests (issue 11 §1): the record, not the request, is the unit
of a delete call. An id goes out at most once per call and at most once while a deletion of it is
in flight; its outcome reaches every request that needs it, each with its own leaves and
certificate. Driven against the HTTPS sandbox, whose own counters say what it received."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from erasure.audit import certify, store
from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.audit.models import AuditLeaf
from erasure.core.models import (
    DeleteCall,
    DeleteRoute,
    ErasureRequest,
    IdentifierKind,
    Org,
    RequestStatus,
    Target,
    TargetStatus,
)
from erasure.lifecycle import operations as actions
from erasure.lifecycle.operations import cancel as cancel_request
from erasure.pipeline import call_outcomes, confirm, quota, resolve, scheduler
from erasure.pipeline.models import Alert
from erasure.salesforce.sandbox import Fault
from erasure.salesforce.sandbox.seed import add_end_user
from tests.support.pipeline import World

EMAIL = IdentifierKind.EMAIL
PHONE = IdentifierKind.PHONE
ORIGIN = "erasure.test/audit"


def sends(world: World) -> int:
    """Delete calls the sandbox received (rejected ones too)."""
    return world.sandbox.org.call_count("delete_participants")


def accepted(world: World) -> Counter[str]:
    """How often the sandbox accepted each id for deletion."""
    return Counter(world.sandbox.org.counters()["accepted_ids"].get("delete_participants", []))


def leaves_of(world: World, request_id: uuid.UUID) -> list[dict[str, object]]:
    with world.session() as session:
        rows = session.scalars(
            select(AuditLeaf.leaf).where(AuditLeaf.request_id == request_id).order_by(AuditLeaf.id)
        )
        return [json.loads(row) for row in rows]


def certificate(world: World, request_id: uuid.UUID, key: SigningKey) -> dict[str, object]:
    with world.session() as session, session.begin():
        while store.sequence(session):
            pass
        store.sign_checkpoint(session, key, origin=ORIGIN)
    with world.session() as session:
        return certify.certificate_for(session, request_id, signing_key=key)


def plan(world: World) -> tuple[uuid.UUID, scheduler.SalesforcePort, list[str]]:
    """What the dispatcher does before its HTTP call: the call row is committed, nothing sent."""
    planned = scheduler.plan_call(
        world.ctx, world.org_id, DeleteRoute.PARTICIPANTS, scheduler.DispatchReport()
    )
    assert planned is not None and not isinstance(planned, str)
    return planned


def test_one_person_in_several_requests_is_deleted_once_in_one_call(
    world: World, signing_key: SigningKey
) -> None:
    """The issue's mix: the first two reach the same MessagingEndUser."""
    requests = {
        "phone 1": world.submit("+14155550001"),
        "email 1": world.submit("demo.user1@example.com", kind=EMAIL),
        "phone 2": world.submit("+14155550002"),
        "phone 4": world.submit("+14155550004"),
    }
    world.wait_for(list(requests.values()))

    assert sends(world) == 1
    (call,) = world.calls()
    assert call.ids_count == 3
    sent = accepted(world)
    assert len(sent) == 3 and set(sent.values()) == {1}  # three records, each accepted once
    (by_phone,) = world.targets(requests["phone 1"])
    (by_email,) = world.targets(requests["email 1"])
    assert by_phone.salesforce_id == by_email.salesforce_id
    assert by_phone.salesforce_id in sent
    assert by_phone.log_id == by_email.log_id and by_phone.log_id is not None

    documents: dict[str, dict[str, object]] = {}
    for name, request_id in requests.items():
        kinds = [leaf["kind"] for leaf in leaves_of(world, request_id)]
        assert "targets.requested" in kinds and "target.deleted" in kinds, (name, kinds)
        document = certificate(world, request_id, signing_key)
        report = verify_certificate(document, signing_key.verifier())
        assert report.ok, (name, report.findings)
        entries = document["targets"]
        assert isinstance(entries, list) and len(entries) == 1
        entry = entries[0]
        assert entry["status"] == "deleted" and entry["read_back"] == "absent"
        assert entry["salesforce_log_id"] and entry["record"]
        documents[name] = entry
    # Both certificates name the shared record, with the one log that deleted it.
    assert documents["phone 1"]["record"] == documents["email 1"]["record"]
    assert documents["phone 1"]["salesforce_log_id"] == documents["email 1"]["salesforce_log_id"]
    assert documents["phone 1"]["id"] != documents["email 1"]["id"]
    assert documents["phone 2"]["record"] != documents["phone 1"]["record"]


def test_a_record_resolved_while_its_call_is_on_the_wire_rides_on_that_call(
    world: World,
) -> None:
    first = world.submit("+14155550001")
    world.relay()
    call_id, client, batch = plan(world)  # the call row is committed: the call is out
    second = world.submit("demo.user1@example.com", kind=EMAIL)
    world.relay()  # resolved while the call is on the wire
    call_outcomes.record(world.ctx, call_id, client.delete_participants(batch))
    world.wait_for([first, second])
    assert sends(world) == 1
    assert list(accepted(world).values()) == [1]
    (a,), (b,) = world.targets(first), world.targets(second)
    assert a.delete_call_id == b.delete_call_id == call_id
    assert a.log_id == b.log_id


def test_a_record_whose_deletion_is_in_progress_is_not_sent_again(world: World) -> None:
    world.sandbox.org.configure(log_step_s=600.0)  # the log moves on only with the sandbox clock
    first = world.submit("+14155550002")
    world.wait_for([first], [RequestStatus.CONFIRMING])
    world.sandbox.org.advance(1300)  # REQUESTED -> ENQUEUED -> IN_PROGRESS, not final
    deadline = time.monotonic() + 20
    while [t.status for t in world.targets(first)] != [TargetStatus.IN_PROGRESS]:
        assert time.monotonic() < deadline, world.targets(first)
        world.step()
    second = world.submit("demo.user2@example.com", kind=EMAIL)
    world.wait_for([second], [RequestStatus.CONFIRMING])
    for _ in range(5):
        world.step()
    assert sends(world) == 1  # the second request waits on the deletion already under way
    world.sandbox.org.configure(log_step_s=0.1)
    world.wait_for([first, second])
    assert sends(world) == 1
    assert list(accepted(world).values()) == [1]
    (a,), (b,) = world.targets(first), world.targets(second)
    assert a.log_id == b.log_id and b.status is TargetStatus.DELETED
    final = [leaf for leaf in leaves_of(world, second) if leaf["kind"] == "target.deleted"]
    assert len(final) == 1
    data = final[0]["data"]
    assert isinstance(data, dict)
    assert data["target"] == str(b.id) and data["log_id"] == a.log_id
    assert data["read_back"] == "absent"


def test_a_record_deleted_between_a_lookup_and_its_recording_is_not_sent_again(
    world: World,
) -> None:
    """The lookup found the record; by the time the targets are written, another request has
    deleted it. Sending it again would be refused (the record is gone) and fail the request."""
    first = world.submit("+14155550004")
    world.relay()
    second = world.submit("demo.user4@example.com", kind=EMAIL)
    claim = resolve.claim(world.ctx, second, 0)
    assert isinstance(claim, resolve.Claim)
    found = resolve.look_up(world.ctx, claim)

    # ... while the second request's worker is slow, the first request's deletion completes.
    def deliver_and_confirm() -> None:  # no relay: the second request's message stays queued
        scheduler.dispatch(world.ctx)
        confirm.confirm(world.ctx)

    world.wait_for([first], step=deliver_and_confirm)
    assert resolve.record(world.ctx, claim, found) is resolve.Outcome.RESOLVED
    world.wait_for([second])
    assert sends(world) == 1
    (a,), (b,) = world.targets(first), world.targets(second)
    assert b.status is TargetStatus.DELETED and b.log_id == a.log_id


def _waiting_on(session: Session, blocker: int) -> int:
    """Sessions queued behind the blocker's lock, directly or behind another waiter (the second
    waiter on a row waits on the first one's tuple lock). Counting every lock wait in the database
    would also count other connections' passing waits."""
    return int(
        session.scalar(
            text(
                "WITH RECURSIVE queued(pid) AS ("
                " SELECT pid FROM pg_stat_activity WHERE :b = ANY(pg_blocking_pids(pid))"
                " UNION SELECT a.pid FROM pg_stat_activity a"
                " JOIN queued ON queued.pid = ANY(pg_blocking_pids(a.pid))"
                ") SELECT count(*) FROM queued"
            ),
            {"b": blocker},
        )
        or 0
    )


def _until_waiting(world: World, blocker: int, count: int, futures: list[Future[object]]) -> None:
    deadline = time.monotonic() + 60
    with world.session() as session:
        while _waiting_on(session, blocker) < count:
            for future in futures:
                if future.done():
                    returned = future.result()  # raises what the thread raised
                    raise AssertionError(
                        f"finished without waiting for the delete call's lock: {returned!r}"
                    )
            assert time.monotonic() < deadline, "never waited on the delete call's lock"
            session.rollback()
            time.sleep(0.02)


@pytest.mark.parametrize("first", ["attach", "record"])
def test_attaching_and_recording_a_call_are_serialised_on_the_call(
    world: World, first: str
) -> None:
    """A second request for a record resolves exactly while the call carrying that record is
    being recorded. A blocker holds the call's row; the two transactions queue behind it in a
    chosen order (Postgres grants a row lock first come, first served)."""
    leader = world.submit("+14155550005")
    world.relay()
    call_id, client, batch = plan(world)
    # Held, or a busy machine lets the sandbox execute the delete before the follower's lookup.
    world.sandbox.org.hold_clock(True)
    reply = client.delete_participants(batch)  # the 202 is in hand, not yet recorded
    follower = world.submit("demo.user5@example.com", kind=EMAIL)
    # The follower's lookup (HTTP) happens before the race: only the database work races, so a
    # slow sandbox reply on a busy machine cannot end the attach early with a retry.
    claim = resolve.claim(world.ctx, follower, 0)
    assert isinstance(claim, resolve.Claim)
    found = resolve.look_up(world.ctx, claim)
    ordered: dict[str, Callable[[], object]] = {
        "record": lambda: call_outcomes.record(world.ctx, call_id, reply),
        # records the follower's resolution, which finds the record in flight and attaches
        "attach": lambda: resolve.record(world.ctx, claim, found),
    }
    order = [first, *(name for name in ordered if name != first)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures: list[Future[object]] = []
        with world.session() as blocker, blocker.begin():
            blocker.execute(select(DeleteCall.id).where(DeleteCall.id == call_id).with_for_update())
            blocker_pid = int(blocker.scalar(text("SELECT pg_backend_pid()")) or 0)
            for waiting, name in enumerate(order, start=1):
                futures.append(pool.submit(ordered[name]))
                _until_waiting(world, blocker_pid, waiting, futures)
        for future in futures:
            future.result(timeout=60)
    world.sandbox.org.hold_clock(False)  # the deletion goes on: both requests confirm by its log
    world.wait_for([leader, follower])
    assert sends(world) == 1
    assert list(accepted(world).values()) == [1]
    (a,), (b,) = world.targets(leader), world.targets(follower)
    assert a.delete_call_id == b.delete_call_id == call_id
    assert a.log_id == b.log_id


@pytest.mark.parametrize("when", ["after", "before"])
def test_an_ambiguous_call_carrying_a_shared_record_is_reconciled_once(
    world: World, when: str
) -> None:
    """A 503 after the logs were written: both targets take the log, nothing is sent again.
    Before: both go back to pending and the record is sent once more, once."""
    world.sandbox.org.inject(Fault(route="delete_participants", status=503, when=when))
    first = world.submit("+14155550010")
    second = world.submit("demo.user10@example.com", kind=EMAIL)
    world.wait_for([first, second])
    assert list(accepted(world).values()) == [1]
    assert sends(world) == (1 if when == "after" else 2)
    (a,), (b,) = world.targets(first), world.targets(second)
    assert a.log_id == b.log_id and a.delete_call_id == b.delete_call_id


def test_a_failed_deletion_fails_every_request_on_it_and_a_retry_sends_the_id_once(
    world: World,
) -> None:
    first = world.submit("+14155550009")  # a blocking child record: the log ends FAILED
    world.relay()
    scheduler.dispatch(world.ctx)
    second = world.submit("whatsapp:+14155550009", kind=IdentifierKind.MESSAGING_PLATFORM_KEY)
    world.wait_for([first, second], [RequestStatus.FAILED])
    assert sends(world) == 1
    (a,), (b,) = world.targets(first), world.targets(second)
    assert a.salesforce_id == b.salesforce_id
    assert a.status is b.status is TargetStatus.FAILED
    assert a.log_id == b.log_id and b.failure_reason
    for request_id, target in ((first, a), (second, b)):
        failed = [leaf for leaf in leaves_of(world, request_id) if leaf["kind"] == "target.failed"]
        assert [leaf["data"]["target"] for leaf in failed] == [str(target.id)]  # type: ignore[index]

    with world.sandbox.org.lock:
        world.sandbox.org.data.blocking.clear()  # someone removed the child record
    with world.session() as session, session.begin():
        actions.retry(session, first, at=world.ctx.clock())
    with world.session() as session, session.begin():
        actions.retry(session, second, at=world.ctx.clock())
    world.wait_for([first, second])
    assert sends(world) == 2
    retried = world.calls()[-1]
    assert retried.ids_count == 1
    # once per deletion: the failed one, then this
    assert accepted(world)[a.salesforce_id or ""] == 2
    (a,), (b,) = world.targets(first), world.targets(second)
    assert a.delete_call_id == b.delete_call_id == retried.id


def test_a_malformed_batch_is_a_bug_that_fails_no_request_and_spends_no_quota(
    world: World,
) -> None:
    requests = [world.submit("+14155550002"), world.submit("+14155550004")]
    world.relay()
    call_id, client, batch = plan(world)
    # A bug slipped a doubled id past planning: the client refuses the batch before sending it.
    report = scheduler.DispatchReport()
    doubled = [batch[0], *batch]
    scheduler.send_call(
        world.ctx,
        call_id=call_id,
        client=client,
        route=DeleteRoute.PARTICIPANTS,
        batch=doubled,
        report=report,
    )
    assert sends(world) == 0
    assert {world.status(r) for r in requests} == {RequestStatus.DELETING}
    targets = [t for r in requests for t in world.targets(r)]
    assert {t.status for t in targets} == {TargetStatus.PENDING}
    assert all(t.failure_reason is None for t in targets)
    with world.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.org_id == world.org_id)).all()
        assert [a.kind for a in alerts] == ["malformed_delete_batch"]
        assert "bug" in alerts[0].message
        org = session.get(Org, world.org_id)
        assert org is not None
        used = quota.quota(
            session, org, world.credential_ids[0], DeleteRoute.PARTICIPANTS, world.ctx.clock()
        )
        assert used.used == 0
    for _ in range(3):  # held, not retried in a hot loop
        scheduler.dispatch(world.ctx)
    assert len(world.calls()) == 1 and sends(world) == 0

    clock = world.ctx.clock
    hold = timedelta(seconds=world.ctx.tunables.malformed_batch_hold_s + 1)
    world.ctx.clock = lambda: clock() + hold  # the hold is over
    world.wait_for(requests)
    assert sends(world) == 1
    assert set(accepted(world).values()) == {1}


def test_a_target_holding_a_malformed_id_is_kept_out_of_the_batch(world: World) -> None:
    bad, good = world.submit("+14155550002"), world.submit("+14155550004")
    world.relay()
    with world.session() as session, session.begin():
        session.execute(
            update(Target).where(Target.request_id == bad).values(salesforce_id="0PA-not-an-id")
        )
    world.wait_for([good])
    assert world.status(bad) is RequestStatus.DELETING
    (held,) = world.targets(bad)
    assert held.status is TargetStatus.PENDING and held.next_check_at is not None
    assert sends(world) == 1 and len(accepted(world)) == 1
    with world.session() as session:
        kinds = session.scalars(select(Alert.kind).where(Alert.org_id == world.org_id)).all()
    assert kinds == ["malformed_delete_batch"]


def test_linking_is_transitive_and_every_identifier_is_searched(world: World) -> None:
    """A person's SMS and WhatsApp end users are different records. A knows them by email (the
    SMS user's contact), B by email and phone, C by phone: C joins A's group through B, and the
    WhatsApp user, which only a phone reaches, is deleted."""
    with world.sandbox.org.lock:
        whatsapp = add_end_user(
            world.sandbox.org.data, platform_key="whatsapp:+14155550002", message_type="WhatsApp"
        )
    a = world.submit("demo.user2@example.com", kind=EMAIL)
    b = world.submit("demo.user2@example.com", kind=EMAIL, also=[(PHONE, "+14155550002")])
    c = world.submit("+14155550002")
    with world.session() as session:
        linked = {
            r.id: r.duplicate_of_id
            for r in session.scalars(select(ErasureRequest).where(ErasureRequest.id.in_([a, b, c])))
        }
    assert linked == {a: None, b: a, c: a}
    world.wait_for([a, b, c])
    sent = accepted(world)
    assert whatsapp.end_user_id in sent
    assert len(sent) == 2 and set(sent.values()) == {1}
    assert sends(world) == 1
    records = {r: sorted(t.salesforce_id or "" for t in world.targets(r)) for r in (a, b, c)}
    assert len(records[a]) == 1
    assert records[b] == records[c] == sorted(sent)


def test_a_linked_duplicate_is_approved_with_its_primary(make_world: Callable[..., World]) -> None:
    world = make_world(requires_approval=True)
    primary = world.submit("+14155550005")
    duplicate = world.submit("+14155550005")
    world.wait_for([primary, duplicate], [RequestStatus.AWAITING_APPROVAL])
    with world.session() as session, session.begin():
        actions.approve(session, primary, by="user:test", at=world.ctx.clock())
    world.wait_for([primary, duplicate])
    assert sends(world) == 1 and list(accepted(world).values()) == [1]
    approved = [leaf for leaf in leaves_of(world, duplicate) if leaf["kind"] == "request.approved"]
    assert [leaf["data"]["with"] for leaf in approved] == [str(primary)]  # type: ignore[index]
    (a,), (b,) = world.targets(primary), world.targets(duplicate)
    assert b.status is TargetStatus.DELETED and a.log_id == b.log_id


def test_cancelling_one_request_still_deletes_the_record_for_the_other(world: World) -> None:
    cancelled = world.submit("+14155550007")
    kept = world.submit("demo.user7@example.com", kind=EMAIL)
    world.relay()
    with world.session() as session, session.begin():
        cancel_request(session, cancelled, reason="duplicate ticket", vault=world.ctx.vault)
    world.wait_for([kept])
    assert world.status(cancelled) is RequestStatus.CANCELLED
    assert [t.status for t in world.targets(cancelled)] == [TargetStatus.WITHDRAWN]
    assert [t.status for t in world.targets(kept)] == [TargetStatus.DELETED]
    assert sends(world) == 1 and list(accepted(world).values()) == [1]


def test_only_one_deletion_per_record_can_be_in_flight(world: World) -> None:
    """The database itself refuses a second leading deletion of a record while one is out."""
    first = world.submit("+14155550008")
    second = world.submit("demo.user8@example.com", kind=EMAIL)
    world.relay()
    call_id, _client, _batch = plan(world)
    (a,), (b,) = world.targets(first), world.targets(second)
    assert {a.delete_call_id, b.delete_call_id} == {call_id}
    follower = b.id if a.leads_deletion else a.id
    with world.session() as session, pytest.raises(IntegrityError):
        session.execute(update(Target).where(Target.id == follower).values(leads_deletion=True))
