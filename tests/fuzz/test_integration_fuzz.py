"""Fuzzing what the OpenAPI document cannot drive: signed ticketing webhooks (a real payload of each
system, then signed, so every case gets past the signature check), OpenDSR bodies and the intake
API's dates. Every string field gets a NUL and an unpaired surrogate in turn (exhaustively), then
Hypothesis puts hostile values (NUL, surrogates, extreme dates, wrong types, huge strings) into
any field. Nothing may answer 5xx: an authentic webhook answered 5xx is retried by its sender for
ever. Every 4xx is problem+json and carries no NUL back.

Deterministic in CI (`derandomize`); ERASURE_FUZZ_RANDOM=1 explores new cases and
ERASURE_FUZZ_EXAMPLES sets how many per target.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as run_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from erasure.accounts.models import Role
from erasure.app import create_app
from erasure.config import Settings
from erasure.core.models import Org
from erasure.identifiers import Vault
from erasure.integrations import sources
from tests.support.senders import SENDERS, Sender, dumps
from tests.support.web import KeyMaker

EXAMPLES = int(os.environ.get("ERASURE_FUZZ_EXAMPLES", "100"))
DERANDOMIZE = os.environ.get("ERASURE_FUZZ_RANDOM") != "1"
RUN = run_settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=DERANDOMIZE,
)

#: Instants at the edges of what a datetime can hold, in the offsets that push them over.
EXTREME_DATES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+14:00",
    "3000-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z",
]
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "", " ", "a" * 5000, *EXTREME_DATES]),
    st.text(max_size=40),
)
HOSTILE = st.one_of(
    HOSTILE_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.none(),
    st.booleans(),
    st.lists(HOSTILE_TEXT, max_size=3),
    st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=2),
)
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
ANY_INSTANT = st.one_of(
    st.sampled_from(EXTREME_DATES),
    st.datetimes(timezones=OFFSETS).map(datetime.isoformat),
)


Path = tuple[str | int, ...]


def leaf_paths(document: Any, prefix: Path = ()) -> Iterator[Path]:
    """The path (keys and list indexes) of every leaf."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from leaf_paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from leaf_paths(value, (*prefix, index))
    else:
        yield prefix


def string_paths(document: Any) -> list[Path]:
    return [path for path in leaf_paths(document) if isinstance(_get(document, path), str)]


def _get(document: Any, path: Path) -> Any:
    for part in path:
        document = document[part]
    return document


