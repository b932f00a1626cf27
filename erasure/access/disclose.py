"""Finish an access request: build the export from the sealed reads, seal it, and record what
was disclosed (counts and the export's SHA-256, never its content) in the audit log."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.access import export
from erasure.access.models import AccessRead, AccessRequest, AccessStatus, ReadStatus
from erasure.audit import leaves
from erasure.identifiers import Sealed, Vault


def read_context(read_id: uuid.UUID) -> str:
    return f"access-read:{read_id}"


def export_context(request_id: uuid.UUID) -> str:
    return f"access-export:{request_id}"


def finish(
    session: Session, vault: Vault, access: AccessRequest, *, now: datetime, retention: timedelta
) -> None:
    """Every read is done (read or erased): seal the export, or end with no data. Does not
    commit; the caller holds the request's row lock."""
    reads = session.scalars(
        select(AccessRead).where(AccessRead.request_id == access.id).with_for_update()
    ).all()
    done = [r for r in reads if r.status is ReadStatus.READ]
    erased = sum(1 for r in reads if r.status is ReadStatus.ERASED)
    access.expires_at = now + retention
    access.next_attempt_at = None
    if not done and access.end_users == 0:
        access.status = AccessStatus.COMPLETED_NO_DATA
        access.outcome = "no Messaging end user was found for the subject"
        leaves.append(
            session,
            kind="access.completed_no_data",
            request_id=access.id,
            at=now,
            data={"end_users": 0},
        )
        return
    conversations = [
        export.Conversation(
            end_user_id=r.end_user_id or "",
            conversation_id=r.conversation_id or "",
            entries=json.loads(
                vault.open(
                    Sealed(r.key_id or "", r.entries_ciphertext or b""), context=read_context(r.id)
                )
            ),
        )
        for r in done
    ]
    document = export.build(
        request_id=str(access.id),
        regulation=access.regulation.value,
        received_at=access.received_at,
        generated_at=now,
        conversations=conversations,
        erased=erased,
    )
    sealed = vault.seal(document.pack(), context=export_context(access.id))
    access.export_ciphertext, access.export_key_id = sealed.ciphertext, sealed.key_id
    access.export_sha256 = document.sha256
    access.entries = sum(len(c.entries) for c in conversations)
    access.status = AccessStatus.READY
    access.ready_at = now
    access.outcome = "the export is ready"
    for r in done:  # the export holds the content now: one sealed copy, not two
        r.entries_ciphertext, r.key_id = None, None
    leaves.append(
        session,
        kind="access.disclosed",
        request_id=access.id,
        at=now,
        data={
            "end_users": access.end_users,
            "conversations": len(done),
            "conversations_erased": erased,
            "entries": access.entries,
            "export_sha256": document.sha256,
            "expires_at": leaves.timestamp(access.expires_at),
        },
    )


def open_export(vault: Vault, access: AccessRequest) -> export.Export | None:
    if access.export_ciphertext is None or access.export_key_id is None:
        return None
    packed = vault.open(
        Sealed(access.export_key_id, access.export_ciphertext), context=export_context(access.id)
    )
    return export.Export.unpack(packed)
