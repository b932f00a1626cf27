"""The notices' templates: the defaults shipped, the admins' edited versions, and rendering.

Templates are Jinja2 run in an immutable sandbox: a template can read the few plain values it is
given and nothing else (no attribute of a Python object, no import, no mutation), loops are
bounded by the sandbox and `*` on strings by us, and the output is capped. An admin's mistake is a
problem with a line number, never a 500. Each template has a version, the SHA-256 of its subject
and body, which a notice's audit leaf names instead of its text.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy.orm import Session

from erasure.errors import ErasureError
from erasure.notices.models import NoticeKind, NoticeTemplate

MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 20_000
#: Anything longer is refused: no letter to a person is this long, and it bounds memory.
MAX_RENDERED_CHARS = 50_000

DEFAULTS: dict[NoticeKind, tuple[str, str]] = {
    NoticeKind.ACKNOWLEDGEMENT: (
        "We received your erasure request ({{ reference }})",
        """Hello,

We received your request to erase your personal data on {{ received_on }}.
Its reference is {{ reference }}.

Under {{ regulation }} we will carry it out by {{ due_on }}, and we will write to you again when
it is done.

Kind regards,
The privacy team
""",
    ),
    NoticeKind.EXTENSION: (
        "We need more time for your erasure request ({{ reference }})",
        """Hello,

We received your request to erase your personal data on {{ received_on }} (reference
{{ reference }}). We need more time to complete it: the deadline moves from {{ previous_due_on }}
to {{ due_on }}, as {{ regulation }} allows.

The reason: {{ extension_reason }}

We will write to you again when it is done.

Kind regards,
The privacy team
""",
    ),
    NoticeKind.COMPLETION: (
        "Your erasure request is complete ({{ reference }})",
        """Hello,

Your request to erase your personal data, received on {{ received_on }} (reference
{{ reference }}), was completed on {{ completed_on }}.
{% if found_data %}
The personal data we held about you in our messaging systems has been deleted, and we checked
that it is gone.
{% else %}
We found no personal data about you in our messaging systems, so there was nothing to delete.
{% endif %}
Kind regards,
The privacy team
""",
    ),
}

#: The values every template may use, with what they mean (shown to admins beside the editor).
VARIABLES: dict[str, str] = {
    "reference": "the ticket reference the request came with, else the request id",
    "request_id": "the request's id",
    "regulation": "GDPR, UK GDPR, CCPA or LGPD",
    "received_on": "the day the subject asked",
    "due_on": "the current deadline",
    "previous_due_on": "extension notices: the deadline before the extension",
    "extension_reason": "extension notices: the reason given for the extension",
    "completed_on": "completion letters: the day the request was completed",
    "found_data": "completion letters: whether any data was found and deleted (true/false)",
}

_REGULATION_NAMES = {"gdpr": "GDPR", "uk_gdpr": "UK GDPR", "ccpa": "CCPA", "lgpd": "LGPD"}
_STRING_REPEAT_LIMIT = 10_000
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TemplateProblem(ErasureError):
    """A template that cannot be saved or rendered; the message says where, never with data."""

    code = "invalid_template"

    def __init__(self, message: str, *, part: str = "body") -> None:
        super().__init__(message)
        #: Which part is at fault: `subject` or `body`.
        self.part = part


class _Sandbox(ImmutableSandboxedEnvironment):
    # `"x" * 10**9` would build a gigabyte before any cap on the output could apply.
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" or (
            (isinstance(left, str | list) or isinstance(right, str | list))
            and max(_int_or_zero(left), _int_or_zero(right)) > _STRING_REPEAT_LIMIT
        ):
            raise SecurityError("this operation is not allowed in a notice template")
        return super().call_binop(context, operator, left, right)


def _int_or_zero(value: object) -> int:
    return value if isinstance(value, int) else 0


_ENVIRONMENT = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class Template:
    kind: NoticeKind
    subject: str
    body: str
    #: Whether this is the shipped default (no admin version saved).
    is_default: bool
    updated_by: str | None = None
    updated_at: datetime | None = None

    @property
    def version(self) -> str:
        return version_of(self.subject, self.body)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str

    def to_text(self) -> str:
        """What a download holds: the subject line, a blank line, the letter."""
        return f"Subject: {self.subject}\n\n{self.body}"


def version_of(subject: str, body: str) -> str:
    document = json.dumps({"subject": subject, "body": body}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(document.encode()).hexdigest()


def default(kind: NoticeKind) -> Template:
    subject, body = DEFAULTS[kind]
    return Template(kind=kind, subject=subject, body=body, is_default=True)


def current(session: Session, kind: NoticeKind) -> Template:
    """The template a new notice of `kind` is rendered from: the admin's, else the default."""
    row = session.get(NoticeTemplate, kind)
    if row is None:
        return default(kind)
    return Template(
        kind=kind,
        subject=row.subject,
        body=row.body,
        is_default=False,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def sample_context(kind: NoticeKind) -> dict[str, object]:
    """Made-up values of the right types: a template is tried against them before it is saved,
    and the editor's preview shows them."""
    return {
        "reference": "PRIV-1234",
        "request_id": "00000000-0000-4000-8000-000000000000",
        "regulation": "GDPR",
        "received_on": "2 November 2026",
        "due_on": "2 December 2026",
        "previous_due_on": "2 December 2026" if kind is NoticeKind.EXTENSION else "",
        "extension_reason": "the records span several systems"
        if kind is NoticeKind.EXTENSION
        else "",
        "completed_on": "20 November 2026" if kind is NoticeKind.COMPLETION else "",
        "found_data": True,
    }


def render(template: Template, context: dict[str, object]) -> Rendered:
    """Both parts rendered. The subject becomes one line (a header never holds a line break).
    Raises TemplateProblem."""
    subject = _WHITESPACE.sub(" ", _render_part(template.subject, context, "subject")).strip()
    body = _render_part(template.body, context, "body")
    if not subject:
        raise TemplateProblem("the subject renders empty", part="subject")
    return Rendered(subject=subject[:MAX_SUBJECT_CHARS], body=body)


def _render_part(source: str, context: dict[str, object], part: str) -> str:
    try:
        text = _ENVIRONMENT.from_string(source).render(context)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}", part=part) from None
    except SecurityError:
        raise TemplateProblem("uses something the sandbox does not allow", part=part) from None
    except TemplateError as exc:
        # StrictUndefined names the unknown variable: the admin's own word, not data.
        raise TemplateProblem(str(exc.message), part=part) from None
    except Exception as exc:  # noqa: BLE001  # `{{ 1 / 0 }}` and the like: the template's fault
        raise TemplateProblem(f"fails when rendered ({type(exc).__name__})", part=part) from None
    if len(text) > MAX_RENDERED_CHARS:
        raise TemplateProblem(f"renders longer than {MAX_RENDERED_CHARS} characters", part=part)
    # A letter is text: no NUL or other control character reaches the database or a mail.
    return _CONTROL.sub("", text)


