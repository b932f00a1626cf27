"""The certificate of disclosure of an access request: the erasure certificate's signed envelope
(type `disclosure-certificate`) holding the request's pseudonymous subject, what was disclosed
(counts and the export's SHA-256, never its content) and every leaf of the request with its
inclusion proof, so `erasure audit verify` checks it offline with the public key alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.access.models import (
    AccessIdentifier,
    AccessRead,
    AccessRequest,
    AccessStatus,
    ReadStatus,
)
from erasure.audit import store
from erasure.audit.certificate import DISCLOSURE_TYPE, build_certificate
from erasure.audit.certify import prove_leaves
from erasure.audit.checkpoint import SigningKey
from erasure.audit.leaves import timestamp
from erasure.errors import InvalidTransition

#: An export that was destroyed was still disclosed: its certificate stays available.
CERTIFIABLE = frozenset({AccessStatus.READY, AccessStatus.DESTROYED})


def disclosure_certificate_for(
    session: Session, access: AccessRequest, *, signing_key: SigningKey
) -> dict[str, object]:
    """Raises InvalidTransition (no export yet) or NotReady (leaves not yet checkpointed)."""
    if access.status not in CERTIFIABLE or access.ready_at is None:
        raise InvalidTransition(
            f"a certificate of disclosure is issued once the export is ready; it is "
            f"{access.status.value}"
        )
    proven, checkpoint_note = prove_leaves(session, store.leaves_of_request(session, access.id))
    subject = session.execute(
        select(AccessIdentifier.kind, AccessIdentifier.blind_index).where(
            AccessIdentifier.request_id == access.id
        )
    ).all()
    summary: dict[str, object] = {
        "id": str(access.id),
        "kind": "access",
        "regulation": access.regulation.value,
        "received_at": timestamp(access.received_at),
        "due_at": timestamp(access.due_at),
        "disclosed_at": timestamp(access.ready_at),
        "reference": {"system": access.reference_system, "id": access.reference_id},
        "subject": [
            {"kind": kind.value, "pseudonym": blind.hex()} for kind, blind in sorted(subject)
        ],
        "disclosure": {
            "end_users": access.end_users,
            "conversations": _read(session, access.id),
            "entries": access.entries,
            "export_sha256": access.export_sha256,
        },
    }
    return build_certificate(
        request=summary,
        targets=[],
        leaves=proven,
        checkpoint_note=checkpoint_note,
        signing_key=signing_key,
        issued_at=datetime.now(UTC),
        certificate_type=DISCLOSURE_TYPE,
    )


def _read(session: Session, request_id: uuid.UUID) -> int:
    """Conversations whose entries were disclosed (not those erased before they were read)."""
    return len(
        session.scalars(
            select(AccessRead.id).where(
                AccessRead.request_id == request_id, AccessRead.status == ReadStatus.READ
            )
        ).all()
    )
