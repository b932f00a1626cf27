"""Requests to write notices about: one with an email address, one with a phone number only."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from erasure import workflow
from erasure.core.models import ErasureRequest, IdentifierKind, Regulation, Source
from erasure.identifiers import normalize
from erasure.workflow import Protection

#: Canaries: neither may appear anywhere but in the mail itself (and sealed in the database).
EMAIL = "notice.canary.k3p9@example.org"
REASON = "the canary reason zq81 spans three systems"


def submit(
    session: Session,
    protection: Protection,
    org: str,
    *,
    email: str | None = EMAIL,
    reference: str | None = "PRIV-77",
) -> ErasureRequest:
    identifiers = (
        [workflow.Identifier(IdentifierKind.EMAIL, normalize(IdentifierKind.EMAIL, email))]
        if email
        else [
            workflow.Identifier(
                IdentifierKind.PHONE, normalize(IdentifierKind.PHONE, "+14155550177")
            )
        ]
    )
    return workflow.submit_request(
        session,
        workflow.Submission(
            identifiers=identifiers,
            regulation=Regulation.GDPR,
            source=Source.API,
            org=org,
            received_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
            reference_system="jira" if reference else None,
            reference_id=reference,
        ),
        protection=protection,
        default_org=None,
    )
