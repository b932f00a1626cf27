"""A request linked to one that gets cancelled goes on at once, not after the stall sweep."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sqlalchemy import select

from erasure.core.models import ErasureRequest, RequestStatus
from erasure.lifecycle.operations import cancel as cancel_request
from erasure.pipeline.states import lock_request
from tests.support.pipeline import FAST, World

#: The sweep would re-publish a stalled request only after an hour: anything that goes on does
#: so because it was told to, at once.
NO_SWEEP = dataclasses.replace(FAST, stall_s=3600.0)


def _world(make_world: Callable[..., World], **options: object) -> World:
    return make_world(tunables=NO_SWEEP, **options)


def test_a_duplicate_whose_resolve_was_missed_goes_on_when_its_primary_is_cancelled(
    make_world: Callable[..., World],
) -> None:
    world = _world(make_world)
    primary = world.submit("+14155550013")
    duplicate = world.submit("+14155550013")
    with world.session() as session:
        assert session.get(ErasureRequest, duplicate).duplicate_of_id == primary  # type: ignore[union-attr]
    # The duplicate's resolve message meets its row locked (another worker holds it), so that
    # delivery changes nothing: the request stays `received`.
    with world.session() as holder, holder.begin():
        lock_request(holder, duplicate)
        world.relay()
    assert world.status(duplicate) is RequestStatus.RECEIVED
    with world.session() as session, session.begin():
        cancel_request(session, primary, reason="opened twice", vault=world.ctx.vault)
    statuses = world.wait_for([duplicate], timeout=60)
    assert statuses[duplicate] is RequestStatus.COMPLETED
    with world.session() as session:
        promoted = session.scalar(select(ErasureRequest).where(ErasureRequest.id == duplicate))
        assert promoted is not None and promoted.duplicate_of_id is None  # the group's new root


def test_a_duplicate_awaiting_its_primarys_approval_is_promoted_when_it_is_cancelled(
    make_world: Callable[..., World],
) -> None:
    """It was waiting for an approval that will never come; it now awaits its own, at once."""
    world = _world(make_world, requires_approval=True)
    primary = world.submit("+14155550014")
    duplicate = world.submit("+14155550014")
    world.wait_for([primary, duplicate], [RequestStatus.AWAITING_APPROVAL])
    with world.session() as session, session.begin():
        cancel_request(session, primary, reason="opened twice", vault=world.ctx.vault)
    with world.session() as session:
        promoted = session.get(ErasureRequest, duplicate)
        assert promoted is not None
        assert promoted.duplicate_of_id is None
        assert promoted.status is RequestStatus.AWAITING_APPROVAL
