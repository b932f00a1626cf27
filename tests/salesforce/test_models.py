"""Pure pieces: ids, statuses, Retry-After parsing, SOQL literals, settings validation."""

from __future__ import annotations

import email.utils
import logging
import time

import pytest

from erasure.salesforce import (
    ApiLog,
    CachedToken,
    LogState,
    OrgSettings,
    SalesforceClient,
    log_state,
)
from erasure.salesforce.client.transport import parse_retry_after
from erasure.salesforce.ids import checksum, is_valid, to15, to18
from erasure.salesforce.sandbox import SandboxHandle, add_end_user
from erasure.salesforce.soql import in_list, literal


def test_id_checksum_matches_salesforce() -> None:
    # A documented pair: 15-char 001A000000BTIPk <-> 18-char 001A000000BTIPkIAP.
    assert checksum("001A000000BTIPk") == "IAP"
    assert to18("001A000000BTIPk") == "001A000000BTIPkIAP"
    assert to15("001A000000BTIPkIAP") == "001A000000BTIPk"
    assert is_valid("001A000000BTIPkIAP")
    assert not is_valid("001A000000BTIPkAAA")
    assert not is_valid("001A000000BTIP")
    with pytest.raises(ValueError, match="not a Salesforce id"):
        to18("nope")


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("REQUESTED", LogState.PENDING),
        ("enqueued", LogState.PENDING),
        ("In_Progress", LogState.PENDING),
        ("COMPLETED", LogState.COMPLETED),
        ("completed", LogState.COMPLETED),
        ("Failed", LogState.FAILED),
        ("ARCHIVED", LogState.UNKNOWN),
        ("", LogState.UNKNOWN),
        (None, LogState.UNKNOWN),
    ],
)
def test_statuses_compare_case_insensitively_and_unknown_is_not_final(
    status: str | None, state: LogState
) -> None:
    assert log_state(status) is state
    assert state.is_final == (state in (LogState.COMPLETED, LogState.FAILED))


def test_log_matches_15_char_prefix_case_sensitively() -> None:
    log = ApiLog(
        id="x",
        requested_entity_identifier="0PA5g0000000001",
        requested_entity_type=None,
        status="x",
    )
    assert log.is_for("0PA5g0000000001GAA")
    assert log.is_for("0PA5g0000000001")
    assert not log.is_for("0pa5g0000000001")


def test_retry_after_in_seconds_or_http_date() -> None:
    now = time.time()
    assert parse_retry_after("120") == 120.0
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(90, abs=1.5)
    assert parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_soql_literal_escapes_everything_soql_defines() -> None:
    assert literal("o'brien\\x\n\"") == "'o\\'brien\\\\x\\n\\\"'"
    assert in_list(["a", "b"]) == "('a', 'b')"
    with pytest.raises(ValueError, match="at least one"):
        in_list([])


def test_settings_require_https() -> None:
    with pytest.raises(ValueError, match="https"):
        OrgSettings("http://acme.my.salesforce.com")
    assert OrgSettings("https://acme.my.salesforce.com/").token_url == (
        "https://acme.my.salesforce.com/services/oauth2/token"
    )


def test_short_lived_tokens_are_still_usable() -> None:
    now = time.time()
    token = CachedToken("t", "https://o", "https://a", expires_at=now + 30, issued_at=now)
    assert token.is_usable(now=now + 5, margin_s=60)
    assert not token.is_usable(now=now + 20, margin_s=60)


def test_unknown_log_status_is_logged_and_not_final(
    client: SalesforceClient, sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with sandbox.org.lock:
        user = add_end_user(sandbox.org.data, platform_key="+15550040000")
    accepted = client.delete_participants([user.end_user_id])
    with sandbox.org.lock:
        sandbox.org.data.logs[accepted.logs[0].id].status = "Archived"
    caplog.set_level(logging.WARNING, logger="erasure.salesforce")
    (log,) = client.api_logs(log_ids=[accepted.logs[0].id])
    assert log.state is LogState.UNKNOWN
    assert not log.is_final
    assert "unknown ConversationApiLog status" in caplog.text
