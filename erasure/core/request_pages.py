"""Pages of erasure requests, newest first, that cost the same at a million rows as at ten thousand.

Every list (the API's, the console's and its CSV export) pages on the key (created_at, id),
descending. Three things keep a page flat as the table grows:

- The cursor is a row comparison, `(created_at, id) < (c, i)`. Postgres turns it into an index
  condition (a start position in the btree); the equivalent `created_at < c OR (created_at = c
  AND id < i)` is only a filter, so a page at depth d reads d rows first.
- Each filter has an index that starts with its equality column and continues with
  (created_at, id) (migration `keyset_list_indexes`), so the scan is ordered and stops after
  `limit` rows. Several statuses are one index scan per status (UNION ALL, each branch limited),
  merged by a top-N sort of at most statuses x limit rows, because Postgres 15 cannot return an
  `IN` list in the order of the columns after it.
- What a page shows is loaded with it: the org joined in the same statement, the targets' states
  in one more (`with_targets`), never one lazy load per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select, tuple_, union_all
from sqlalchemy.orm import joinedload, selectinload

from erasure.core.models import ErasureRequest, RequestStatus, Target

Cursor = tuple[datetime, uuid.UUID]


@dataclass(frozen=True)
class PageQuery:
    """One page: equality/range conditions, the statuses (each its own ordered index scan), the
    cursor and the page size."""

    conditions: Sequence[ColumnElement[bool]] = ()
    statuses: Sequence[RequestStatus] = ()
    after: Cursor | None = None
    limit: int = 50


NEWEST_FIRST = (ErasureRequest.created_at.desc(), ErasureRequest.id.desc())


def after_cursor(after: Cursor) -> ColumnElement[bool]:
    """Rows strictly after the cursor in newest-first order, as a row comparison (an index
    condition on every (..., created_at, id) index)."""
    created_at, last_id = after
    return tuple_(ErasureRequest.created_at, ErasureRequest.id) < tuple_(created_at, last_id)


def page_select(query: PageQuery, *, with_targets: bool = False) -> Select[Any]:
    """The page's statement: erasure requests with their org, newest first, at most `limit`."""
    keyset = [after_cursor(query.after)] if query.after is not None else []
    statuses = list(dict.fromkeys(query.statuses))
    options: list[Any] = [joinedload(ErasureRequest.org, innerjoin=True)]
    if with_targets:
        # Only what a rendered request shows of its targets: their states, counted per state.
        options.append(
            selectinload(ErasureRequest.targets).load_only(Target.status, Target.request_id)
        )
    if len(statuses) <= 1:
        where = [*query.conditions, *keyset]
        if statuses:
            where.append(ErasureRequest.status == statuses[0])
        return (
            select(ErasureRequest)
            .where(*where)
            .options(*options)
            .order_by(*NEWEST_FIRST)
            .limit(query.limit)
        )
    branches = [
        select(ErasureRequest.id, ErasureRequest.created_at)
        .where(*query.conditions, *keyset, ErasureRequest.status == status)
        .order_by(*NEWEST_FIRST)
        .limit(query.limit)
        for status in statuses
    ]
    keys = union_all(*branches).subquery("page_keys")
    return (
        select(ErasureRequest)
        .join(keys, keys.c.id == ErasureRequest.id)
        .options(*options)
        .order_by(keys.c.created_at.desc(), keys.c.id.desc())
        .limit(query.limit)
    )
