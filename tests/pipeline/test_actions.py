"""Approve, retry, extend, cancel after send, linked duplicates, predictions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from erasure.core.models import ErasureRequest, Regulation, RequestStatus, Target, TargetStatus
from erasure.errors import InvalidTransition
from erasure.lifecycle import operations as actions
from erasure.lifecycle.operations import cancel as cancel_request
from erasure.pipeline import sweep
from tests.support.pipeline import World


def test_an_org_that_requires_approval_waits_for_an_approver(
    make_world: Callable[..., World],
) -> None:
    world = make_world(requires_approval=True)
    request_id = world.submit("+14155550001")
    world.wait_for([request_id], [RequestStatus.AWAITING_APPROVAL])
    assert world.calls() == []
    with world.session() as session, session.begin():
        actions.approve(session, request_id, by="user:test", at=world.ctx.clock())
    world.wait_for([request_id])
    with world.session() as session, session.begin(), pytest.raises(InvalidTransition):
        actions.approve(session, request_id, by="user:test", at=world.ctx.clock())


def test_retry_sends_a_failed_target_again(world: World) -> None:
    request_id = world.submit("+14155550009")  # a blocking child record: FAILED
    world.wait_for([request_id], [RequestStatus.FAILED])
    with world.sandbox.org.lock:
        world.sandbox.org.data.blocking.clear()  # someone removed the child record
    with world.session() as session, session.begin():
        actions.retry(session, request_id, at=world.ctx.clock())
    world.wait_for([request_id])
    (target,) = world.targets(request_id)
    assert target.status is TargetStatus.DELETED


def test_extend_stays_within_the_regulation(world: World) -> None:
    request_id = world.submit("+14155550010", regulation=Regulation.CCPA)
    with world.session() as session:
        request = session.get(ErasureRequest, request_id)
        assert request is not None
        due = request.due_at
    with world.session() as session, session.begin(), pytest.raises(InvalidTransition):
        actions.extend(
            session,
            request_id,
            reason="x",
            until=due + timedelta(days=60),
            vault=world.ctx.vault,
            at=world.ctx.clock(),
        )
    with world.session() as session, session.begin():
        request = actions.extend(
            session,
            request_id,
            reason="many records",
            until=None,
            vault=world.ctx.vault,
            at=world.ctx.clock(),
        )
        assert request.due_at.date() == (due + timedelta(days=45)).date()


def test_cancel_after_send_records_what_could_not_be_stopped(world: World) -> None:
    request_id = world.submit("+14155550011")
    world.relay()
    from erasure.pipeline import scheduler

    scheduler.dispatch(world.ctx)
    with world.session() as session, session.begin():
        request = cancel_request(
            session, request_id, reason="subject withdrew", vault=world.ctx.vault
        )
        assert request.outcome and "could not be stopped" in request.outcome
    for _ in range(20):
        world.step()
    (target,) = world.targets(request_id)
    assert target.status is TargetStatus.DELETED  # the deletion went on, and is on record
    assert world.status(request_id) is RequestStatus.CANCELLED


def test_a_linked_duplicate_resolves_itself_and_shares_the_deletion(world: World) -> None:
    """A duplicate is linked for people to see (`duplicate_of`), and carries itself out: its
    own target, confirmed by the one deletion of the record both requests need."""
    primary = world.submit("+14155550013")
    duplicate = world.submit("+14155550013")
    with world.session() as session:
        linked = session.get(ErasureRequest, duplicate)
        assert linked is not None
        assert linked.duplicate_of_id == primary
    world.wait_for([primary, duplicate])
    with world.session() as session:
        targets = {
            t.request_id: t
            for t in session.scalars(
                select(Target).where(Target.request_id.in_([primary, duplicate]))
            )
        }
    assert targets[duplicate].status is TargetStatus.DELETED
    assert targets[duplicate].log_id == targets[primary].log_id  # one deletion, never twice
    assert len(world.sandbox.org.accepted_ids["delete_participants"]) == 1


def test_predictions_and_the_at_risk_flag(make_world: Callable[..., World]) -> None:
    world = make_world(max_ids_per_call=1, delete_calls_per_window=1, window_s=10 * 86400)
    ids = [world.submit(f"+1415555{n:04d}") for n in (1, 2, 4, 5)]
    world.relay()
    sweep.predict(world.ctx)
    with world.session() as session:
        rows = {
            r.id: r
            for r in session.scalars(select(ErasureRequest).where(ErasureRequest.id.in_(ids)))
        }
    assert all(r.predicted_completion_at is not None for r in rows.values())
    # One call per ten days: the last in the backlog goes out 30 days from now, too close to
    # its one-month deadline; the first goes now. (Equal deadlines: order by target id.)
    ordered = sorted(rows.values(), key=lambda r: r.predicted_completion_at or r.due_at)
    assert ordered[0].is_at_risk is False
    assert ordered[-1].is_at_risk is True
