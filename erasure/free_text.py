"""Free text people write about a request: its notes (deadline extension reasons are appended to
them) and its cancel reason. Such text may name the subject ("subject ana@example.com withdrew"),
so it is sealed like identifiers (AES-256-GCM, bound to its row), destroyed with them at
retention, and read back only for the roles that may read notes. Outcomes stay fixed phrases.

Framework-free; nothing here commits.
"""

from __future__ import annotations

import re
import uuid
from typing import Protocol

from erasure.accounts.models import Role
from erasure.core.models import ErasureRequest
from erasure.identifiers import Sealed, Vault

#: Who may read a request's notes and cancel reason, in the API and the console: the people who
#: handle requests. Approvers, auditors and integrations see that there is a reason, not what.
NOTE_READERS = frozenset({Role.OFFICER, Role.ADMIN})

# Before cancel reasons were sealed, a cancel wrote "cancelled: <reason>" into the outcome,
# followed by what could not be stopped. `erasure encryption-keys reencrypt` seals such reasons and
# retention destroys them; both recognise them by this form.
_LEGACY_CANCEL_OUTCOME = re.compile(
    r"cancelled: (?P<reason>.*?)(?P<rest>(?:; \d+ (?:more )?deletion\(s\) (?:already sent to "
    r"Salesforce could not be stopped|were already on their way to Salesforce and could not "
    r"be stopped))*)",
    re.DOTALL,
)
#: SQL LIKE pattern of the outcomes `split_legacy_outcome` may recognise.
LEGACY_CANCEL_OUTCOME_LIKE = "cancelled: %"


def notes_context(request_id: uuid.UUID) -> str:
    return f"notes:{request_id}"


def cancel_reason_context(request_id: uuid.UUID) -> str:
    return f"cancel-reason:{request_id}"


def cancelled_outcome(already_sent: int) -> str:
    """The outcome of a cancel: a fixed phrase, never the reason."""
    if not already_sent:
        return "cancelled"
    return f"cancelled; {already_sent} deletion(s) already sent to Salesforce could not be stopped"


class Cancellable(Protocol):
    """A request with a sealed cancel reason: an erasure request or an access request."""

    id: uuid.UUID
    cancel_reason_ciphertext: bytes | None
    cancel_reason_key_id: str | None


def seal_cancel_reason(vault: Vault, request: Cancellable, reason: str) -> None:
    sealed = vault.seal(reason, context=cancel_reason_context(request.id))
    request.cancel_reason_ciphertext, request.cancel_reason_key_id = (
        sealed.ciphertext,
        sealed.key_id,
    )


def open_notes(vault: Vault, request: ErasureRequest) -> str | None:
    if request.notes_ciphertext is None or request.notes_key_id is None:
        return None
    return vault.open(
        Sealed(request.notes_key_id, request.notes_ciphertext), context=notes_context(request.id)
    )


def open_cancel_reason(vault: Vault, request: Cancellable) -> str | None:
    if request.cancel_reason_ciphertext is None or request.cancel_reason_key_id is None:
        return None
    return vault.open(
        Sealed(request.cancel_reason_key_id, request.cancel_reason_ciphertext),
        context=cancel_reason_context(request.id),
    )


def split_legacy_outcome(outcome: str | None) -> tuple[str, str] | None:
    """(reason, the outcome without it) of an outcome written before cancel reasons were sealed;
    None for any other outcome."""
    match = _LEGACY_CANCEL_OUTCOME.fullmatch(outcome or "")
    if match is None:
        return None
    return match["reason"], "cancelled" + match["rest"]
