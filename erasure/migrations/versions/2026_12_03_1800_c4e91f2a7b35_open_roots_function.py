"""open_roots_function: the duplicate lookup as a function planned once per connection

Intake looks up, for every submission, the open requests that share an identifier with it
(erasure.workflow._OPEN_ROOTS_SQL calls this function). Sent as a plain statement it was planned
for every submission, which cost Postgres more than running it; Postgres never keeps a generic
plan for it by itself (its guess for any values looks dearer than a plan for the given ones). As
a PL/pgSQL function its query is prepared once per connection, and the function's own settings
make that plan generic and index-only: a generic plan made while the tables are small (a new
deployment) would otherwise scan them, and be kept as they grow. The settings hold only while
the function runs, so nothing else in the caller's transaction is planned this way; JIT is off
because a scan no index can serve would be costed as disabled (10^10) and set it off on every
call.

Revision ID: c4e91f2a7b35
Revises: a11e746da7b6
Create Date: 2026-12-03 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4e91f2a7b35"
down_revision: str | None = "a11e746da7b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each open root (the first request of a linked group) of the requests holding any of `blinds`:
# identifiers through their index, requests by a probe of their key each (a lateral subquery that
# OFFSET 0 keeps from being flattened into a join).
FUNCTION = """
CREATE FUNCTION erasure_open_roots(blinds bytea[], terminal text[])
RETURNS TABLE (id uuid, api_key_id uuid, org_id uuid, created_at timestamptz)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH matched AS MATERIALIZED (
        SELECT r.root, r.status
        FROM unnest(ARRAY(SELECT si.request_id FROM subject_identifiers AS si
                          WHERE si.blind_index = ANY(blinds))) AS s(request_id)
        CROSS JOIN LATERAL (
            SELECT coalesce(er.duplicate_of_id, er.id) AS root, er.status
            FROM erasure_requests AS er WHERE er.id = s.request_id OFFSET 0) AS r
    )
    SELECT q.id, q.api_key_id, q.org_id, q.created_at
    FROM (SELECT DISTINCT m.root FROM matched AS m
          WHERE m.status::text <> ALL(terminal)) AS m
    CROSS JOIN LATERAL (
        SELECT er.id, er.api_key_id, er.org_id, er.created_at
        FROM erasure_requests AS er WHERE er.id = m.root OFFSET 0) AS q;
END
$$
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION erasure_open_roots(bytea[], text[])")
