"""The API's response bodies (pydantic: the OpenAPI schemas). What it takes in is erasure.web.inputs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from erasure.core.models import ErasureScope, Regulation, RequestStatus, Source


class ReferenceOut(BaseModel):
    system: str | None
    id: str | None
    url: str | None


class LinksOut(BaseModel):
    self_: str = Field(alias="self", serialization_alias="self")
    cancel: str | None = None
    override_hold: str | None = None
    duplicate_of: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class HoldNoticeOut(BaseModel):
    """A legal hold a request waits on (its reason is on the hold, for approvers)."""

    id: uuid.UUID
    ends_at: datetime


class ErasureRequestOut(BaseModel):
    """An erasure request as the API shows it: no subject identifier is ever echoed back."""

    id: uuid.UUID
    status: RequestStatus
    org: str
    source: Source
    regulation: Regulation
    scope: ErasureScope = Field(
        ErasureScope.SUBJECT,
        description="`subject`: the Messaging end users are deleted; `conversations`: "
        "conversations only, the end users kept.",
    )
    received_at: datetime
    due_at: datetime
    reference: ReferenceOut | None
    duplicate_of: uuid.UUID | None = Field(
        description=(
            "The first request of the group of requests for the same subject this one joined "
            "(through any identifier shared with an open request). Every request of a group is "
            "carried out; a Salesforce record they share is deleted once."
        )
    )
    predicted_completion_at: datetime | None
    is_at_risk: bool
    outcome: str | None = Field(description="Why it ended as it did: a fixed phrase.")
    notes: str | None = Field(
        None,
        description="The request's notes (with deadline extension reasons), decrypted: only when "
        "one request is read (GET), and only for officer and admin keys; otherwise null.",
    )
    cancel_reason: str | None = Field(
        None,
        description="Why it was cancelled, decrypted: only when one request is read (GET), and "
        "only for officer and admin keys; otherwise null.",
    )
    targets: dict[str, int] = Field(description="How many Salesforce records are in each state.")
    legal_holds: list[HoldNoticeOut] = Field(
        default_factory=list,
        description="While `on_hold`: the legal holds that stopped it before deletion. It goes "
        "on when they end or are released, or when an approver overrides them.",
    )
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    links: LinksOut


class ErasureRequestPage(BaseModel):
    items: list[ErasureRequestOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
    links: dict[str, str]


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    correlation_id: str | None = None
    errors: list[dict[str, str]] | None = Field(None, description="The fields at fault.")
