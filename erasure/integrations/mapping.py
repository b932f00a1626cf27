"""From a ticket's JSON to an erasure (or access) submission: a small, configurable field mapping with a
preset per ticket system. A ticket that does not match is ignored, with a reason that names the
rule or field, never a value. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from erasure.core.models import ErasureScope, IdentifierKind, Regulation, Source
from erasure.identifiers import InvalidIdentifier, normalize
from erasure.workflow import Identifier


class Condition(BaseModel):
    """One rule a ticket must meet. `path` is dotted (`issue.fields.labels`)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=200)
    equals: str | None = None
    one_of: list[str] | None = None
    contains: str | None = Field(
        None, description="a list holds it, or a space/comma-separated string has it as a word"
    )


class FieldMapping(BaseModel):
    """Where a system's payload keeps what an erasure request needs."""

    model_config = ConfigDict(extra="forbid")

    match: list[Condition] = Field(default_factory=list)
    access_match: list[Condition] = Field(
        default_factory=list,
        description="rules that make a ticket an access request instead (none: erasure only)",
    )
    email: list[str] = Field(default_factory=list, description="paths tried in order")
    phone: list[str] = Field(default_factory=list)
    messaging_platform_key: list[str] = Field(default_factory=list)
    reference_id: str
    reference_url: str | None = None
    regulation: str | None = Field(None, description="path of a regulation value, if any")
    default_regulation: Regulation = Regulation.GDPR
    ticket_table: str | None = Field(
        None, max_length=80, description="ServiceNow: the table work notes are written to"
    )
    scope: str | None = Field(
        None,
        description="path of a scope value: `subject` (the default) or `conversations` (every "
        "conversation of the subject, the end users kept)",
    )
    conversations: str | None = Field(
        None,
        description="path of Conversation ids (a list, or a space/comma-separated string): the "
        "request erases those conversations only",
    )


PRESETS: dict[Source, dict[str, Any]] = {
    # Jira Cloud admin webhook on "issue created/updated", JQL-filtered or not: the issue's
    # reporter is the subject (a Jira Service Management portal customer); label it to act.
    Source.JIRA: {
        "match": [
            {"path": "webhookEvent", "one_of": ["jira:issue_created", "jira:issue_updated"]},
            {"path": "issue.fields.labels", "contains": "gdpr-erasure"},
        ],
        "access_match": [
            {"path": "webhookEvent", "one_of": ["jira:issue_created", "jira:issue_updated"]},
            {"path": "issue.fields.labels", "contains": "gdpr-access"},
        ],
        "email": ["issue.fields.reporter.emailAddress"],
        "reference_id": "issue.key",
        "reference_url": "issue.self",
    },
    # Zendesk trigger webhook with the JSON body documented in docs/integrations.md.
    Source.ZENDESK: {
        "match": [{"path": "ticket.tags", "contains": "gdpr_erasure"}],
        "access_match": [{"path": "ticket.tags", "contains": "gdpr_access"}],
        "email": ["ticket.requester.email", "ticket.requester_email"],
        "phone": ["ticket.requester.phone"],
        "reference_id": "ticket.id",
        "reference_url": "ticket.url",
    },
    # The business rule script in docs/integrations.md.
    Source.SERVICENOW: {
        "match": [{"path": "request_type", "equals": "erasure"}],
        "access_match": [{"path": "request_type", "equals": "access"}],
        "email": ["subject.email"],
        "phone": ["subject.phone"],
        "reference_id": "sys_id",
        "reference_url": "url",
        "regulation": "regulation",
        "ticket_table": "sn_customerservice_case",
    },
    Source.STANDARD_WEBHOOKS: {
        "match": [{"path": "type", "equals": "erasure.requested"}],
        "access_match": [{"path": "type", "equals": "access.requested"}],
        "email": ["data.subject.email"],
        "phone": ["data.subject.phone"],
        "messaging_platform_key": ["data.subject.messaging_platform_key"],
        "reference_id": "data.reference.id",
        "reference_url": "data.reference.url",
        "regulation": "data.regulation",
        "scope": "data.scope",
        "conversations": "data.conversations",
    },
}


class InvalidMapping(ValueError):
    """A configured mapping is malformed."""


def mapping_for(system: Source, overrides: Mapping[str, Any] | None = None) -> FieldMapping:
    """The system's preset with the configured keys replaced. Raises InvalidMapping."""
    preset = PRESETS.get(system)
    if preset is None:
        raise InvalidMapping(f"no mapping preset for {system.value}")
    try:
        return FieldMapping.model_validate({**preset, **(overrides or {})})
    except ValidationError as exc:
        raise InvalidMapping(f"invalid mapping ({_faults(exc)})") from None


def _faults(exc: ValidationError) -> str:
    """Where a mapping is wrong, naming its fields but never an unknown key (client input)."""
    faults: list[str] = []
    for error in exc.errors(include_input=False):
        location = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden":
            location = [*location[:-1], "(unknown field)"]
        faults.append(".".join(location))
    return ", ".join(dict.fromkeys(faults))


@dataclass(frozen=True)
class Ticket:
    reference_id: str
    reference_url: str | None
    identifiers: list[Identifier]
    regulation: Regulation
    #: What the subject asks for: `erasure`, or `access` when the access rules matched.
    request_type: str = "erasure"
    scope: ErasureScope = ErasureScope.SUBJECT


