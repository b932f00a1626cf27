"""Which log this is: the origin line every checkpoint carries, fixed once and never moved.

C2SP tlog-checkpoint: the origin names the log, and the log signs its checkpoints with a key of
the same name. So the origin is chosen when the key is made (`erasure signing-keys generate --name
<origin>` writes the name into the key file) and a new log's checkpoints carry the key's name.
Nothing that may change later (the public URL, the host) takes part: a log must never split.

Once a log has a checkpoint, that checkpoint's origin is the log's for good. A log started before
the origin followed the key name (older versions derived it from ERASURE_PUBLIC_URL; standalone
data directories hold key `erasure-standalone/audit` and checkpoints `127.0.0.1/erasure-audit`)
keeps its recorded origin: the same key goes on signing under the same origin, so every old
checkpoint and every verifier key already handed out stays valid.

ERASURE_AUDIT_ORIGIN, when set, is a check, not an override: it must name the origin this rule
gives, or the process refuses to start.
"""

from __future__ import annotations

from dataclasses import dataclass

from erasure.audit.checkpoint import SigningKey, open_checkpoint, read_checkpoint_unverified
from erasure.audit.errors import NoteError
from erasure.errors import ConfigurationError


class LogIdentityError(ConfigurationError):
    """The configured key or origin would start another log inside this one."""

    code = "audit_log_identity"


@dataclass(frozen=True)
class LogIdentity:
    origin: str
    #: The origin differs from the key name: a log older than the rule, continued as it was.
    legacy: bool = False


def resolve_origin(
    key: SigningKey, *, configured: str | None, latest_checkpoint: str | bytes | None
) -> LogIdentity:
    """The origin of the next checkpoint signed by `key` after `latest_checkpoint` (None: the log
    has none yet). Raises `LogIdentityError` when that would split the log."""
    if latest_checkpoint is None:
        if configured is not None and configured != key.name:
            raise LogIdentityError(
                f"ERASURE_AUDIT_ORIGIN is {configured!r} but the signing key is named "
                f"{key.name!r}: a log's origin is its key's name. Unset ERASURE_AUDIT_ORIGIN, or "
                f"make the key with `erasure signing-keys generate --name {configured}`."
            )
        return LogIdentity(key.name)
    try:
        recorded = open_checkpoint(latest_checkpoint, key.verifier())
    except NoteError:
        raise LogIdentityError(
            f"the audit log's latest checkpoint ({_describe(latest_checkpoint)}) is not signed by "
            f"the configured key {key.name}+{key.key_id.hex()}: a log keeps one key for life. "
            "Configure the key that signed it (ERASURE_AUDIT_SIGNING_KEY_FILE)."
        ) from None
    if configured is not None and configured != recorded.origin:
        raise LogIdentityError(
            f"ERASURE_AUDIT_ORIGIN is {configured!r} but this audit log's checkpoints carry "
            f"{recorded.origin!r}: changing it would split the log. Unset ERASURE_AUDIT_ORIGIN "
            f"or set it to {recorded.origin!r}."
        )
    return LogIdentity(recorded.origin, legacy=recorded.origin != key.name)


def _describe(note: str | bytes) -> str:
    try:
        checkpoint = read_checkpoint_unverified(note)
    except NoteError:
        return "unreadable"
    return f"size {checkpoint.size}, origin {checkpoint.origin!r}"
