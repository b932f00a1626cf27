"""Errors raised by the pure audit modules (Merkle proofs, signed notes, bundles, certificates).

They carry a human-readable message meant for an auditor; the offline verifier turns them into
findings and exit codes rather than tracebacks.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base class for every error of the verifiable audit log."""


class ProofError(AuditError):
    """An inclusion or consistency proof is malformed or does not verify."""


class NoteError(AuditError):
    """A signed note, key or checkpoint could not be parsed or verified."""


class MalformedNoteError(NoteError):
    """The note, key or checkpoint text breaks the C2SP grammar."""


class UnknownKeyError(NoteError):
    """No signature on the note was made by the trusted key (name and key id)."""


class BadSignatureError(NoteError):
    """A signature by the trusted key (name and key id match) does not verify."""


class BundleError(AuditError):
    """An evidence bundle is incomplete, unreadable or cannot be written."""


class CertificateError(AuditError):
    """A certificate of erasure is malformed or does not verify."""
