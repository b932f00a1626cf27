"""The log's origin: fixed by the signing key's name, never by the public URL, and never split.

C2SP tlog-checkpoint: the origin line names the log, and the log's own signature uses that name as
its key name. A log started before that rule keeps the origin its checkpoints already carry.
"""

from __future__ import annotations

import pytest

from erasure.audit.checkpoint import Checkpoint, SigningKey
from erasure.audit.origin import LogIdentityError, resolve_origin

ROOT = bytes(32)
KEY = SigningKey.from_seed("erasure.example.com/audit", bytes(range(32)))
# A standalone data directory made before the rule: key and origin differ.
LEGACY_KEY = SigningKey.from_seed("erasure-standalone/audit", bytes(range(1, 33)))
LEGACY_ORIGIN = "127.0.0.1/erasure-audit"


def test_a_new_log_takes_its_keys_name() -> None:
    identity = resolve_origin(KEY, configured=None, latest_checkpoint=None)
    assert identity.origin == KEY.name
    assert not identity.legacy


def test_a_configured_origin_that_agrees_with_the_key_is_accepted() -> None:
    identity = resolve_origin(KEY, configured=KEY.name, latest_checkpoint=None)
    assert identity.origin == KEY.name


def test_a_configured_origin_that_contradicts_the_key_is_refused_with_both_names() -> None:
    with pytest.raises(LogIdentityError) as caught:
        resolve_origin(KEY, configured="erasure.other.example/audit", latest_checkpoint=None)
    message = str(caught.value)
    assert "erasure.other.example/audit" in message
    assert KEY.name in message
    assert "erasure signing-keys generate --name" in message


def test_an_existing_log_keeps_its_origin() -> None:
    note = Checkpoint(KEY.name, 7, ROOT).sign(KEY)
    identity = resolve_origin(KEY, configured=None, latest_checkpoint=note)
    assert identity.origin == KEY.name and not identity.legacy


def test_a_log_from_before_the_rule_keeps_its_recorded_origin() -> None:
    note = Checkpoint(LEGACY_ORIGIN, 12, ROOT).sign(LEGACY_KEY)
    identity = resolve_origin(LEGACY_KEY, configured=None, latest_checkpoint=note)
    assert identity.origin == LEGACY_ORIGIN  # not the key name: that would split the log
    assert identity.legacy
    # Naming the recorded origin explicitly is consistent too.
    assert (
        resolve_origin(LEGACY_KEY, configured=LEGACY_ORIGIN, latest_checkpoint=note).origin
        == LEGACY_ORIGIN
    )


def test_a_configured_origin_that_would_split_an_existing_log_is_refused() -> None:
    note = Checkpoint(LEGACY_ORIGIN, 12, ROOT).sign(LEGACY_KEY)
    with pytest.raises(LogIdentityError) as caught:
        resolve_origin(LEGACY_KEY, configured=LEGACY_KEY.name, latest_checkpoint=note)
    assert LEGACY_ORIGIN in str(caught.value)


def test_a_log_signed_by_another_key_is_refused() -> None:
    note = Checkpoint(KEY.name, 7, ROOT).sign(KEY)
    renamed = SigningKey.from_seed("erasure.example.com/audit2", bytes(range(32)))
    for other in (SigningKey.generate(KEY.name), renamed):
        with pytest.raises(LogIdentityError) as caught:
            resolve_origin(other, configured=None, latest_checkpoint=note)
        assert "not signed by" in str(caught.value)
