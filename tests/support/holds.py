"""Placing a legal hold in a pipeline test world, on the world's clock."""

from __future__ import annotations

import uuid
from datetime import timedelta

from erasure.core.models import IdentifierKind
from erasure.identifiers import normalize
from erasure.lifecycle import holds
from erasure.workflow import Protection
from tests.support.pipeline import World

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
