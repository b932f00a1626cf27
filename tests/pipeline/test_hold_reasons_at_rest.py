"""Hold reasons and override reasons are personal text like a request's notes: `erasure
encryption-keys reencrypt` re-seals them under the new key, and retention destroys them, a hold's
reason a retention period after the hold ended (a hold outlives the requests it covers), an
override reason with the request it was given for. Nothing here is committed: each test looks at
its rows in the session that changed them and rolls back (the database is shared by the module)."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.config import Settings
from erasure.core.models import RequestStatus
from erasure.identifiers import Vault
from erasure.key_rotation import reencrypt_batch
from erasure.lifecycle import holds
from erasure.pipeline.models import HoldWait, LegalHold
from erasure.retention import shred_ended_holds, shred_expired
from tests.support.holds import PHONE, REASON, place
from tests.support.pipeline import World

OVERRIDE = "Counsel confirmed: outside the matter (Ana Example)"


def overridden(world: World) -> tuple[uuid.UUID, uuid.UUID]:
    """A hold, and a request it stopped that an approver let go on; the request completes."""
    hold_id = place(world)
    request_id = world.submit(PHONE)
    world.wait_for([request_id], (RequestStatus.ON_HOLD,))
    with world.session() as session, session.begin():
        holds.override(
            session,
            request_id,
            reason=OVERRIDE,
            vault=world.ctx.vault,
            by="api-key:approver",
            at=world.clock(),
        )
    world.wait_for([request_id])
    return hold_id, request_id


def wait_of(session: Session, request_id: uuid.UUID) -> HoldWait:
    wait = session.scalar(select(HoldWait).where(HoldWait.request_id == request_id))
    assert wait is not None
    return wait


def test_reencrypt_reseals_hold_and_override_reasons_under_the_new_key(
    world: World, settings: Settings
) -> None:
    hold_id, request_id = overridden(world)
    new_key = os.urandom(32)
    rotated = Vault({"new": new_key, **settings.encryption_key_bytes})
    only_new = Vault({"new": new_key})  # what is left once the old key is removed
    with world.session() as session:
        count = reencrypt_batch(session, rotated)
        assert count.hold_reasons >= 2  # the hold's and the override's (others may be older)
        assert reencrypt_batch(session, rotated).total == 0  # nothing left under an old key
        legal_hold = session.get_one(LegalHold, hold_id)
        wait = wait_of(session, request_id)
        assert legal_hold.reason_key_id == "new" and wait.override_reason_key_id == "new"
        assert holds.open_reason(only_new, legal_hold) == REASON
        assert holds.open_override_reason(only_new, wait) == OVERRIDE
        session.rollback()


def test_retention_destroys_a_hold_reason_only_a_retention_period_after_the_hold_ended(
    world: World,
) -> None:
    retention = timedelta(days=30)
    ended = place(world)
    running = place(world, ends_in_s=400 * 86400)  # in force for over a year
    with world.session() as session, session.begin():
        holds.release(session, ended, by="api-key:test", at=world.clock())
    now = world.clock()
    with world.session() as session:
        # The day before the period is over, both reasons are kept.
        before = shred_ended_holds(session, retention=retention, now=now + timedelta(days=29))
        assert ended not in before and running not in before
        after = shred_ended_holds(session, retention=retention, now=now + timedelta(days=31))
        assert ended in after and running not in after
        shredded = session.get_one(LegalHold, ended)
        assert shredded.reason_ciphertext is None and shredded.reason_key_id is None
        assert holds.open_reason(world.ctx.vault, shredded) is None
        assert holds.open_reason(world.ctx.vault, session.get_one(LegalHold, running)) == REASON
        leaf = session.scalar(
            select(AuditLeaf).where(AuditLeaf.kind == "hold.shredded").order_by(AuditLeaf.id.desc())
        )
        assert leaf is not None and leaf.request_id is None
        assert str(ended).encode() in leaf.leaf
        assert b"Ana" not in leaf.leaf and PHONE.encode() not in leaf.leaf
        # Once destroyed, it is not chosen again.
        assert shred_ended_holds(session, retention=retention, now=now + timedelta(days=31)) == []
        session.rollback()


def test_an_override_reason_is_destroyed_with_its_request(world: World) -> None:
    _, request_id = overridden(world)
    with world.session() as session:
        shred_expired(session, retention=timedelta(days=30), now=world.clock() + timedelta(days=31))
        wait = wait_of(session, request_id)
        assert wait.override_reason_ciphertext is None and wait.override_reason_key_id is None
        assert holds.open_override_reason(world.ctx.vault, wait) is None
        session.rollback()
