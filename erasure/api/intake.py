"""The one intake every `POST /v1/...-requests` goes through: the submission from the body, the
Idempotency-Key, and one pipelined write transaction (`erasure.db.pipelined`), then the relay.

The views declare `requires(..., overlaps_limiter=True)`: the rate limiter's Redis round trip
travels with the first database round trip instead of before it.

Two round trips for the whole transaction, which is the pipeline's own (`pipelined(...,
whole_transaction=True)`: no BEGIN, and the Sync that ends the pipeline commits): the key's claim
and what the request kind reads first (the org; for an erasure also the subject locks and the
duplicate lookup) as one statement (`idempotency.Claim.send`); then the writes (the request, its
sealed identifiers, its audit leaf, its outbox row and the idempotency record) as another,
committed with the Sync. Two statements in all, for either kind, however many identifiers, with
or without a key: each statement costs the API worker CPU (psycopg builds, sends and reads it),
whatever it does.
Until the writes, the block sends only reads, locks and the removal of an expired key record, so
a request refused on the way (a replay, a 409, an unknown org, the limiter) commits no more. A replay
or a 409 has sent its first reads in vain, which for an erasure costs it a wait only while
another request for the same subject is being written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from flask import Response
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.api import idempotency
from erasure.api.auth import actor, current_key
from erasure.core.models import ErasureScope, IdentifierKind, Source
from erasure.db import Insert, Send, insert_together, pipelined
from erasure.web import limits
from erasure.web.body import read_body
from erasure.web.inputs import ErasureRequestIn
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response


@dataclass(frozen=True)
class Accepted:
    """The 202 answer to a new request (also what a replay of its key answers)."""

    body: dict[str, Any]
    location: str


class Pending(Protocol):
    """A request kind's submission, its first reads sent: `prepare` reads them and gives the
    answer and the writes that record it, which `accept` sends (with the key's record) as one
    statement, in its transaction, before committing."""

    def prepare(self) -> tuple[Accepted, list[Insert]]: ...


#: Starts a request kind's submission on the pipelined connection: sends its first reads through
#: the `Send` given (the connection's `execute`, or the key's claim carrying them).
Start = Callable[[Session, psycopg.Connection[Any], workflow.Submission, Send], Pending]


def submission(
    body: ErasureRequestIn,
    identifiers: list[tuple[IdentifierKind, str]],
    *,
    scope: ErasureScope = ErasureScope.SUBJECT,
) -> workflow.Submission:
    """What the API body asks for, submitted by the calling API key."""
    reference = body.reference
    return workflow.Submission(
        identifiers=[workflow.Identifier(kind, value) for kind, value in identifiers],
        scope=scope,
        regulation=body.regulation,
        source=Source.API,
        org=body.org,
        received_at=body.received_at,
        reference_system=reference.system if reference else None,
        reference_id=reference.id if reference else None,
        reference_url=str(reference.url) if reference and reference.url else None,
        notes=body.notes,
        api_key_id=current_key().id,
        submitted_by=actor(),
    )


def accept(wanted: workflow.Submission, start: Start, *, domain: bytes = b"") -> Response:
    """Record the submission once per Idempotency-Key and answer 202 (or replay the first
    answer, or 409/422; see `erasure.api.idempotency`). `domain` prefixes the body in the key's
    fingerprint, so one key never replays one kind's answer for another."""
    settings = web_resources().settings
    session = get_session()
    api_key_id = current_key().id
    key = idempotency.header_key()
    print_ = idempotency.fingerprint(domain + read_body(max_bytes=settings.max_body_bytes))
    with pipelined(session, whole_transaction=True) as connection:
        claim = (
            idempotency.Claim(connection, api_key_id=api_key_id, key=key, print_=print_)
            if key is not None
            else None
        )
        pending = start(
            session, connection, wanted, claim.send if claim is not None else connection.execute
        )
        # The limiter's verdict (`requires(overlaps_limiter=True)`) came back while the reads
        # above were on their way; a refused request stops here, before it writes.
        limits.settle()
        replay = claim.outcome() if claim is not None else None
        if replay is None:
            accepted, inserts = pending.prepare()
            if key is not None:
                inserts.append(
                    idempotency.record_insert(
                        api_key_id=api_key_id,
                        key=key,
                        print_=print_,
                        status=202,
                        body=accepted.body,
                        location=accepted.location,
                        ttl_s=settings.idempotency_ttl_s,
                    )
                )
            insert_together(connection, inserts)
    # After the block: a commit hands the connection back to the pool, which must not find it
    # in pipeline mode. When `pipelined` took a connection of its own, the session has begun
    # nothing and there is nothing to commit or roll back.
    if replay is not None:
        if session.in_transaction():
            session.rollback()  # releases the locks; nothing was written
        return json_response(replay.status, replay.body, location=replay.location, replayed=True)
    if session.in_transaction():
        session.commit()
    kick_relay()
    return json_response(202, accepted.body, location=accepted.location)
