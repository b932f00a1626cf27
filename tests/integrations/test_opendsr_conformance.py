"""OpenDSR 2.0 conformance: the MUSTs of the specification (specification.md of the OpenDSR
repository, "Version 2.0") walked by a controller written here from the specification's text.

The controller uses none of erasure's OpenDSR code. It trusts only the test CA; it checks the
processor certificate with cryptography's X.509 path validation (issued by a trusted CA, to the
processor domain, §4.1), every signature with the certificate's public key (RSA PKCS#1 v1.5 or
ECDSA with SHA-256, FIPS 186-4, §4.2), and `processor_signature` over the RFC 8785 canonical form
of the answer without that member (the form the processor documents) with the reference `rfc8785`
package. Callbacks reach it over real HTTP from the delivery loop, and it authenticates them as
§8.8 says: the signature over the raw body before parsing, 403 when it fails, then the
`status_callback_url`.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org, RequestStatus
from erasure.deliveries import sending
from erasure.integrations import callbacks
from erasure.integrations.models import IntegrationCursor
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport
from erasure.pipeline.states import move_request
from erasure.workflow import Protection
from tests.support.certificates import TestCA
from tests.support.integrations import LOOPBACK
from tests.support.opendsr_controller import (
    RFC3339,
    STATUSES,
    Controller,
    Untrusted,
)
from tests.support.receivers import Received, receiver
from tests.support.web import KeyMaker

EMAIL = "conformance.subject@example.com"


def _request(callback_urls: list[str], domain: str) -> dict[str, Any]:
    return {  # §7.1.1, §7.2
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),  # §1.1: lowercase, v4
        "subject_request_type": "erasure",
        "submitted_time": "2026-11-20T10:00:00Z",
        "subject_identities": [
            {"identity_type": "email", "identity_value": EMAIL, "identity_format": "raw"}
        ],
        "api_version": "2.0",
        "status_callback_urls": callback_urls,
        # §7.1.2: keyed by processor domain; another processor's is not ours to read.
        "extensions": {domain: {"note": "kept out"}, "other-processor.example": {"id": 7}},
    }


@pytest.fixture
def controller(client: FlaskClient, make_key: KeyMaker, test_ca: TestCA) -> Controller:
    return Controller(
        client=client,
        api_key=make_key(Role.INTEGRATION),
        trust=test_ca.certificate,
        base="https://erasure.test/opendsr/v2",
    )


def _deliver(session: Session, protection: Protection, config: ProcessorConfig) -> None:
    callbacks.dispatch(session, links=callbacks.Links("https://erasure.test"))
    senders = callbacks.Senders(
        transport=RequestsTransport(guard=AddressGuard.allowing(LOOPBACK)),
        vault=protection.vault,
        processor=config,
    )
    while sending.send_next(session, senders):
        pass


def test_every_must_of_opendsr_2_0(
    controller: Controller,
    db_session: Session,
    org: Org,
    protection: Protection,
    processor_config: ProcessorConfig,
) -> None:
    last = db_session.scalar(select(func.max(AuditLeaf.id))) or 0
    db_session.merge(IntegrationCursor(name=callbacks.CURSOR, leaf_id=last))
    # §3.4: the major version at the start of the OpenDSR paths.
    assert urlsplit(controller.base).path.endswith("/v2")
    discovery = controller.discover()
    assert urlsplit(discovery["processor_certificate"]).path.startswith("/opendsr/v2/")

    with receiver() as rx:
        endpoints = {f"{rx.url}/opendsr/callbacks", f"{rx.url}/opendsr/callbacks-2"}
        rx.check = lambda got: controller.receive(got, own_endpoints=endpoints)
        # §7: a request to fulfil, with two callback URLs (§8.5: every one is invoked).
        fulfilled = _request(sorted(endpoints), controller.domain)
        created = controller.submit(fulfilled)
        srid = fulfilled["subject_request_id"]
        assert controller.status(srid)["request_status"] == "pending"
        # §3.1 names /status beside /requests: the same answer there.
        assert controller.status(srid, path="status")["request_status"] == "pending"

        # §9: a second one, cancelled while pending.
        cancelled = _request([f"{rx.url}/opendsr/callbacks"], controller.domain)
        controller.submit(cancelled)
        answer = controller.cancel(cancelled["subject_request_id"])
        assert controller.status(cancelled["subject_request_id"])["request_status"] == "cancelled"
        assert answer["received_time"] >= created["received_time"]

        # §7.5, §7.6: errors.
        missing = {**_request([], controller.domain), "subject_request_id": None}
        controller.check_error(
            controller.call("POST", f"{controller.base}/requests", json=missing),
            secrets=(EMAIL,),
        )
        bad_identity = _request([], controller.domain)
        bad_identity["subject_identities"][0]["identity_value"] = "conformance@@example"
        controller.check_error(
            controller.call("POST", f"{controller.base}/requests", json=bad_identity),
            secrets=("conformance@@example",),
        )
        unknown = str(uuid.uuid4())
        controller.check_error(
            controller.call("GET", f"{controller.base}/requests/{unknown}"), secrets=(unknown,)
        )
        reused = {**fulfilled, "regulation": "ccpa"}  # the same id for another request
        controller.check_error(
            controller.call("POST", f"{controller.base}/requests", json=reused),
            secrets=(EMAIL, srid),
        )

        # The processor works through the request (the pipeline's own transitions).
        erasure_request = db_session.scalar(
            select(ErasureRequest).where(ErasureRequest.reference_id == srid)
        )
        assert erasure_request is not None
        for kind, status in (
            ("request.resolving", RequestStatus.RESOLVING),
            ("request.resolved", RequestStatus.DELETING),
            ("request.confirming", RequestStatus.CONFIRMING),
        ):
            move_request(db_session, erasure_request, status, at=datetime.now(UTC), kind=kind)
        db_session.flush()
        assert controller.status(srid)["request_status"] == "in_progress"
        # §9: cancelling is for pending requests; once in progress it is refused, with a 400.
        controller.check_error(
            controller.call("DELETE", f"{controller.base}/requests/{srid}"), secrets=(srid,)
        )
        move_request(
            db_session,
            erasure_request,
            RequestStatus.COMPLETED,
            at=datetime.now(UTC),
            kind="request.completed",
        )
        db_session.flush()
        done = controller.status(srid)
        assert done["request_status"] == "completed"
        assert urlsplit(done["results_url"]).scheme == "https"  # OPTIONAL; a valid URL if given

        _deliver(db_session, protection, processor_config)

    # §8.5: invoked on every state change, at least once; §8.8: every one authentic.
    assert controller.refused == 0
    assert len(rx.received) == len(controller.callbacks)
    for document in controller.callbacks:  # §8.6 body
        assert isinstance(document["controller_id"], str) and document["controller_id"]
        assert document["request_status"] in STATUSES
        assert RFC3339.match(document["expected_completion_time"])
        assert EMAIL not in json.dumps(document)

    def told(subject_request_id: str, url: str) -> list[str]:
        return [
            document["request_status"]
            for document in controller.callbacks
            if document["subject_request_id"] == subject_request_id
            and document["status_callback_url"] == url
        ]

    for url in endpoints:
        assert told(srid, url) == ["pending", "in_progress", "completed"]
    assert told(cancelled["subject_request_id"], f"{rx.url}/opendsr/callbacks") == [
        "pending",
        "cancelled",
    ]


def test_the_controller_refuses_a_forged_or_misdirected_callback(
    controller: Controller, org: Org, test_ca: TestCA, tmp_path: Path
) -> None:
    """The controller's checks are live: a body signed by another certificate of the same CA is
    refused with 403 (§8.8 step 5), an altered body too, and one for another endpoint is not
    processed (step 6)."""
    controller.discover()
    endpoint = "https://controller.example/opendsr/callbacks"
    body = json.dumps(
        {
            "controller_id": "c",
            "status_callback_url": endpoint,
            "subject_request_id": str(uuid.uuid4()),
            "request_status": "completed",
            "expected_completion_time": "2026-12-01T00:00:00Z",
        }
    ).encode()
    impostor = test_ca.issue(tmp_path, "impostor.example", rsa_key=False)
    key = serialization.load_pem_private_key(impostor.key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    forged = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {"X-OpenDSR-Processor-Domain": "erasure.test", "X-OpenDSR-Signature": forged}
    got = Received("POST", "/opendsr/callbacks", headers, body)
    assert controller.receive(got, own_endpoints={endpoint}) == 403
    assert controller.receive(got, own_endpoints={"https://elsewhere.example/cb"}) == 403
    assert controller.refused == 2 and controller.callbacks == []


def test_a_self_signed_certificate_fails_the_controllers_validation(
    controller: Controller, tmp_path: Path
) -> None:
    """§4.1 from the controller's side: its validation refuses a certificate outside its trust,
    as a self-signed one is."""
    own = TestCA.create("erasure.test")
    with pytest.raises(Untrusted, match="self-signed"):
        controller.validate([own.certificate])
    other_ca = TestCA.create("Another CA")
    issued = other_ca.issue(tmp_path, "erasure.test")
    with pytest.raises(Untrusted):
        controller.validate([issued.certificate])


def test_the_opengdpr_routes_and_headers_are_honoured(controller: Controller, org: Org) -> None:
    """§10.1: the prior name's routes and headers."""
    legacy = Controller(
        client=controller.client,
        api_key=controller.api_key,
        trust=controller.trust,
        base="https://erasure.test/opengdpr/v1",
        signature_header="X-OpenGDPR-Signature",
        domain_header="X-OpenGDPR-Processor-Domain",
        collection="opengdpr_requests",
    )
    controller.discover()
    legacy.certificate = controller.certificate  # one processor, one certificate
    discovery = legacy.call("GET", f"{legacy.base}/discovery")
    assert discovery.status_code == 200
    assert (
        discovery.get_json()["processor_certificate"]
        == controller.discover()["processor_certificate"]
    )
    request = _request([], legacy.domain)
    legacy.submit(request)
    assert legacy.status(request["subject_request_id"])["request_status"] == "pending"
    legacy.cancel(request["subject_request_id"])
