"""Bulk CSV rows that erase conversations only: a `scope` column and a `conversations` column
(space-separated ids), validated row by row like the API. A bad row is reported by number and
field, never by value, and costs no other row; the rows submitted carry their scope and ids."""

from __future__ import annotations

import io
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import (
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Org,
    Source,
    SubjectIdentifier,
)
from tests.support.console import SignedIn

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
ONE = "0dwXX0000000001AAA"
TWO = "0dwXX0000000002AAA"


def _csv() -> str:
    return (
        "\n".join(
            [
                "phone,regulation,reference_system,reference_id,scope,conversations",
                f"+14155557201,gdpr,jira,CONV-1,conversations,{ONE} {TWO}",
                "+14155557202,gdpr,jira,CONV-2,,",  # the subject, as before
                "+14155557203,gdpr,jira,CONV-3,conversations,",  # every conversation of the subject
                f"+14155557204,gdpr,jira,CONV-4,,{ONE}",  # listing ids implies the scope
                f"+14155557205,gdpr,jira,CONV-bad-1,subject,{ONE}",  # contradicts itself
                "+14155557206,gdpr,jira,CONV-bad-2,conversations,0dwNOTANID-canary",
                "+14155557207,gdpr,jira,CONV-bad-3,everything,",
            ]
        )
        + "\n"
    )


def test_conversation_columns_submit_conversation_scoped_rows_and_report_bad_ones(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    client, token = signed_in(Role.OFFICER)
    preview = client.post(
        "/ui/requests/bulk",
        data={"csrf_token": token, "file": (io.BytesIO(_csv().encode()), "c.csv")},
        content_type="multipart/form-data",
    )
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html
    assert "<strong>4</strong> will be submitted, <strong>3</strong> rows have problems" in html
    for number in (6, 7, 8):
        assert f"<td>{number}</td>" in html
    assert "0dwNOTANID-canary" not in html and "everything" not in html and ONE not in html

    result = client.post(
        "/ui/requests/bulk/confirm",
        data=dict(HIDDEN.findall(html)),
        content_type="multipart/form-data",
    )
    assert result.status_code == 200
    result.get_data(as_text=True)  # the stream runs to its end
    made = {
        r.reference_id: r
        for r in db_session.scalars(
            select(ErasureRequest).where(
                ErasureRequest.org_id == org.id, ErasureRequest.source == Source.BULK
            )
        )
    }
    assert sorted(made) == ["CONV-1", "CONV-2", "CONV-3", "CONV-4"]
    assert made["CONV-1"].scope is ErasureScope.CONVERSATIONS
    assert made["CONV-2"].scope is ErasureScope.SUBJECT
    assert made["CONV-3"].scope is ErasureScope.CONVERSATIONS
    assert made["CONV-4"].scope is ErasureScope.CONVERSATIONS

    def conversations(request: ErasureRequest) -> int:
        return len(
            db_session.scalars(
                select(SubjectIdentifier).where(
                    SubjectIdentifier.request_id == request.id,
                    SubjectIdentifier.kind == IdentifierKind.CONVERSATION_ID,
                )
            ).all()
        )

    assert [conversations(made[k]) for k in ("CONV-1", "CONV-2", "CONV-3", "CONV-4")] == [
        2,
        0,
        0,
        1,
    ]


def test_rows_without_a_reference_that_name_other_conversations_are_different_rows(
    signed_in: SignedIn, org: Org
) -> None:
    client, token = signed_in(Role.OFFICER)
    text = "\n".join(
        [
            "phone,regulation,conversations",
            f"+14155557211,gdpr,{ONE}",
            f"+14155557211,gdpr,{TWO}",
            "+14155557211,gdpr,",
        ]
    )
    preview = client.post(
        "/ui/requests/bulk",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "c.csv")},
        content_type="multipart/form-data",
    )
    html = preview.get_data(as_text=True)
    assert "<strong>3</strong> will be submitted, <strong>0</strong> rows have problems" in html
