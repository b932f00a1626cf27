"""The legal-hold check the scheduler adds to its reads stays one pass over the held requests,
however many targets the read considers. It was an anti-join Postgres ran once per candidate
target, each reading every target of the org: with 4,500 pending targets just written (their
statistics not yet gathered), the dispatcher's locking read took 0.8 s, and a pool of three
execution users sent 26 delete calls in two quota windows instead of 60 (`bench/pipeline.py`)."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from erasure.core.models import Org, Target, TargetStatus
from erasure.pipeline.holds import record_held
from tests.support.list_scale import scans_of, seed_pending_records


def test_the_held_check_reads_the_held_requests_once_however_many_targets(
    db_session: Session, org: Org
) -> None:
    seed_pending_records(db_session, org, 3000)  # none analysed yet
    held_record = db_session.execute(
        text(
            "UPDATE erasure_requests SET status = 'on_hold' WHERE id = "
            "(SELECT request_id FROM targets WHERE org_id = :org AND salesforce_id IS NOT NULL "
            "ORDER BY salesforce_id LIMIT 1) "
            "RETURNING (SELECT salesforce_id FROM targets t WHERE t.request_id = "
            "erasure_requests.id AND t.salesforce_id IS NOT NULL)"
        ),
        {"org": org.id},
    ).scalar_one()
    pending = (
        select(Target.salesforce_id)
        .where(
            Target.org_id == org.id,
            Target.kind == "messaging_end_user",
            Target.status == TargetStatus.PENDING,
            ~record_held(),
        )
        .with_for_update(skip_locked=True)
    )
    sent = set(db_session.scalars(pending))
    assert held_record not in sent and len(sent) == 3000 - 1
    requests_read = scans_of(db_session, pending, "erasure_requests")
    assert requests_read <= 1, requests_read
