"""The client under Salesforce's faults: 404 as an org fault, 429 and Retry-After, ambiguous
deletes reconciled through the logs, and the calls counted; against the sandbox over HTTP."""

from __future__ import annotations

import pytest

from erasure.salesforce import (
    AmbiguousDeleteError,
    BadRequestError,
    EngagementApiNotFoundError,
    InMemoryUsageStore,
    OpenSessionError,
    OrgEndpointNotFoundError,
    OrgSettings,
    RateLimitedError,
    Route,
    SalesforceClient,
    Subject,
    SubjectKind,
    Timeouts,
    UnavailableError,
    logs_by_entity,
)
from erasure.salesforce.sandbox import Fault, SandboxHandle
from tests.support.salesforce import MakeClient, seed

# -- rule 1: 404 is an org fault --------------------------------------------------------------


def test_404_from_engagement_api_is_an_org_fault(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    user = seed(sandbox, platform_key="+15550012000")
    sandbox.org.configure(api_enabled=False)
    with pytest.raises(EngagementApiNotFoundError) as caught:
        client.delete_participants([user.end_user_id])
    assert caught.value.org_fault
    assert caught.value.status == 404
    # Nothing was deleted, and SOQL still sees the end user: 404 never meant "already gone".
    assert client.existing_end_users([user.end_user_id]) == {user.end_user_id}


def test_api_version_the_org_does_not_serve_is_an_org_fault(
    make_client: MakeClient, org_settings: OrgSettings
) -> None:
    client = make_client(
        org=OrgSettings(
            org_settings.my_domain_url, api_version="99.0", ca_bundle=org_settings.ca_bundle
        )
    )
    with pytest.raises(OrgEndpointNotFoundError) as caught:
        client.existing_end_users(["0PA5g0000000001GAA"])
    assert caught.value.org_fault


def test_old_api_version_cannot_read_logs(
    make_client: MakeClient, org_settings: OrgSettings
) -> None:
    client = make_client(
        org=OrgSettings(
            org_settings.my_domain_url, api_version="62.0", ca_bundle=org_settings.ca_bundle
        )
    )
    with pytest.raises(BadRequestError) as caught:
        client.api_logs(log_ids=["1CL5g0000000001GAA"])
    assert caught.value.error_code == "INVALID_TYPE"


# -- rule 3: 429 and Retry-After for every worker ---------------------------------------------


def test_429_carries_a_usable_retry_after_and_holds_every_worker(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    sandbox.org.configure(delete_limit=2, hour_s=30.0)
    users = [seed(sandbox, platform_key=f"+1555400{n:04d}") for n in range(4)]
    shared_usage = InMemoryUsageStore()  # what both "workers" share (Redis in production)
    worker_1 = make_client(usage=shared_usage)
    worker_2 = make_client(usage=shared_usage)
    worker_1.delete_participants([users[0].end_user_id])
    worker_1.delete_participants([users[1].end_user_id])
    with pytest.raises(RateLimitedError) as caught:
        worker_1.delete_participants([users[2].end_user_id])
    assert caught.value.status == 429
    assert caught.value.retryable
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 30
    spent = sandbox.org.call_count(Route.DELETE_PARTICIPANTS)
    with pytest.raises(RateLimitedError) as held:
        worker_2.delete_participants([users[2].end_user_id])  # never reaches Salesforce
    assert held.value.retry_after is not None
    assert held.value.retry_after > 0
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == spent


def test_each_execution_user_has_its_own_quota(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    from erasure.salesforce import CredentialSettings
    from tests.support.salesforce import CLIENT_B

    sandbox.org.configure(delete_limit=1)
    users = [seed(sandbox, platform_key=f"+1555500{n:04d}") for n in range(2)]
    make_client().delete_participants([users[0].end_user_id])
    other = make_client(credential=CredentialSettings(*CLIENT_B))
    assert len(other.delete_participants([users[1].end_user_id]).logs) == 1


# -- rule 4: ambiguous deletes are reconciled through the logs --------------------------------


def test_5xx_after_logs_were_written_is_ambiguous_and_the_logs_are_found(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    users = [seed(sandbox, platform_key=f"+1555600{n:04d}") for n in range(3)]
    ids = [u.end_user_id for u in users]
    sandbox.org.inject(Fault(route=Route.DELETE_PARTICIPANTS, status=502, when="after"))
    with pytest.raises(AmbiguousDeleteError) as caught:
        client.delete_participants(ids)
    assert caught.value.ids == tuple(ids)
    assert caught.value.retryable
    assert not isinstance(caught.value, UnavailableError)

    logged = logs_by_entity(client.api_logs(entity_ids=ids), ids)
    to_resend = [i for i, logs in logged.items() if not logs]
    assert to_resend == []
    assert sorted(sandbox.org.counters()["accepted_ids"][Route.DELETE_PARTICIPANTS]) == sorted(ids)


def test_5xx_before_logs_were_written_is_resent_exactly_once(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    users = [seed(sandbox, platform_key=f"+1555700{n:04d}") for n in range(2)]
    ids = [u.end_user_id for u in users]
    sandbox.org.inject(Fault(route=Route.DELETE_PARTICIPANTS, status=503, when="before"))
    with pytest.raises(AmbiguousDeleteError):
        client.delete_participants(ids)
    logged = logs_by_entity(client.api_logs(entity_ids=ids), ids)
    to_resend = [i for i, logs in logged.items() if not logs]
    assert to_resend == ids
    client.delete_participants(to_resend)
    accepted = sandbox.org.counters()["accepted_ids"][Route.DELETE_PARTICIPANTS]
    assert sorted(accepted) == sorted(ids)  # no id accepted twice


def test_read_timeout_on_delete_is_ambiguous(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    user = seed(sandbox, platform_key="+15550013000")
    client = make_client(timeouts=Timeouts(connect_s=2.0, read_s=0.3))
    client.token()  # so the token request is not the one that times out
    sandbox.org.inject(Fault(route=Route.DELETE_PARTICIPANTS, status=None, latency_s=0.8))
    with pytest.raises(AmbiguousDeleteError) as caught:
        client.delete_participants([user.end_user_id])
    assert caught.value.status is None
    assert len(client.api_logs(entity_ids=[user.end_user_id])) == 1
    assert client.usage().by_route[Route.DELETE_PARTICIPANTS] == {"timeout": 1}


def test_read_timeout_and_5xx_on_a_query_are_plain_unavailable(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    client = make_client(timeouts=Timeouts(connect_s=2.0, read_s=0.3))
    sandbox.org.inject(Fault(route=Route.QUERY, status=503))
    with pytest.raises(UnavailableError) as caught:
        client.existing_end_users(["0PA5g0000000001GAA"])
    assert caught.value.status == 503
    assert caught.value.retryable
    sandbox.org.inject(Fault(route=Route.QUERY, status=None, latency_s=0.8))
    with pytest.raises(UnavailableError):
        client.existing_end_users(["0PA5g0000000001GAA"])


def test_connection_refused_is_unavailable(make_client: MakeClient) -> None:
    org = OrgSettings("https://127.0.0.1:9", ca_bundle=None)
    client = make_client(org=org)
    from erasure.salesforce import TokenEndpointError

    with pytest.raises(TokenEndpointError):
        client.existing_end_users(["0PA5g0000000001GAA"])


# -- counters ---------------------------------------------------------------------------------


def test_calls_spent_are_counted_per_route_and_outcome(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    user = seed(sandbox, platform_key="+15550014000", open_session=True)
    client.find_end_users(Subject(SubjectKind.PLATFORM_KEY, "+15550014000"))
    with pytest.raises(OpenSessionError):
        client.delete_participants([user.end_user_id])
    usage = client.usage()
    assert usage.by_route[Route.TOKEN] == {"200": 1}
    assert usage.by_route[Route.QUERY] == {"200": 1}
    assert usage.by_route[Route.DELETE_PARTICIPANTS] == {"412": 1}
    assert usage.total(Route.DELETE_PARTICIPANTS) == 1
    assert usage.total() == 3