def with_values(document: dict[str, Any], values: dict[Path, Any]) -> dict[str, Any]:
    """A deep copy of `document` with the leaves at `values`' paths replaced."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    for path, value in values.items():
        *parents, last = path
        _get(copy, tuple(parents))[last] = value
    return copy


def assert_handled(response: TestResponse, what: object) -> None:
    assert response.status_code < 500, (what, response.get_data(as_text=True))
    if response.status_code >= 400:
        if response.request.path.startswith("/opendsr"):
            # OpenDSR's error object (its §7.5, §7.6), not problem details.
            assert response.mimetype == "application/json", what
            assert response.get_json()["error"]["code"] == response.status_code, what
        else:
            assert response.mimetype == "application/problem+json", what
        assert "\x00" not in response.get_data(as_text=True), what


@pytest.fixture
def fuzz_client(settings: Settings, db_session: Session) -> FlaskClient:
    # Thousands of requests with one key: without the rate limit, so every case reaches a view.
    app = create_app(
        settings.model_copy(update={"rate_limit_requests": 0}), session_factory=lambda: db_session
    )
    return app.test_client()


Post = Callable[[dict[str, Any]], TestResponse]


@pytest.fixture
def signed_post(
    fuzz_client: FlaskClient, db_session: Session, settings: Settings, org: Org
) -> Callable[[str], Post]:
    """A function posting a document to a fresh source of `system`, signed as that system does."""

    def for_system(system: str) -> Post:
        sender: Sender = SENDERS[system]
        source, secret = sources.create_source(
            db_session,
            name=f"fuzz-{system}-{uuid.uuid4().hex[:6]}",
            system=sender.system,
            vault=Vault(settings.encryption_key_bytes),
            org=org.name,
        )
        db_session.commit()

        def post(document: dict[str, Any]) -> TestResponse:
            at = datetime.now(UTC)
            body = dumps(sender.restamp(document, at))
            headers = sender.sign(body, secret=secret, at=at, delivery_id=str(uuid.uuid4()))
            return fuzz_client.post(f"/v1/webhooks/{source.name}", data=body, headers=headers)

        return post

    return for_system


def _payload(system: str) -> dict[str, Any]:
    return SENDERS[system].payload(email="fuzz@example.com", ticket="FUZZ-1")


@pytest.mark.parametrize("system", sorted(SENDERS))
def test_every_string_of_a_signed_webhook_with_nul_or_a_surrogate_is_400(
    signed_post: Callable[[str], Post], system: str
) -> None:
    post = signed_post(system)
    payload = _payload(system)
    paths = string_paths(payload)
    assert len(paths) >= 4
    for path in paths:
        for bad in ("\x00", "\ud800"):
            document = with_values(payload, {path: f"{_get(payload, path)}{bad}"})
            response = post(document)
            assert_handled(response, (system, path, bad))
            assert response.status_code == 400, (system, path, bad)


@pytest.mark.parametrize("system", sorted(SENDERS))
def test_hostile_values_in_signed_webhooks_never_5xx(
    signed_post: Callable[[str], Post], system: str
) -> None:
    post = signed_post(system)
    payload = _payload(system)
    paths = list(leaf_paths(payload))

    @given(values=st.dictionaries(st.sampled_from(paths), HOSTILE, min_size=1, max_size=4))
    @RUN
    def fuzz(values: dict[Path, Any]) -> None:
        assert_handled(post(with_values(payload, values)), values)

    fuzz()


OPENDSR_BODY: dict[str, Any] = {
    "api_version": "2.0",
    "regulation": "gdpr",
    "subject_request_id": "fuzz-1",
    "subject_request_type": "erasure",
    "submitted_time": "2026-01-10T10:00:00Z",
    "subject_identities": [
        {"identity_type": "email", "identity_value": "fuzz@example.com", "identity_format": "raw"}
    ],
    # A literal address outside every allowed network: refused without a DNS lookup.
    "status_callback_urls": ["https://203.0.113.7/cb"],
    "extensions": {"example.com": {"note": "ignored"}},
}


def test_every_string_of_an_opendsr_body_with_nul_is_400_and_extreme_dates_too(
    fuzz_client: FlaskClient, make_key: KeyMaker, org: Org
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    for path in string_paths(OPENDSR_BODY):
        document = with_values(OPENDSR_BODY, {path: f"{_get(OPENDSR_BODY, path)}\x00"})
        response = fuzz_client.post("/opendsr/v2/requests", json=document, headers=headers)
        assert_handled(response, path)
        assert response.status_code == 400, path
    for instant in EXTREME_DATES:
        document = with_values(
            OPENDSR_BODY,
            {
                ("submitted_time",): instant,
                ("subject_request_id",): instant,
                ("status_callback_urls",): [],
            },
        )
        response = fuzz_client.post("/opendsr/v2/requests", json=document, headers=headers)
        assert_handled(response, instant)
        assert response.status_code == 400, (instant, response.get_json())
        details = response.get_json()["error"]["errors"]
        assert [detail["location"] for detail in details] == ["submitted_time"], instant


def test_hostile_opendsr_bodies_never_5xx(
    fuzz_client: FlaskClient, make_key: KeyMaker, org: Org
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    # Callback URLs stay out: a generated host name would be looked up in DNS.
    paths = [p for p in leaf_paths(OPENDSR_BODY) if p[0] != "status_callback_urls"]

    @given(
        values=st.dictionaries(st.sampled_from(paths), HOSTILE, max_size=3),
        submitted_time=ANY_INSTANT,
    )
    @RUN
    def fuzz(values: dict[Path, Any], submitted_time: str) -> None:
        document = with_values(
            OPENDSR_BODY,
            {("submitted_time",): submitted_time, ("status_callback_urls",): [], **values},
        )
        response = fuzz_client.post(
            "/opendsr/v2/requests",
            data=_json(document),
            headers=headers,
            content_type="application/json",
        )
        assert_handled(response, document)

    fuzz()


def test_extreme_received_at_on_the_intake_api_never_5xx(
    fuzz_client: FlaskClient, make_key: KeyMaker, org: Org
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}

    @given(received_at=ANY_INSTANT, regulation=st.sampled_from(["gdpr", "ccpa", "lgpd"]))
    @RUN
    def fuzz(received_at: str, regulation: str) -> None:
        document = {
            "subject": {"email": "fuzz@example.com"},
            "regulation": regulation,
            "received_at": received_at,
        }
        response = fuzz_client.post("/v1/erasure-requests", json=document, headers=headers)
        assert_handled(response, document)
        assert response.status_code in (202, 422), (document, response.get_json())

    fuzz()


def _json(document: dict[str, Any]) -> bytes:
    # Python's encoder writes NaN and Infinity, which the body reader must refuse cleanly too.
    return json.dumps(document).encode()
