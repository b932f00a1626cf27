"""Reading a conversation's entries marks it active for about 30 minutes (a documented side
effect): the sandbox answers a delete that reaches it with 412 until the window passes."""

from __future__ import annotations

import requests

from erasure.salesforce.sandbox import SandboxHandle, SeededEndUser, add_end_user
from tests.support.salesforce import ENG, bearer, call, delete, get_token


def _seed(sandbox: SandboxHandle, key: str, conversations: int = 1) -> SeededEndUser:
    with sandbox.org.lock:
        return add_end_user(sandbox.org.data, platform_key=key, conversations=conversations)


def _identifier(sandbox: SandboxHandle, conv_id: str) -> str:
    with sandbox.org.lock:
        return str(sandbox.org.data.tables["Conversation"][conv_id]["ConversationIdentifier"])


def _read(http: requests.Session, sandbox: SandboxHandle, token: str, conv_id: str) -> int:
    resp = call(
        http,
        sandbox,
        "GET",
        f"{ENG}/conversation-entries",
        params={"conversationIdentifier": _identifier(sandbox, conv_id)},
        headers=bearer(token),
    )
    return resp.status_code


def test_reading_entries_blocks_the_end_users_delete_for_thirty_minutes(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    sandbox.org.hold_clock(True)
    user = _seed(sandbox, "+15550070000", conversations=2)
    untouched = _seed(sandbox, "+15550071000")
    token = get_token(http, sandbox)
    assert _read(http, sandbox, token, user.conversation_ids[1]) == 200
    blocked = delete(http, sandbox, token, {"participantEntityIds": [user.end_user_id]})
    assert blocked.status_code == 412
    assert sandbox.org.counters()["accepted_ids"] == {}
    # Another subject's delete is not touched by it.
    other = delete(http, sandbox, token, {"participantEntityIds": [untouched.end_user_id]})
    assert other.status_code == 202
    sandbox.org.advance(1790)
    still = delete(http, sandbox, token, {"participantEntityIds": [user.end_user_id]})
    assert still.status_code == 412
    sandbox.org.advance(11)
    token = get_token(http, sandbox)  # the first one lived 30 minutes too
    after = delete(http, sandbox, token, {"participantEntityIds": [user.end_user_id]})
    assert after.status_code == 202


def test_reading_entries_blocks_a_conversation_delete_and_each_read_extends_it(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    sandbox.org.hold_clock(True)
    sandbox.org.configure(entries_activity_s=100.0)
    (conv,) = _seed(sandbox, "+15550072000").conversation_ids
    token = get_token(http, sandbox)
    assert _read(http, sandbox, token, conv) == 200
    sandbox.org.advance(60)
    assert _read(http, sandbox, token, conv) == 200  # window now ends at +160
    sandbox.org.advance(60)
    blocked = delete(http, sandbox, token, {"conversationIds": [conv]}, "conversations")
    assert blocked.status_code == 412
    sandbox.org.advance(41)
    done = delete(http, sandbox, token, {"conversationIds": [conv]}, "conversations")
    assert done.status_code == 202
