"""Legal holds in the pipeline, driven step by step against the sandbox: a held subject's records
are never sent in a delete call (for any request), the request says why and alerts, and it goes
on when the hold ends (the sweep, on an injected clock), is released, or is overridden."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from erasure.audit.models import AuditLeaf
from erasure.core.models import IdentifierKind, RequestStatus, TargetStatus
from erasure.errors import InvalidTransition
from erasure.identifiers import normalize
from erasure.lifecycle import holds, operations
from erasure.pipeline.holds import ON_HOLD_ALERT
from erasure.pipeline.models import Alert, HoldWait
from erasure.workflow import Protection
from tests.pipeline.conftest import World

PHONE = "+14155550013"  # seeded end user 13: reachable by this phone and by its contact's email
EMAIL = "demo.user13@example.com"
REASON = "Litigation hold for Ana Example, matter 2026-77"


def place(
    world: World,
    *,
    subject: tuple[IdentifierKind, str] | None = (IdentifierKind.PHONE, PHONE),
    ends_in_s: float = 3600,
) -> uuid.UUID:
    with world.session() as session, session.begin():
        now = world.clock()
        legal_hold = holds.place(
            session,
            holds.Placement(
                reason=REASON,
                ends_at=now + timedelta(seconds=ends_in_s),
                org=world.org_name,
                subject=None if subject is None else (subject[0], normalize(*subject)),
            ),
            protection=Protection(world.ctx.vault, world.ctx.pseudonym_key),
            default_org=None,
            by="api-key:test",
            at=now,
        )
        return legal_hold.id


def leaf_kinds(world: World, request_id: uuid.UUID) -> list[str]:
    with world.session() as session:
        return list(
            session.scalars(
                select(AuditLeaf.kind)
                .where(AuditLeaf.request_id == request_id)
                .order_by(AuditLeaf.id)
            )
        )


def open_alerts(world: World, request_id: uuid.UUID) -> int:
    with world.session() as session:
        return len(
            session.scalars(
                select(Alert).where(
                    Alert.request_id == request_id,
                    Alert.kind == ON_HOLD_ALERT,
                    Alert.resolved_at.is_(None),
                )
            ).all()
        )


def deleted(world: World) -> list[str]:
    return list(world.sandbox.org.accepted_ids["delete_participants"])


def settle(world: World, rounds: int = 8) -> None:
    """Several full passes of the pipeline (relay, dispatch, confirm, sweep)."""
    for _ in range(rounds):
        world.step()


def test_a_held_subject_is_resolved_but_never_deleted_until_released(world: World) -> None:
    hold_id = place(world)
    request_id = world.submit(PHONE)
    world.wait_for([request_id], (RequestStatus.ON_HOLD,))
    settle(world)

    assert world.status(request_id) is RequestStatus.ON_HOLD
    assert deleted(world) == []
    assert [t.status for t in world.targets(request_id)] == [TargetStatus.PENDING]
    assert open_alerts(world, request_id) == 1
    with world.session() as session:
        assert holds.held_requests(session, hold_id) == [request_id]

    with world.session() as session, session.begin():
        holds.release(session, hold_id, by="api-key:test", at=world.clock())
    world.wait_for([request_id])

    assert len(deleted(world)) == 1
    assert open_alerts(world, request_id) == 0
    kinds = leaf_kinds(world, request_id)
    assert kinds.index("request.resolved") < kinds.index("request.held")
    assert kinds.index("request.held") < kinds.index("request.resumed")
    assert kinds[-1] == "request.completed"


def test_a_hold_placed_while_deleting_stops_it_and_its_end_resumes_it(world: World) -> None:
    request_id = world.submit(PHONE)
    world.relay()  # resolved: its target is pending, not yet planned
    assert world.status(request_id) is RequestStatus.DELETING

    place(world, ends_in_s=60)
    assert world.status(request_id) is RequestStatus.ON_HOLD
    settle(world)
    assert deleted(world) == []

    world.clock.advance(61)  # past the hold's end: the sweep records it and resumes the request
    world.wait_for([request_id])
    with world.session() as session:
        expired = session.scalars(
            select(AuditLeaf.leaf).where(AuditLeaf.kind == "hold.expired").order_by(AuditLeaf.id)
        ).all()
        wait = session.scalar(select(HoldWait).where(HoldWait.request_id == request_id))
    assert expired, "the expiry is in the log"
    assert wait is not None
    assert wait.ended_how == "hold_ended"


def test_another_request_for_the_same_record_waits_too(world: World) -> None:
    """The hold names the phone; a request by email reaches the same record: that record is
    not sent for anyone while the held request waits."""
    hold_id = place(world)
    held = world.submit(PHONE)
    other = world.submit(EMAIL, kind=IdentifierKind.EMAIL)
    world.wait_for([held], (RequestStatus.ON_HOLD,))
    settle(world)
    assert world.status(other) is RequestStatus.DELETING
    assert deleted(world) == []

    with world.session() as session, session.begin():
        holds.release(session, hold_id, by="api-key:test", at=world.clock())
    world.wait_for([held, other])
    assert len(deleted(world)) == 1  # one record, deleted once


def test_an_override_lets_one_request_go_on_with_a_sealed_reason(world: World) -> None:
    place(world)
    request_id = world.submit(PHONE)
    world.wait_for([request_id], (RequestStatus.ON_HOLD,))

    with world.session() as session, session.begin():
        holds.override(
            session,
            request_id,
            reason="Counsel confirmed: outside the matter (Ana Example)",
            vault=world.ctx.vault,
            by="api-key:approver",
            at=world.clock(),
        )
    world.wait_for([request_id])
    with world.session() as session:
        leaf = session.scalar(
            select(AuditLeaf.leaf).where(
                AuditLeaf.request_id == request_id, AuditLeaf.kind == "request.hold_overridden"
            )
        )
        wait = session.scalar(select(HoldWait).where(HoldWait.request_id == request_id))
    assert leaf is not None
    assert b"reason_sha256" in leaf
    assert b"Ana" not in leaf
    assert wait is not None
    assert wait.override_reason_ciphertext is not None
    assert b"Ana" not in wait.override_reason_ciphertext
    assert holds.open_override_reason(world.ctx.vault, wait) == (
        "Counsel confirmed: outside the matter (Ana Example)"
    )


def test_an_org_wide_hold_covers_every_request_and_retry_respects_it(world: World) -> None:
    place(world, subject=None)
    first = world.submit("+14155550001")
    second = world.submit("+14155550002")
    world.wait_for([first, second], (RequestStatus.ON_HOLD,))
    settle(world)
    assert deleted(world) == []
    with (
        world.session() as session,
        session.begin(),
        pytest.raises(InvalidTransition, match="legal hold"),
    ):
        operations.retry(session, first, at=world.clock())


def test_hold_leaves_hold_no_personal_data(world: World) -> None:
    hold_id = place(world)
    request_id = world.submit(PHONE)
    world.wait_for([request_id], (RequestStatus.ON_HOLD,))
    with world.session() as session, session.begin():
        holds.release(session, hold_id, by="api-key:test", at=world.clock())
    with world.session() as session:
        rows = session.scalars(
            select(AuditLeaf.leaf).where(
                AuditLeaf.kind.in_(
                    ("hold.placed", "hold.released", "request.held", "request.resumed")
                )
            )
        ).all()
    assert len(rows) >= 4
    for leaf in rows:
        for secret in (PHONE.encode(), PHONE[1:].encode(), b"Ana", b"Litigation", b"2026-77"):
            assert secret not in leaf
