"""Submitting an access request straight into a pipeline test world."""

from __future__ import annotations

import uuid

from erasure import workflow
from erasure.access.intake import submit_access
from erasure.core.models import IdentifierKind, Regulation, Source
from erasure.identifiers import normalize
from tests.support.pipeline import World


def submit_access_for(world: World, phone: str) -> uuid.UUID:
    with world.session() as session:
        access = submit_access(
            session,
            workflow.Submission(
                identifiers=[
                    workflow.Identifier(
                        IdentifierKind.PHONE, normalize(IdentifierKind.PHONE, phone)
                    )
                ],
                regulation=Regulation.GDPR,
                source=Source.API,
                org=world.org_name,
            ),
            protection=workflow.Protection(world.ctx.vault, world.ctx.pseudonym_key),
            default_org=None,
        )
        session.commit()
        return access.id
