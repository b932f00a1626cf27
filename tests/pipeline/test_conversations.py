"""Conversation-level erasure against the sandbox: conversations deleted by DELETE /conversations,
confirmed by read-back and certified, the Messaging end user kept."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select

from erasure.audit import certify
from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.audit.models import AuditLeaf
from erasure.core.models import (
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    RequestStatus,
    TargetKind,
    TargetStatus,
)
from erasure.salesforce.sandbox.seed import SeededEndUser, add_end_user
from tests.support.audited_requests import checkpoint_now
from tests.support.pipeline import World, wait_final
from tests.support.processes import Worker

PHONE = "+14155557001"
CONVERSATIONS = ErasureScope.CONVERSATIONS


def _seed(world: World, *, conversations: int = 2) -> SeededEndUser:
    org = world.sandbox.org
    with org.lock:
        return add_end_user(org.data, platform_key=PHONE, phone=PHONE, conversations=conversations)


def _exists(world: World, sobject: str, record_id: str) -> bool:
    with world.sandbox.org.lock:
        return world.sandbox.org.data.find(sobject, record_id) is not None


def _certificate(world: World, request_id: uuid.UUID, key: SigningKey) -> dict[str, object]:
    with world.session() as session, session.begin():
        checkpoint_now(session, key)
    with world.session() as session:
        return certify.certificate_for(session, request_id, signing_key=key)


def test_every_conversation_of_the_subject_goes_and_the_end_user_stays(
    world: World, signing_key: SigningKey
) -> None:
    seeded = _seed(world)
    request_id = world.submit(PHONE, scope=CONVERSATIONS)
    world.wait_for([request_id])

    targets = world.targets(request_id)
    assert sorted(t.salesforce_id or "" for t in targets) == sorted(seeded.conversation_ids)
    assert {t.kind for t in targets} == {TargetKind.CONVERSATION}
    assert all(t.status is TargetStatus.DELETED and t.log_status == "COMPLETED" for t in targets)
    accepted = world.sandbox.org.counters()["accepted_ids"]
    assert sorted(accepted.get("delete_conversations", [])) == sorted(seeded.conversation_ids)
    assert accepted.get("delete_participants", []) == []
    assert not any(_exists(world, "Conversation", c) for c in seeded.conversation_ids)
    assert _exists(world, "MessagingEndUser", seeded.end_user_id)

    document = _certificate(world, request_id, signing_key)
    report = verify_certificate(document, signing_key.verifier())
    assert report.ok, report.findings
    request_part = document["request"]
    assert isinstance(request_part, dict) and request_part["scope"] == "conversations"
    entries = document["targets"]
    assert isinstance(entries, list) and len(entries) == 2
    for entry in entries:
        assert entry["kind"] == "conversation"
        assert entry["status"] == "deleted" and entry["read_back"] == "absent"
        assert entry["salesforce_log_id"] and entry["record"]
    # The leaves name the conversations by pseudonym only.
    with world.session() as session:
        blobs = session.scalars(select(AuditLeaf.leaf).where(AuditLeaf.request_id == request_id))
        text = b"".join(blobs)
    for conversation_id in seeded.conversation_ids:
        assert conversation_id[:15].encode() not in text
    assert PHONE.encode() not in text


def test_only_the_listed_conversation_goes(world: World) -> None:
    seeded = _seed(world)
    erased, kept = seeded.conversation_ids
    request_id = world.submit(
        PHONE, scope=CONVERSATIONS, also=[(IdentifierKind.CONVERSATION_ID, erased[:15])]
    )
    world.wait_for([request_id])
    (target,) = world.targets(request_id)
    assert target.kind is TargetKind.CONVERSATION and target.salesforce_id == erased
    assert target.status is TargetStatus.DELETED
    assert not _exists(world, "Conversation", erased)
    assert _exists(world, "Conversation", kept)
    assert _exists(world, "MessagingEndUser", seeded.end_user_id)


def test_a_conversation_that_is_not_there_is_completed_no_data(world: World) -> None:
    seeded = _seed(world, conversations=1)
    with world.sandbox.org.lock:
        gone = world.sandbox.org.data.new_id("Conversation")  # an id no record has
    request_id = world.submit(
        PHONE, scope=CONVERSATIONS, also=[(IdentifierKind.CONVERSATION_ID, gone)]
    )
    world.wait_for([request_id], [RequestStatus.COMPLETED_NO_DATA])
    with world.session() as session:
        request = session.get(ErasureRequest, request_id)
        assert request is not None
        assert request.outcome == (
            "no listed conversation is the subject's: 1 not found; nothing deleted"
        )
    assert world.calls() == []
    assert _exists(world, "Conversation", seeded.conversation_ids[0])


@pytest.mark.worker
@pytest.mark.slow
def test_conversations_are_erased_through_a_real_worker(
    make_world: Callable[..., World], make_worker: Callable[..., Worker]
) -> None:
    world = make_world()
    seeded = _seed(world)
    make_worker()
    request_id = world.submit(PHONE, scope=CONVERSATIONS)
    statuses = wait_final(world, [request_id], timeout=60)
    assert statuses[request_id] is RequestStatus.COMPLETED
    targets = world.targets(request_id)
    assert sorted(t.salesforce_id or "" for t in targets) == sorted(seeded.conversation_ids)
    assert all(t.status is TargetStatus.DELETED for t in targets)
    assert _exists(world, "MessagingEndUser", seeded.end_user_id)
    with world.session() as session:
        kinds = [
            json.loads(leaf)["kind"]
            for leaf in session.scalars(
                select(AuditLeaf.leaf)
                .where(AuditLeaf.request_id == request_id)
                .order_by(AuditLeaf.id)
            )
        ]
    assert kinds[0] == "request.received" and kinds[-1] == "request.completed"