@dataclass(frozen=True)
class Ignored:
    reason: str


#: As many conversation ids as the intake API takes in one request.
MAX_CONVERSATIONS = 200


def lookup(document: object, path: str) -> object:
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def _holds(condition: Condition, value: object) -> bool:
    if condition.equals is not None and str(value) != condition.equals:
        return False
    if condition.one_of is not None and str(value) not in condition.one_of:
        return False
    if condition.contains is not None:
        if isinstance(value, list):
            items = [str(item) for item in value]
        elif isinstance(value, str):
            items = value.replace(",", " ").split()
        else:
            return False
        if condition.contains not in items:
            return False
    return value is not None


def _text(value: object, limit: int) -> str | None:
    if isinstance(value, int | str) and not isinstance(value, bool):
        text = str(value).strip()
        return text[:limit] if text else None
    return None


_KINDS = (
    ("email", IdentifierKind.EMAIL),
    ("phone", IdentifierKind.PHONE),
    ("messaging_platform_key", IdentifierKind.MESSAGING_PLATFORM_KEY),
)


def map_ticket(mapping: FieldMapping, document: Mapping[str, Any]) -> Ticket | Ignored:
    """An erasure or access request from a ticket, or the reason the ticket is not one (the
    erasure rule it fails: access rules are an alternative, tried second)."""
    request_type = "erasure"
    failed = _first_failing(mapping.match, document)
    if failed is not None:
        if not mapping.access_match or _first_failing(mapping.access_match, document):
            return Ignored(f"does not match the rule on `{failed}`")
        request_type = "access"
    reference_id = _text(lookup(document, mapping.reference_id), 255)
    if reference_id is None:
        return Ignored(f"no ticket id at `{mapping.reference_id}`")
    identifiers: list[Identifier] = []
    for attribute, kind in _KINDS:
        for path in getattr(mapping, attribute):
            raw = _text(lookup(document, path), 320)
            if raw is None:
                continue
            try:
                identifiers.append(Identifier(kind, normalize(kind, raw)))
            except InvalidIdentifier as exc:
                return Ignored(f"the subject's {kind.value} at `{path}` {exc}")
            break
    if not identifiers:
        return Ignored("the ticket names no subject identifier at the mapped fields")
    regulation = mapping.default_regulation
    if mapping.regulation:
        raw_regulation = _text(lookup(document, mapping.regulation), 32)
        if raw_regulation:
            try:
                regulation = Regulation(raw_regulation.lower())
            except ValueError:
                return Ignored(f"unknown regulation at `{mapping.regulation}`")
    url = _text(lookup(document, mapping.reference_url), 2048) if mapping.reference_url else None
    ticket = Ticket(reference_id, url, identifiers, regulation, request_type)
    # An access request discloses: what to erase means nothing to it.
    return ticket if request_type == "access" else _with_scope(ticket, mapping, document)


def _with_scope(
    ticket: Ticket, mapping: FieldMapping, document: Mapping[str, Any]
) -> Ticket | Ignored:
    """What the ticket erases: listed conversation ids imply conversations only."""
    scope = _scope_value(mapping, document)
    if isinstance(scope, Ignored):
        return scope
    conversations = _conversation_ids(mapping, document)
    if isinstance(conversations, Ignored):
        return conversations
    if not conversations:
        return replace(ticket, scope=scope or ErasureScope.SUBJECT)
    if scope is ErasureScope.SUBJECT:
        return Ignored(f"conversation ids at `{mapping.conversations}` need scope conversations")
    identifiers = [*ticket.identifiers, *conversations]
    return replace(ticket, identifiers=identifiers, scope=ErasureScope.CONVERSATIONS)


def _scope_value(
    mapping: FieldMapping, document: Mapping[str, Any]
) -> ErasureScope | Ignored | None:
    raw = _text(lookup(document, mapping.scope), 32) if mapping.scope else None
    if not raw:
        return None
    try:
        return ErasureScope(raw.lower())
    except ValueError:
        return Ignored(f"unknown scope at `{mapping.scope}`")


def _conversation_ids(
    mapping: FieldMapping, document: Mapping[str, Any]
) -> list[Identifier] | Ignored:
    if not mapping.conversations:
        return []
    value = lookup(document, mapping.conversations)
    items = value if isinstance(value, list) else str(value or "").replace(",", " ").split()
    if len(items) > MAX_CONVERSATIONS:
        return Ignored(
            f"more than {MAX_CONVERSATIONS} conversation ids at `{mapping.conversations}`"
        )
    found: dict[str, Identifier] = {}
    for item in items:
        raw = _text(item, 64)
        if raw is None:
            continue
        try:
            conversation_id = normalize(IdentifierKind.CONVERSATION_ID, raw)
        except InvalidIdentifier as exc:
            return Ignored(f"a conversation id at `{mapping.conversations}` {exc}")
        found.setdefault(
            conversation_id, Identifier(IdentifierKind.CONVERSATION_ID, conversation_id)
        )
    return list(found.values())


def _first_failing(conditions: list[Condition], document: Mapping[str, Any]) -> str | None:
    for condition in conditions:
        if not _holds(condition, lookup(document, condition.path)):
            return condition.path
    return None
