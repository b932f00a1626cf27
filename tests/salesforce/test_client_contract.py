"""The client against the sandbox over HTTPS: every rule of docs/salesforce.md
section 1 and every fault."""

from __future__ import annotations

from dataclasses import replace

import pytest

from erasure.salesforce import (
    BadRequestError,
    DeleteIdsIn,
    EngagementApiNotFoundError,
    LogState,
    OpenSessionError,
    OrgSettings,
    Route,
    SalesforceClient,
    Subject,
    SubjectKind,
    logs_by_entity,
)
from erasure.salesforce.sandbox import SandboxHandle
from tests.support.salesforce import MakeClient, finish_logs, seed

# -- resolving a subject ----------------------------------------------------------------------


def test_find_end_users_by_each_kind_of_identifier(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    sms = seed(sandbox, platform_key="+15550001111", email="sms@example.com", phone="+15550001111")
    wa = seed(sandbox, platform_key="whatsapp:+15550002222", message_type="WhatsApp")
    seed(sandbox, platform_key="+15559999999", email="other@example.com")

    by_phone = client.find_end_users(Subject(SubjectKind.PHONE, "+15550001111"))
    assert [e.id for e in by_phone] == [sms.end_user_id]
    by_wa_phone = client.find_end_users(Subject(SubjectKind.PHONE, "+15550002222"))
    assert [e.id for e in by_wa_phone] == [wa.end_user_id]
    by_email = client.find_end_users(Subject(SubjectKind.EMAIL, "SMS@example.com"))
    assert [e.id for e in by_email] == [sms.end_user_id]
    by_key = client.find_end_users(Subject(SubjectKind.PLATFORM_KEY, "whatsapp:+15550002222"))
    assert [e.id for e in by_key] == [wa.end_user_id]
    assert sms.contact_id is not None
    by_contact = client.find_end_users(Subject(SubjectKind.CONTACT_ID, sms.contact_id))
    assert [e.id for e in by_contact] == [sms.end_user_id]
    assert client.find_end_users(Subject(SubjectKind.EMAIL, "nobody@example.com")) == []


@pytest.mark.parametrize(
    ("stored", "field", "subject"),
    [
        ("(415) 555-0101", "Phone", "+14155550101"),
        ("+1 415-555-0102", "Phone", "+14155550102"),
        ("4155550103", "Phone", "+14155550103"),
        ("+1 (415) 555-0104", "MobilePhone", "+14155550104"),
        ("415.555.0105", "MobilePhone", "+14155550105"),
        ("+14155550106", "Phone", "+14155550106"),
        ("020 7946 0958", "Phone", "+442079460958"),  # a national number with its trunk 0
        ("+44 20 7946 0959", "MobilePhone", "+442079460959"),
    ],
)
def test_a_contact_is_found_by_phone_however_the_org_wrote_the_number(
    client: SalesforceClient, sandbox: SandboxHandle, stored: str, field: str, subject: str
) -> None:
    """Real orgs hold phones as people typed them. The end user here is a web chat user (its
    platform key is no phone number), so only the Contact's phone leads to it."""
    person = seed(
        sandbox, platform_key="web:7f3c", message_type="EmbeddedMessaging", email="p@example.com"
    )
    with sandbox.org.lock:
        sandbox.org.data.tables["Contact"][person.contact_id or ""][field] = stored
    found = client.find_end_users(Subject(SubjectKind.PHONE, subject))
    assert [e.id for e in found] == [person.end_user_id]
    assert sandbox.org.call_count(Route.SEARCH) == 1


def test_phone_lookup_finds_only_the_subjects_own_numbers(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    """A search over every phone field also matches an assistant's line or a fax: those are not
    the subject's, so the client keeps a contact only when one of its own numbers is the same
    number. A number with an extension is another line."""
    assistant = seed(
        sandbox, platform_key="web:a1", message_type="EmbeddedMessaging", email="a@x.io"
    )
    extension = seed(
        sandbox, platform_key="web:a2", message_type="EmbeddedMessaging", email="e@x.io"
    )
    neighbour = seed(
        sandbox, platform_key="web:a3", message_type="EmbeddedMessaging", email="n@x.io"
    )
    with sandbox.org.lock:
        contacts = sandbox.org.data.tables["Contact"]
        contacts[assistant.contact_id or ""]["AssistantPhone"] = "(415) 555-0120"
        contacts[extension.contact_id or ""]["Phone"] = "(415) 555-0120 ext. 7"
        contacts[neighbour.contact_id or ""]["Phone"] = "(415) 555-0121"
    assert client.find_end_users(Subject(SubjectKind.PHONE, "+14155550120")) == []


def test_platform_keys_of_a_phone_are_still_matched_exactly(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    """SMS and WhatsApp keys are written by Salesforce in E.164: no search needed for them."""
    sms = seed(sandbox, platform_key="+15550001212", message_type="Text")
    wa = seed(sandbox, platform_key="whatsapp:+15550001212", message_type="WhatsApp")
    seed(sandbox, platform_key="+15550001213", message_type="Text")
    found = client.find_end_users(Subject(SubjectKind.PHONE, "+15550001212"))
    assert {e.id for e in found} == {sms.end_user_id, wa.end_user_id}


@pytest.mark.parametrize(
    "hostile",
    [
        "o'brien@example.com",
        "x' OR Email != '",
        "back\\slash@example.com",
        "line\nbreak@example.com",
    ],
)
def test_soql_literals_are_escaped(
    client: SalesforceClient, sandbox: SandboxHandle, hostile: str
) -> None:
    seed(sandbox, platform_key="+15550003333", email="victim@example.com")
    quoted = seed(sandbox, platform_key="+15550004444", email=hostile)
    found = client.find_end_users(Subject(SubjectKind.EMAIL, hostile))
    assert [e.id for e in found] == [quoted.end_user_id]


def test_query_follows_next_records_url(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    seeded = [seed(sandbox, platform_key=f"+1555000{n:04d}") for n in range(7)]
    sandbox.org.configure(query_batch_size=3)
    ids = {s.end_user_id for s in seeded}
    assert client.existing_end_users(ids) == ids
    assert sandbox.org.call_count(Route.QUERY) == 3  # 3 + 3 + 1 records


def test_large_id_sets_are_split_into_several_queries(
    make_client: MakeClient, sandbox: SandboxHandle, org_settings: OrgSettings
) -> None:
    seeded = [seed(sandbox, platform_key=f"+1555100{n:04d}") for n in range(5)]
    org = OrgSettings(
        org_settings.my_domain_url, ca_bundle=org_settings.ca_bundle, max_ids_per_query=2
    )
    client = make_client(org=org)
    ids = {s.end_user_id for s in seeded}
    assert client.existing_end_users(ids) == ids
    assert sandbox.org.call_count(Route.QUERY) == 3


# -- rule 2: open sessions are found by SOQL, and 412 is classified ---------------------------


def test_open_sessions_are_found_before_any_delete(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    busy = seed(sandbox, platform_key="+15550005555", open_session=True, conversations=2)
    idle = seed(sandbox, platform_key="+15550006666", conversations=2)
    open_rows = client.open_sessions([busy.end_user_id, idle.end_user_id])
    assert {s.end_user_id for s in open_rows} == {busy.end_user_id}
    assert len(client.sessions([busy.end_user_id, idle.end_user_id])) == 4
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 0


def test_412_on_open_session_is_its_own_error(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    busy = seed(sandbox, platform_key="+15550007777", open_session=True)
    with pytest.raises(OpenSessionError) as caught:
        client.delete_participants([busy.end_user_id])
    assert caught.value.status == 412
    assert caught.value.retryable
    assert sandbox.org.counters()["accepted_ids"] == {}


# -- deletes, logs and read-back (rule 6) -----------------------------------------------------


def test_participant_delete_completes_and_read_back_finds_it_gone(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    users = [seed(sandbox, platform_key=f"+1555200{n:04d}", conversations=2) for n in range(3)]
    ids = [u.end_user_id for u in users]
    accepted = client.delete_participants(ids)
    assert accepted.status == 202
    assert len(accepted.logs) == 3
    assert all(accepted.log_for(i) is not None for i in ids)
    assert {log.state for log in accepted.logs} == {LogState.PENDING}
    assert client.existing_end_users(ids) == set(ids)  # asynchronous: not gone yet

    finish_logs(sandbox)
    logs = client.api_logs(log_ids=[log.id for log in accepted.logs])
    assert [log.state for log in logs] == [LogState.COMPLETED] * 3
    assert all(log.is_final for log in logs)
    history = logs[0].status_history or ""
    assert [h.split("@")[0] for h in history.split(";")] == [
        "REQUESTED",
        "ENQUEUED",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assert client.existing_end_users(ids) == set()
    assert client.sessions(ids) == []
    conv_ids = [c for u in users for c in u.conversation_ids]
    assert client.existing_conversations(conv_ids) == set()


def test_logs_are_found_by_15_char_entity_id(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    user = seed(sandbox, platform_key="+15550008888")
    client.delete_participants([user.end_user_id])
    logs = client.api_logs(entity_ids=[user.end_user_id])
    assert len(logs) == 1
    assert logs[0].requested_entity_identifier == user.end_user_id[:15]
    grouped = logs_by_entity(logs, [user.end_user_id, "0PA5g0000000001GAA"])
    assert grouped[user.end_user_id] == logs
    assert grouped["0PA5g0000000001GAA"] == []


def test_blocking_child_record_makes_the_log_fail(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    blocked = seed(sandbox, platform_key="+15550009999", blocking_child="EngagementAttendee")
    accepted = client.delete_participants([blocked.end_user_id])
    finish_logs(sandbox)
    (log,) = client.api_logs(log_ids=[accepted.logs[0].id])
    assert log.state is LogState.FAILED
    assert "EngagementAttendee" in (log.context or "")
    assert client.existing_end_users([blocked.end_user_id]) == {blocked.end_user_id}


def test_conversation_delete_removes_only_that_conversation(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    user = seed(sandbox, platform_key="+15550010000", conversations=2)
    first, second = user.conversation_ids
    with sandbox.org.lock:
        identifier = sandbox.org.data.tables["Conversation"][first]["ConversationIdentifier"]
    assert len(client.conversation_entries(identifier, record_limit=2)) == 3  # two pages
    with pytest.raises(OpenSessionError):  # the read made the conversation active (~30 min)
        client.delete_conversations([first])
    sandbox.org.advance(1801)
    client.delete_conversations([first])
    finish_logs(sandbox)
    assert client.existing_conversations([first, second]) == {second}
    assert client.existing_end_users([user.end_user_id]) == {user.end_user_id}
    with pytest.raises(EngagementApiNotFoundError):
        client.conversation_entries(identifier)  # gone: entries no longer served


def test_batches_are_checked_before_spending_a_call(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    user = seed(sandbox, platform_key="+15550011000")
    with pytest.raises(ValueError, match="at least one"):
        client.delete_participants([])
    with pytest.raises(ValueError, match="at most"):
        client.delete_participants([user.end_user_id] * 201)
    with pytest.raises(ValueError, match="duplicate"):
        client.delete_participants([user.end_user_id, user.end_user_id[:15]])
    with pytest.raises(ValueError, match="malformed"):
        client.delete_participants(["not-an-id"])
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 0


def test_org_body_field_names_and_batch_size_are_settings(
    make_client: MakeClient, sandbox: SandboxHandle, org_settings: OrgSettings
) -> None:
    sandbox.org.configure(participant_ids_field="ids", max_ids_per_call=2)
    users = [seed(sandbox, platform_key=f"+1555300{n:04d}") for n in range(3)]
    wrong = make_client()
    with pytest.raises(BadRequestError):
        wrong.delete_participants([users[0].end_user_id])
    org = OrgSettings(
        org_settings.my_domain_url,
        ca_bundle=org_settings.ca_bundle,
        participant_ids_field="ids",
        max_ids_per_delete=2,
    )
    right = make_client(org=org)
    assert len(right.delete_participants([u.end_user_id for u in users[:2]]).logs) == 2
    with pytest.raises(ValueError, match="at most 2"):
        right.delete_participants([u.end_user_id for u in users])


@pytest.mark.parametrize("shape", list(DeleteIdsIn))
def test_delete_ids_travel_where_the_org_setting_says(
    make_client: MakeClient, sandbox: SandboxHandle, org_settings: OrgSettings, shape: DeleteIdsIn
) -> None:
    """Whether Salesforce takes the ids in a JSON body or in the query string is undocumented:
    the org setting decides, and the sandbox can be either kind of org."""
    sandbox.org.configure(delete_ids_in=shape.value)
    users = [seed(sandbox, platform_key=f"+1555310{n:04d}") for n in range(3)]
    other = DeleteIdsIn.QUERY if shape is DeleteIdsIn.BODY else DeleteIdsIn.BODY
    wrong = make_client(org=replace(org_settings, delete_ids_in=other))
    with pytest.raises(BadRequestError):
        wrong.delete_participants([users[0].end_user_id])
    right = make_client(org=replace(org_settings, delete_ids_in=shape))
    accepted = right.delete_participants([u.end_user_id for u in users[:2]])
    assert [log.requested_entity_identifier for log in accepted.logs] == [
        u.end_user_id[:15] for u in users[:2]
    ]
    right.delete_conversations([users[2].conversation_ids[0]])
    assert sandbox.org.accepted_ids[Route.DELETE_PARTICIPANTS] == [u.end_user_id for u in users[:2]]
    assert sandbox.org.accepted_ids[Route.DELETE_CONVERSATIONS] == [users[2].conversation_ids[0]]
