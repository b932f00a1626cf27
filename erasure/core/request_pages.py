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

A deadline filter (`due_before`) is a range on another column than the order, and the rows it
leaves out are the newest ones (requests not yet due), so alone it would make the first page read
all of them. `due_before` adds a bound every match satisfies: created_at < instant - the smallest
lead (due_at - created_at) of any request, read in O(log n) from its own index (migration
`list_indexes_at_scale`); the ordered scan then starts at the first possible match.

The console may also page by deadline (`order="due"`, either direction): the same row comparison
on (due_at, id), which the due_at index serves; the cursor then carries a due date.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, select, tuple_, union_all
from sqlalchemy.orm import joinedload, selectinload

from erasure.core.models import ErasureRequest, RequestStatus, Target

Cursor = tuple[datetime, uuid.UUID]
#: The column a page is ordered by (then by id): when the request arrived, or its deadline.
Order = Literal["created", "due"]


@dataclass(frozen=True)
class PageQuery:
    """One page: equality/range conditions, the statuses (each its own ordered index scan), the
    cursor and the page size."""

    conditions: Sequence[ColumnElement[bool]] = ()
    statuses: Sequence[RequestStatus] = ()
    after: Cursor | None = None
    limit: int = 50
    order: Order = "created"
    ascending: bool = False


NEWEST_FIRST = (ErasureRequest.created_at.desc(), ErasureRequest.id.desc())


def due_before(moment: datetime) -> list[ColumnElement[bool]]:
    """Requests due before `moment`, as conditions an ordered scan on created_at can start from.

    due_at < moment and due_at - created_at >= the smallest lead in the table give
    created_at < moment - smallest lead: an index condition, exact whatever the leads are (a
    request recorded after its deadline, e.g. an old ticket imported late, makes the smallest
    lead negative and the bound looser, never wrong). The scalar subquery runs once per
    statement (an InitPlan), on the index of the lead; an empty table gives NULL and no rows.
    """
    lead = ErasureRequest.due_at - ErasureRequest.created_at
    smallest_lead = select(func.min(lead)).scalar_subquery()
    return [ErasureRequest.due_at < moment, ErasureRequest.created_at < moment - smallest_lead]


def sort_column(order: Order) -> Any:
    return ErasureRequest.due_at if order == "due" else ErasureRequest.created_at


def cursor_of(row: ErasureRequest, order: Order) -> Cursor:
    """The cursor that continues after `row` in a page ordered by `order`."""
    return (row.due_at if order == "due" else row.created_at, row.id)


def after_cursor(
    after: Cursor, order: Order = "created", ascending: bool = False
) -> ColumnElement[bool]:
    """Rows strictly after the cursor in the page's order, as a row comparison (an index
    condition on every (..., created_at, id) index, or on the due_at index)."""
    value, last_id = after
    key = tuple_(sort_column(order), ErasureRequest.id)
    return key > tuple_(value, last_id) if ascending else key < tuple_(value, last_id)


def _ordering(column: Any, id_column: Any, ascending: bool) -> tuple[Any, Any]:
    return (column.asc(), id_column.asc()) if ascending else (column.desc(), id_column.desc())


def page_select(query: PageQuery, *, with_targets: bool = False) -> Select[Any]:
    """The page's statement: erasure requests with their org, in the page's order (newest first
    unless asked otherwise), at most `limit`."""
    keyset = (
        [after_cursor(query.after, query.order, query.ascending)] if query.after is not None else []
    )
    column = sort_column(query.order)
    ordering = _ordering(column, ErasureRequest.id, query.ascending)
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
            .order_by(*ordering)
            .limit(query.limit)
        )
    branches = [
        select(ErasureRequest.id, column.label("sort_key"))
        .where(*query.conditions, *keyset, ErasureRequest.status == status)
        .order_by(*ordering)
        .limit(query.limit)
        for status in statuses
    ]
    keys = union_all(*branches).subquery("page_keys")
    return (
        select(ErasureRequest)
        .join(keys, keys.c.id == ErasureRequest.id)
        .options(*options)
        .order_by(*_ordering(keys.c.sort_key, keys.c.id, query.ascending))
        .limit(query.limit)
    )
