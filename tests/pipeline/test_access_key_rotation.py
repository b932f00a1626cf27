"""Rotating the encryption key re-seals what access requests keep (the subject's identifiers, the
officer's notes, the entries read and the export) like erasure requests' data: once
`erasure encryption-keys reencrypt` has run, the old key can be removed and the export still
opens. Nothing is committed: the rows are checked in the session that re-sealed them."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select

from erasure import free_text
from erasure.access import retrieve
from erasure.access.cancel import cancel_access
from erasure.access.disclose import open_export
from erasure.access.models import AccessIdentifier, AccessRead, AccessRequest, AccessStatus
from erasure.config import Settings
from erasure.identifiers import Sealed, Vault, identifier_context
from erasure.key_rotation import reencrypt_batch
from erasure.salesforce.sandbox.seed import demo_phone
from tests.support.access import submit_access_for
from tests.support.pipeline import World


def test_reencrypt_reseals_access_identifiers_and_exports(world: World, settings: Settings) -> None:
    access_id = submit_access_for(world, demo_phone(1))
    retrieve.run(world.ctx, retrieve.AccessTunables())
    new_key = os.urandom(32)
    rotated = Vault({"new": new_key, **settings.encryption_key_bytes})
    only_new = Vault({"new": new_key})  # what is left once the old key is removed
    with world.session() as session:
        access = session.get_one(AccessRequest, access_id)
        assert access.status is AccessStatus.READY
        before = open_export(world.ctx.vault, access)
        assert before is not None
        count = reencrypt_batch(session, rotated)
        assert count.access >= 2  # its identifier and its export (others may be older)
        assert reencrypt_batch(session, rotated).total == 0
        session.refresh(access)
        after = open_export(only_new, access)
        assert after is not None and after.json_text == before.json_text
        for row in session.scalars(
            select(AccessIdentifier).where(AccessIdentifier.request_id == access_id)
        ):
            assert row.key_id == "new" and row.ciphertext is not None
            only_new.open(
                Sealed("new", row.ciphertext), context=identifier_context(access_id, row.kind)
            )
        keys = session.scalars(
            select(AccessRead.key_id).where(
                AccessRead.request_id == access_id, AccessRead.entries_ciphertext.is_not(None)
            )
        ).all()
        assert all(key == "new" for key in keys)
        session.rollback()


def test_reencrypt_reseals_an_access_cancel_reason(world: World, settings: Settings) -> None:
    access_id = submit_access_for(world, demo_phone(2))
    reason = "the subject withdrew the request by letter"
    with world.session() as session:
        cancel_access(
            session, access_id, reason=reason, vault=world.ctx.vault, retention=timedelta(days=30)
        )
        session.commit()
    new_key = os.urandom(32)
    rotated = Vault({"new": new_key, **settings.encryption_key_bytes})
    only_new = Vault({"new": new_key})
    with world.session() as session:
        assert reencrypt_batch(session, rotated).access >= 1
        access = session.get_one(AccessRequest, access_id)
        assert access.cancel_reason_key_id == "new"
        assert free_text.open_cancel_reason(only_new, access) == reason
        session.rollback()
