"""intake_reads_functions: an intake's first reads in two statements instead of four

Every statement intake sends costs the API worker CPU whatever it does (the driver builds, sends
and reads it) and Postgres a bind and an execute. Two pairs of reads had to be separate
statements only because a statement's snapshot is taken before the locks it asks for are granted,
so a read after a lock had to be a later statement to see what the lock's last holder committed.
A VOLATILE PL/pgSQL function takes a new snapshot for each query it runs, so a lock and the read
that must follow it fit in one call:

- `erasure_claim_key`: an Idempotency-Key's claim, a try-lock (never waits) then, if granted,
  its stored record (erasure.api.idempotency.Claim);
- `erasure_locked_open_roots`: the subject locks, in the order given, then the duplicate lookup
  (`erasure_open_roots`, whose snapshot is then its caller's query's, taken after the locks),
  sent with the org lookup as one statement (erasure.workflow.PendingSubmission).

The record's read has the same planner settings as the duplicate lookup and for the same reason:
a generic plan made while the table is small would scan it, and be kept as it grows.

Revision ID: e7b3d1a94c2f
Revises: c4e91f2a7b35
Create Date: 2026-12-03 23:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e7b3d1a94c2f"
down_revision: str | None = "c4e91f2a7b35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM = """
CREATE FUNCTION erasure_claim_key(lock_key bigint, key_owner uuid, claimed text)
RETURNS TABLE (locked boolean, id bigint, fingerprint bytea, response_status integer,
               response_body jsonb, response_location text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    IF NOT pg_try_advisory_xact_lock(lock_key) THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::bytea, NULL::integer, NULL::jsonb,
                            NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    -- A query of its own: its snapshot is taken now, with the lock held.
    RETURN QUERY
    SELECT true, r.id, r.fingerprint, r.response_status, r.response_body,
           r.response_location::text, r.expires_at
    FROM (SELECT 1) AS one
    LEFT JOIN idempotency_records AS r ON r.api_key_id = key_owner AND r.key = claimed;
END
$$
"""

LOCKED_OPEN_ROOTS = """
CREATE FUNCTION erasure_locked_open_roots(locks bigint[], blinds bytea[], terminal text[])
RETURNS TABLE (id uuid, api_key_id uuid, org_id uuid, created_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    k bigint;
BEGIN
    -- In the order given (the caller sorts them), so two callers never wait on each other in
    -- a cycle.
    FOREACH k IN ARRAY locks LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;
    -- A query of its own: its snapshot is taken now, with every lock held.
    RETURN QUERY SELECT * FROM erasure_open_roots(blinds, terminal);
END
$$
"""


def upgrade() -> None:
    op.execute(CLAIM)
    op.execute(LOCKED_OPEN_ROOTS)


def downgrade() -> None:
    op.execute("DROP FUNCTION erasure_locked_open_roots(bigint[], bytea[], text[])")
    op.execute("DROP FUNCTION erasure_claim_key(bigint, uuid, text)")