def save(
    session: Session, kind: NoticeKind, *, subject: str, body: str, by: str | None
) -> Template:
    """Store an admin's version after trying it on sample values. Does not commit. Raises
    TemplateProblem."""
    if not subject.strip() or len(subject) > MAX_SUBJECT_CHARS:
        raise TemplateProblem(f"must be 1 to {MAX_SUBJECT_CHARS} characters", part="subject")
    if "\x00" in subject + body:
        raise TemplateProblem(
            "may not contain NUL characters", part="subject" if "\x00" in subject else "body"
        )
    if "\n" in subject or "\r" in subject:
        raise TemplateProblem("must be one line", part="subject")
    if not body.strip() or len(body) > MAX_BODY_CHARS:
        raise TemplateProblem(f"must be 1 to {MAX_BODY_CHARS} characters")
    body = body.replace("\r\n", "\n")
    candidate = Template(kind=kind, subject=subject, body=body, is_default=False)
    render(candidate, sample_context(kind))
    row = session.get(NoticeTemplate, kind)
    if row is None:
        row = NoticeTemplate(kind=kind)
        session.add(row)
    row.subject, row.body, row.version = subject, body, candidate.version
    row.updated_by, row.updated_at = by, datetime.now(UTC)
    session.flush()
    return current(session, kind)


def reset(session: Session, kind: NoticeKind) -> Template:
    """Back to the shipped default. Does not commit."""
    row = session.get(NoticeTemplate, kind)
    if row is not None:
        session.delete(row)
        session.flush()
    return default(kind)


def preview(template: Template) -> Rendered:
    """The template rendered on the sample values."""
    return render(template, sample_context(template.kind))


def regulation_name(value: str) -> str:
    return _REGULATION_NAMES.get(value, value.upper())
