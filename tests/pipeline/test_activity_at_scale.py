"""The scheduler's "made active by an access read" check stays one pass over the org's active
records, however many targets and however many records access requests have read. It was an
anti-join Postgres may run once per candidate target: with the targets just written (their
statistics not yet gathered, so Postgres expects one), each run read every activity row of the
org, and `conversation_activity` keeps a row for every record any access request ever read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from erasure.core.models import Org, Target, TargetStatus
from erasure.pipeline.scheduler import _made_active
from tests.support.list_scale import scans_of, seed_pending_records


def test_the_activity_check_reads_the_org_s_activity_once_however_many_targets(
    db_session: Session, org: Org
) -> None:
    now = datetime.now(UTC)
    seed_pending_records(db_session, org, 3000)  # none analysed yet
    # Records access requests read over time: most long inactive, the first 100 targets' active.
    db_session.execute(
        text(
            "INSERT INTO conversation_activity (org_id, salesforce_id, active_until) "
            "SELECT :org, '0PA' || lpad(to_hex(g), 12, '0'), "
            "CASE WHEN g <= 100 THEN :later ELSE :earlier END "
            "FROM generate_series(1, 2000) AS g"
        ),
        {"org": org.id, "later": now + timedelta(minutes=20), "earlier": now - timedelta(days=3)},
    )
    pending = select(Target.salesforce_id).where(
        Target.org_id == org.id,
        Target.kind == "messaging_end_user",
        Target.status == TargetStatus.PENDING,
        ~_made_active(now),
    )
    sent = set(db_session.scalars(pending))
    assert len(sent) == 3000 - 100
    assert "0PA" + format(1, "x").rjust(12, "0") not in sent
    activity_read = scans_of(db_session, pending, "conversation_activity")
    assert activity_read <= 1, activity_read
