"""What a verification found: findings, exit codes and a report printable as text or JSON.

Shared by the bundle verifier and the certificate verifier so both speak the same exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of `erasure audit verify` (documented in docs/audit.md)."""

    OK = 0
    TAMPERED = 1  # leaves differ from what the signed checkpoints commit to, or are not canonical
    USAGE = 2  # bad command line or unreadable public key (click uses 2 as well)
    BAD_CHECKPOINT = 3  # a checkpoint is malformed, not signed by the key, or badly signed
    INCONSISTENT = 4  # --since: the log was rolled back or forked
    MALFORMED = 5  # the bundle or certificate is incomplete or unreadable
    BAD_CERTIFICATE = 6  # a certificate's signature or inclusion proofs do not verify


# When several things are wrong, the exit code is the first of these that occurred: a bad
# signature undermines everything else, then the content of the log, then the rest.
_PRECEDENCE = (
    ExitCode.BAD_CHECKPOINT,
    ExitCode.TAMPERED,
    ExitCode.INCONSISTENT,
    ExitCode.BAD_CERTIFICATE,
    ExitCode.MALFORMED,
)


@dataclass(frozen=True)
class Finding:
    """One problem (or, with `warning`, one remark) found by the verifier."""

    code: str
    message: str
    exit_code: ExitCode
    leaf_index: int | None = None
    warning: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "exit_code": int(self.exit_code),
            "leaf_index": self.leaf_index,
            "warning": self.warning,
        }


@dataclass
class Report:
    """The outcome of verifying a bundle or a certificate."""

    kind: str
    path: str = ""
    leaf_count: int = 0
    tree_size: int | None = None
    root_hash: bytes | None = None
    checkpoint_sizes: list[int] = field(default_factory=list)
    since_size: int | None = None
    first_bad_leaf: int | None = None
    first_bad_range: tuple[int, int] | None = None
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.warning]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def exit_code(self) -> ExitCode:
        codes = {finding.exit_code for finding in self.errors}
        for code in _PRECEDENCE:
            if code in codes:
                return code
        return ExitCode.OK

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        index = finding.leaf_index
        if index is not None and not finding.warning:
            self.first_bad_leaf = (
                index if self.first_bad_leaf is None else min(index, self.first_bad_leaf)
            )

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "path": self.path,
            "ok": self.ok,
            "exit_code": int(self.exit_code),
            "leaf_count": self.leaf_count,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex() if self.root_hash is not None else None,
            "checkpoints": self.checkpoint_sizes,
            "since": self.since_size,
            "first_bad_leaf": self.first_bad_leaf,
            "first_bad_range": list(self.first_bad_range) if self.first_bad_range else None,
            "findings": [finding.to_json() for finding in self.findings],
            **self.details,
        }
