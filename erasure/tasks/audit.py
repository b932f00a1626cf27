"""The audit log's tasks: sequence queued leaves into the Merkle tree, sign checkpoints."""

from __future__ import annotations

import logging

from celery import shared_task

from erasure import task_names
from erasure.audit import store as audit_store
from erasure.celery_app import ErasureTask

logger = logging.getLogger(__name__)


@shared_task(name=task_names.SEQUENCE_AUDIT, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def sequence_audit(self: ErasureTask) -> int:
    """Give queued audit leaves their positions in the Merkle tree (one sequencer at a time)."""
    total = 0
    with self.new_session() as session:
        while count := audit_store.sequence(session):
            session.commit()
            total += count
    return total


@shared_task(name=task_names.CHECKPOINT_AUDIT, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def checkpoint_audit(self: ErasureTask) -> int:
    """Sign a checkpoint of the tree if it grew; returns the signed size, or 0."""
    resources = self.resources()
    if resources.signing_key is None:
        logger.warning("no audit signing key configured: checkpoints are not being signed")
        return 0
    with self.new_session() as session, session.begin():
        while audit_store.sequence(session):
            pass
        checkpoint = audit_store.sign_checkpoint(
            session, resources.signing_key, origin=resources.settings.audit_origin
        )
        return checkpoint.size if checkpoint else 0
