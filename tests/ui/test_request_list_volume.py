"""The request list at volume: search by ticket or request id, sorting by column with keyset
pages both ways (never OFFSET), a total count, a regulation column, and actions on the selected
rows (cancel and extend after a confirmation, export as CSV)."""

from __future__ import annotations

import html as html_lib
import re
import uuid

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest, Org, RequestStatus
from tests.support.console import SignedIn
from tests.support.list_scale import seed, statements

ROW_LINK = re.compile(
    r'<td data-label="Request"><a class="mono" href="/ui/requests/([0-9a-f-]{36})"'
)


def _ids(page: str) -> list[uuid.UUID]:
    return [uuid.UUID(found) for found in ROW_LINK.findall(page)]


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return html_lib.unescape(found.group(1)) if found else None


def _seed_with_varied_deadlines(db_session: Session, org: Org, n: int) -> None:
    seed(db_session, org, n, same_time_every=3)
    # Deadlines out of creation order, with ties, so a due-date order is a real test.
    db_session.execute(
        text(
            "UPDATE erasure_requests SET due_at = due_at + (abs(hashtext(id::text)) % 40) "
            "* interval '1 day' - (abs(hashtext(id::text)) % 3) * interval '1 day' "
            "WHERE org_id = :org"
        ),
        {"org": org.id},
    )
    db_session.flush()


def test_sorting_by_due_date_pages_forward_and_back_without_offset(
    signed_in: SignedIn, org: Org, db_session: Session, engine: Engine
) -> None:
    client, _ = signed_in(Role.OFFICER)
    _seed_with_varied_deadlines(db_session, org, 130)
    ours = {
        row.id: row.due_at
        for row in db_session.scalars(select(ErasureRequest).where(ErasureRequest.org_id == org.id))
    }
    first = client.get("/ui/requests").get_data(as_text=True)
    assert 'aria-sort="descending"' in first  # newest submitted first, by default
    due_header = re.search(r'<a href="([^"]+)">Due</a>', first)
    assert due_header is not None
    url: str | None = html_lib.unescape(due_header.group(1))
    pages: list[list[uuid.UUID]] = []
    urls: list[str] = []
    seen_sql: list[str] = []
    while url:
        with statements(engine) as seen:
            page = client.get(url).get_data(as_text=True)
        assert len(seen) <= 3, seen  # the user, the count, the page
        seen_sql += seen
        assert 'aria-sort="ascending"' in page
        urls.append(url)
        pages.append(_ids(page))
        url = _link(page, "next")
    assert not any("OFFSET" in sql.upper() for sql in seen_sql)
    walked = [i for page in pages for i in page]
    assert len(walked) == len(set(walked))
    mine = [i for i in walked if i in ours]
    assert len(mine) == len(ours)
    assert [(ours[i], i) for i in mine] == sorted((ours[i], i) for i in mine)
    # Back from the last page gives exactly the page before it.
    last = client.get(urls[-1]).get_data(as_text=True)
    previous = _link(last, "prev")
    assert previous is not None and "before=" in previous
    assert _ids(client.get(previous).get_data(as_text=True)) == pages[-2]
    assert _link(client.get(urls[0]).get_data(as_text=True), "prev") is None


def test_search_total_and_regulation_column(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    made = []
    for ticket in ("PRIV-901", "PRIV-902"):
        response = client.post(
            "/ui/requests/new",
            data={
                "csrf_token": token,
                "phone": "+14155550190",
                "regulation": "ccpa",
                "reference_system": "jira",
                "reference_id": ticket,
            },
        )
        made.append(uuid.UUID(response.headers["Location"].rsplit("/", 1)[-1]))
    by_ticket = client.get("/ui/requests?q=PRIV-902").get_data(as_text=True)
    assert _ids(by_ticket) == [made[1]]
    assert "1 request(s) match" in by_ticket
    assert '<td data-label="Regulation">CCPA</td>' in by_ticket
    by_id = client.get(f"/ui/requests?q={made[0]}").get_data(as_text=True)
    assert _ids(by_id) == [made[0]]
    assert _ids(client.get("/ui/requests?q=PRIV-000").get_data(as_text=True)) == []
    total = db_session.scalar(text("SELECT count(*) FROM erasure_requests"))
    everything = client.get("/ui/requests").get_data(as_text=True)
    assert f"{total:,} request(s) match" in everything


def test_selected_rows_are_cancelled_after_confirming_extended_and_exported(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    ids = []
    for n in range(3):
        response = client.post(
            "/ui/requests/new",
            data={"csrf_token": token, "phone": f"+1415555017{n}", "regulation": "gdpr"},
        )
        ids.append(uuid.UUID(response.headers["Location"].rsplit("/", 1)[-1]))
    chosen = [str(i) for i in ids[:2]]
    exported = client.post(
        "/ui/requests/selected",
        data={"csrf_token": token, "action": "export", "ids": chosen},
    )
    lines = exported.get_data(as_text=True).strip().splitlines()
    assert exported.mimetype == "text/csv" and len(lines) == 3
    assert {line.split(",")[0] for line in lines[1:]} == set(chosen)

    before = {i: db_session.get(ErasureRequest, i).due_at for i in ids}  # type: ignore[union-attr]
    extended = client.post(
        "/ui/requests/selected",
        data={
            "csrf_token": token,
            "action": "extend",
            "reason": "vendor backlog",
            "ids": chosen,
            "confirm": "1",
            "back": "/ui/requests",
        },
    )
    assert extended.status_code == 303
    for i in ids:
        stored = db_session.get(ErasureRequest, i)
        assert stored is not None
        assert (stored.due_at > before[i]) == (str(i) in chosen)

    asked = client.post(
        "/ui/requests/selected",
        data={"csrf_token": token, "action": "cancel", "reason": "withdrawn", "ids": chosen},
    )
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Cancel 2 request(s)?" in page
    assert all(f'name="ids" value="{i}"' in page for i in chosen)
    assert all(db_session.get(ErasureRequest, i).status is RequestStatus.RECEIVED for i in ids)  # type: ignore[union-attr]
    done = client.post(
        "/ui/requests/selected",
        data={
            "csrf_token": token,
            "action": "cancel",
            "reason": "withdrawn",
            "ids": [*chosen, str(ids[0])],  # a repeat is acted on once
            "confirm": "1",
            "back": "/ui/requests?status=received",
        },
        follow_redirects=True,
    )
    assert "2 request(s) cancelled." in done.get_data(as_text=True)
    statuses = [db_session.get(ErasureRequest, i).status for i in ids]  # type: ignore[union-attr]
    assert statuses == [RequestStatus.CANCELLED, RequestStatus.CANCELLED, RequestStatus.RECEIVED]


def test_roles_that_may_not_cancel_cannot_act_on_a_selection(signed_in: SignedIn, org: Org) -> None:
    officer, token = signed_in(Role.OFFICER)
    response = officer.post(
        "/ui/requests/new",
        data={"csrf_token": token, "phone": "+14155550180", "regulation": "gdpr"},
    )
    request_id = response.headers["Location"].rsplit("/", 1)[-1]
    auditor, auditor_token = signed_in(Role.AUDITOR)
    page = auditor.get("/ui/requests").get_data(as_text=True)
    assert 'value="cancel"' not in page and 'value="export"' in page
    refused = auditor.post(
        "/ui/requests/selected",
        data={
            "csrf_token": auditor_token,
            "action": "cancel",
            "reason": "x",
            "ids": [request_id],
            "confirm": "1",
        },
    )
    assert refused.status_code == 403
