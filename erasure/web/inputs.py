"""What the web edges take in (pydantic): the erasure request as the API, the console, bulk CSV and
OpenDSR all accept it, and validation errors that never quote the input.

Validators normalise identifiers and never repeat a submitted value in an error message.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from erasure import identifiers
from erasure.core.models import ErasureScope, IdentifierKind, Regulation

# A received_at slightly in the future is clock skew; more than this is a mistake.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# No erasure law is older: a receipt before this is a typo (and year 1 cannot even be put in
# UTC, or given a deadline).
EARLIEST_RECEIVED_AT = datetime(2000, 1, 1, tzinfo=UTC)


def _plausible_receipt(value: datetime) -> datetime:
    """When a subject asked: not before 2000 and not in the future (the deadline runs from it,
    so a future time would move the legal deadline)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if utc < EARLIEST_RECEIVED_AT:
        raise ValueError("is before 2000")
    if utc > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("is in the future")
    return value


#: The time a subject made their request, as the intake API, the console, bulk CSV and OpenDSR
#: all take it.
ReceivedAt = Annotated[AwareDatetime, AfterValidator(_plausible_receipt)]


def end_of_day(day: date) -> datetime:
    """The instant a day ends, in UTC: the next midnight, so "before the end of the day"
    includes everything up to 23:59:59.999999 (where deadlines fall)."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def _date_means_its_end(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return end_of_day(date.fromisoformat(value.strip()))
        except ValueError:
            raise ValueError("is not a date (YYYY-MM-DD)") from None
    return value


#: An upper bound of a date filter: an instant with its offset, or a date (YYYY-MM-DD), taken as
#: the end of that day, UTC.
UntilEndOf = Annotated[AwareDatetime, BeforeValidator(_date_means_its_end)]
#: What OpenAPI says of an `UntilEndOf` query parameter.
UNTIL_END_OF_SCHEMA = {
    "oneOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
}
UNTIL_END_OF_NOTE = (
    "An RFC 3339 instant with its offset (`2027-01-10T12:00:00Z`), or a date (`2027-01-10`), "
    "which means the end of that day, UTC: requests due that day are included."
)


def _normalizer(kind: IdentifierKind) -> AfterValidator:
    def check(value: str) -> str:
        try:
            return identifiers.normalize(kind, value)
        except identifiers.InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(check)


Phone = Annotated[
    str, Field(max_length=32, examples=["+14155550100"]), _normalizer(IdentifierKind.PHONE)
]
Email = Annotated[
    str, Field(max_length=320, examples=["ana@example.com"]), _normalizer(IdentifierKind.EMAIL)
]
PlatformKey = Annotated[
    str, Field(max_length=255), _normalizer(IdentifierKind.MESSAGING_PLATFORM_KEY)
]
ContactId = Annotated[
    str, Field(min_length=15, max_length=18), _normalizer(IdentifierKind.CONTACT_ID)
]
EndUserId = Annotated[
    str, Field(min_length=15, max_length=18), _normalizer(IdentifierKind.MESSAGING_END_USER_ID)
]
ConversationId = Annotated[
    str, Field(min_length=15, max_length=18), _normalizer(IdentifierKind.CONVERSATION_ID)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubjectIn(Strict):
    """Who is to be erased. At least one identifier; each is used to find their records."""

    phone: Phone | None = Field(None, description="Phone number in E.164 form.")
    email: Email | None = None
    messaging_platform_key: PlatformKey | None = Field(
        None, description="The MessagingPlatformKey of a messaging channel (e.g. a WhatsApp id)."
    )
    contact_id: ContactId | None = Field(None, description="Salesforce Contact id (003...).")
    messaging_end_user_ids: list[EndUserId] | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="MessagingEndUser ids (0PA...), if already known.",
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> SubjectIn:
        if not any(
            (
                self.phone,
                self.email,
                self.messaging_platform_key,
                self.contact_id,
                self.messaging_end_user_ids,
            )
        ):
            raise ValueError(
                "give at least one of phone, email, messaging_platform_key, contact_id, messaging_end_user_ids"
            )
        return self

    def identifier_pairs(self) -> list[tuple[IdentifierKind, str]]:
        pairs: list[tuple[IdentifierKind, str]] = []
        for kind, value in (
            (IdentifierKind.PHONE, self.phone),
            (IdentifierKind.EMAIL, self.email),
            (IdentifierKind.MESSAGING_PLATFORM_KEY, self.messaging_platform_key),
            (IdentifierKind.CONTACT_ID, self.contact_id),
        ):
            if value:
                pairs.append((kind, value))
        for end_user_id in dict.fromkeys(self.messaging_end_user_ids or []):
            pairs.append((IdentifierKind.MESSAGING_END_USER_ID, end_user_id))
        return pairs


class ReferenceIn(Strict):
    """The ticket or controller request this erasure answers."""

    system: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$", examples=["jira"]
    )
    id: str = Field(min_length=1, max_length=255, examples=["PRIV-1234"])
    url: HttpUrl | None = Field(None, description="Link to the ticket.")


class ErasureRequestIn(Strict):
    subject: SubjectIn
    regulation: Regulation
    org: str | None = Field(
        None, max_length=64, description="The org's name; optional when one org is configured."
    )
    received_at: ReceivedAt | None = Field(
        None,
        description="When the subject made the request (the deadline runs from here). Defaults "
        "to now; not in the future, not before 2000.",
    )
    reference: ReferenceIn | None = None
    notes: str | None = Field(None, max_length=4000, description="Free text; stored encrypted.")


class ConversationScopeIn(Strict):
    """What to erase of the subject: its end users, or only conversations (given by id, or every
    one of the subject's), the end users kept. The intake API's body, and an OpenDSR request's
    extension, take it alike."""

    scope: ErasureScope | None = Field(
        None,
        description="`subject` (the default): delete the subject's Messaging end users, and "
        "with them every conversation. `conversations`: delete conversations only and keep the "
        "end users; the ones listed in `conversations`, or when none are listed, every "
        "conversation of the subject's end users. Listing conversations implies it. A listed "
        "conversation that is not the subject's (another subject's, or none) is left alone.",
    )
    conversations: list[ConversationId] | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Conversation record ids (0dw..., 15 or 18 characters) to delete.",
    )

    @model_validator(mode="after")
    def _scope_fits(self) -> ConversationScopeIn:
        if self.conversations and self.scope is ErasureScope.SUBJECT:
            raise ValueError(
                "conversations are erased with scope conversations (the end users are kept); "
                "leave conversations out to erase the subject"
            )
        return self

    def effective_scope(self) -> ErasureScope:
        if self.scope is not None:
            return self.scope
        return ErasureScope.CONVERSATIONS if self.conversations else ErasureScope.SUBJECT

    def conversation_pairs(self) -> list[tuple[IdentifierKind, str]]:
        """The listed conversations as identifiers (each once)."""
        return [
            (IdentifierKind.CONVERSATION_ID, conversation_id)
            for conversation_id in dict.fromkeys(self.conversations or [])
        ]


class ErasureSubmissionIn(ConversationScopeIn, ErasureRequestIn):
    """An erasure request as the intake API takes it: the subject's end users, or only
    conversations (given by id, or every one of the subject's), the end users kept."""

    def identifier_pairs(self) -> list[tuple[IdentifierKind, str]]:
        """The subject's identifiers, then the conversations (each once)."""
        return self.subject.identifier_pairs() + self.conversation_pairs()


class CancelIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="Why the request is cancelled.")


#: pydantic error types whose message is built only from the schema's own constraints (lengths,
#: patterns, allowed values) or from a parser's fixed wording: shown as they are. Any other type
#: with context may quote the input (a UUID parser names the bad character, a union its tag) and
#: is described in fixed words. `value_error` is our own validators, which never repeat a value.
_SCHEMA_ONLY = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "enum",
        "literal_error",
        "url_too_long",
        "url_scheme",
        "url_parsing",
        "model_type",
        "date_parsing",
        "time_parsing",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "value_error",
    }
)
_FIXED_WORDS = {"uuid_parsing": "Input should be a valid UUID", "json_invalid": "Invalid JSON"}


def _message(error: Any) -> str:
    kind = str(error["type"])
    if kind in _FIXED_WORDS:
        return _FIXED_WORDS[kind]
    if "ctx" in error and kind not in _SCHEMA_ONLY:
        return "is not valid"
    return str(error["msg"]).removeprefix("Value error, ")


def validation_errors(errors: list[Any], *, root: str = "(body)") -> list[dict[str, str]]:
    """pydantic errors as `{field, detail}`, with nothing of the input: not the `input` pydantic
    would echo, not a message quoting it, and not an unknown key either (a key can be an
    identifier too): unknown fields are counted under their parent, never named."""
    result = []
    unknown: Counter[str] = Counter()
    for error in errors:
        location = [str(part) for part in error["loc"] if part != "__root__"]
        if error["type"] == "extra_forbidden":
            unknown[".".join(location[:-1]) or root] += 1
            continue
        result.append({"field": ".".join(location) or root, "detail": _message(error)})
    for parent, count in unknown.items():
        result.append(
            {"field": parent, "detail": f"{count} unknown field{'' if count == 1 else 's'}"}
        )
    return result
