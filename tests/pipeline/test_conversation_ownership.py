"""Conversation ids at intake name conversations of the request's subject. Over real HTTP to the
app, resolved and deleted against the sandbox: an id of another subject's conversation, or one no
record has, is left alone (each says why in the resolve leaf, by pseudonym), and the subject's
own listed conversations are still erased."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, RequestStatus, TargetStatus
from erasure.pipeline.states import record_pseudonym
from erasure.salesforce.sandbox.seed import SeededEndUser, add_end_user
from tests.support.officers import Caller, caller
from tests.support.pipeline import World
from tests.support.web import LiveServer

SUBJECT = "+14155557101"
SOMEONE_ELSE = "+14155557102"


@pytest.fixture
def officer(world: World, live_server: LiveServer) -> Iterator[Caller]:
    made = caller(world, live_server.url)
    yield made
    made.http.close()


def _seed(world: World, phone: str) -> SeededEndUser:
    with world.sandbox.org.lock:
        return add_end_user(
            world.sandbox.org.data, platform_key=phone, phone=phone, conversations=2
        )


def _exists(world: World, record_id: str) -> bool:
    with world.sandbox.org.lock:
        return world.sandbox.org.data.find("Conversation", record_id) is not None


def _leaf(world: World, request_id: uuid.UUID, kind: str) -> dict[str, object]:
    with world.session() as session:
        for blob in session.scalars(
            select(AuditLeaf.leaf).where(AuditLeaf.request_id == request_id)
        ):
            leaf = json.loads(blob)
            if leaf["kind"] == kind:
                return dict(leaf)
    raise AssertionError(f"no {kind} leaf")


def _erase(officer: Caller, world: World, conversations: list[str]) -> uuid.UUID:
    response = officer.post(
        "/v1/erasure-requests",
        {
            "subject": {"phone": SUBJECT},
            "regulation": "gdpr",
            "org": world.org_name,
            "conversations": conversations,
        },
    )
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def test_another_subjects_conversation_and_an_unknown_id_are_left_alone(
    world: World, officer: Caller
) -> None:
    mine = _seed(world, SUBJECT)
    theirs = _seed(world, SOMEONE_ELSE)
    with world.sandbox.org.lock:
        unknown = world.sandbox.org.data.new_id("Conversation")
    erased = mine.conversation_ids[0]
    request_id = _erase(officer, world, [erased, theirs.conversation_ids[0], unknown])
    world.wait_for([request_id])

    (target,) = world.targets(request_id)
    assert target.salesforce_id == erased and target.status is TargetStatus.DELETED
    assert not _exists(world, erased)
    assert _exists(world, mine.conversation_ids[1])  # not listed
    assert all(_exists(world, c) for c in theirs.conversation_ids)  # never another subject's
    accepted = world.sandbox.org.counters()["accepted_ids"]["delete_conversations"]
    assert accepted == [erased]

    resolved = _leaf(world, request_id, "request.resolved")
    data = resolved["data"]
    assert isinstance(data, dict)
    key = world.ctx.pseudonym_key
    assert sorted(data["left_alone"], key=lambda item: item["why"]) == [
        {"record": record_pseudonym(key, unknown), "why": "not_found"},
        {"record": record_pseudonym(key, theirs.conversation_ids[0]), "why": "not_the_subjects"},
    ]
    text = json.dumps(resolved)
    for raw in (theirs.conversation_ids[0], unknown, erased):
        assert raw[:15] not in text


def test_only_other_subjects_conversations_complete_with_no_data_and_say_why(
    world: World, officer: Caller
) -> None:
    _seed(world, SUBJECT)
    theirs = _seed(world, SOMEONE_ELSE)
    request_id = _erase(officer, world, list(theirs.conversation_ids))
    world.wait_for([request_id], [RequestStatus.COMPLETED_NO_DATA])
    assert world.calls() == []
    assert all(_exists(world, c) for c in theirs.conversation_ids)
    shown = officer.get(f"/v1/erasure-requests/{request_id}").json()
    assert shown["outcome"] == (
        "no listed conversation is the subject's: 2 belong to another subject; nothing deleted"
    )
    with world.session() as session:
        request = session.get_one(ErasureRequest, request_id)
        assert request.outcome == shown["outcome"]
    data = _leaf(world, request_id, "request.completed_no_data")["data"]
    assert isinstance(data, dict) and len(data["left_alone"]) == 2
