"""An OpenDSR 2.0 controller written from the specification's text ("Version 2.0"), using none of
erasure's OpenDSR code: it trusts only the test CA, validates the processor certificate's path,
checks every signature, and authenticates callbacks as the specification says (§8.8). The
conformance tests drive erasure through it."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.receivers import Received

STATUSES = {"pending", "in_progress", "completed", "cancelled"}  # §8
REQUEST_TYPES = {"access", "portability", "erasure"}  # §6.2
IDENTITY_TYPES = {  # §5.1
    "controller_customer_id",
    "android_advertising_id",
    "android_id",
    "email",
    "fire_advertising_id",
    "ios_advertising_id",
    "ios_vendor_id",
    "microsoft_advertising_id",
    "microsoft_publisher_id",
    "roku_publisher_id",
    "roku_advertising_id",
}
IDENTITY_FORMATS = {"raw", "sha1", "md5", "sha256"}  # §5.2
# RFC 3339 date-time (§5.6 of RFC 3339).
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class NotAuthentic(Exception):
    pass


class Untrusted(Exception):
    pass


@dataclass
class Controller:
    """An OpenDSR controller, from the specification's text."""

    client: FlaskClient
    api_key: str
    trust: x509.Certificate
    base: str  # the processor's OpenDSR base URL, major version included (§3.4)
    # Header names: OpenDSR's, or the prior OpenGDPR ones (§10.1).
    signature_header: str = "X-OpenDSR-Signature"
    domain_header: str = "X-OpenDSR-Processor-Domain"
    collection: str = "requests"
    certificate: x509.Certificate | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    @property
    def domain(self) -> str:
        host = urlsplit(self.base).hostname
        assert host is not None
        return host

    def call(self, method: str, url: str, **kwargs: Any) -> TestResponse:
        parts = urlsplit(url)
        return self.client.open(
            parts.path,
            method=method,
            base_url=f"{parts.scheme}://{parts.netloc}",  # the Host requests are received on
            headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
            **kwargs,
        )

    # --- §6 discovery, §4.1 the certificate ---

    def discover(self) -> dict[str, Any]:
        response = self.call("GET", f"{self.base}/discovery")  # §6: via HTTP GET
        assert response.status_code == 200
        document = response.get_json()
        assert isinstance(document["api_version"], str)  # §6.3 REQUIRED
        assert document["api_version"].split(".")[0] == self.base.rsplit("/v", 1)[1]
        pairs = document["supported_identities"]
        assert pairs and all(
            pair["identity_type"] and pair["identity_format"] in IDENTITY_FORMATS for pair in pairs
        )
        assert any(pair["identity_type"] in IDENTITY_TYPES for pair in pairs)
        assert set(document["supported_subject_request_types"]) <= REQUEST_TYPES
        assert "erasure" in document["supported_subject_request_types"]
        location = document["processor_certificate"]
        # §6.3: the certificate's URL is on the domain of the discovery.
        assert urlsplit(location).hostname == self.domain
        pem = self.call("GET", location)
        assert pem.status_code == 200
        chain = x509.load_pem_x509_certificates(pem.get_data())
        self.certificate = self.validate(chain)
        return document

    def validate(self, chain: list[x509.Certificate]) -> x509.Certificate:
        """§4.1: issued by a trusted CA, to the processor's domain; never self-signed."""
        leaf, intermediates = chain[0], chain[1:]
        if leaf.issuer == leaf.subject:
            raise Untrusted("a self-signed certificate MUST NOT be used")
        verifier = (
            PolicyBuilder()
            .store(Store([self.trust]))
            .time(datetime.now(UTC))
            .build_server_verifier(x509.DNSName(self.domain))
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise Untrusted(str(exc)) from None
        return leaf

    # --- §4.2 signatures ---

    def check_signature(self, body: bytes, signature: str) -> None:
        assert self.certificate is not None, "discover first"
        key = self.certificate.public_key()
        try:
            raw = base64.b64decode(signature, validate=True)
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(raw, body, ec.ECDSA(hashes.SHA256()))
            else:
                raise NotAuthentic("not a FIPS 186-4 signature key")
        except (ValueError, InvalidSignature):
            raise NotAuthentic("the signature does not verify") from None

    def check_signed(self, response: TestResponse) -> dict[str, Any]:
        """§8.3 (and §7.4, §9.3): the processor domain is the one requests are received on, and
        the signature by its certificate covers the body."""
        assert response.headers[self.domain_header] == self.domain
        self.check_signature(response.get_data(), response.headers[self.signature_header])
        with pytest.raises(NotAuthentic):  # it is the body's signature, not any body's
            self.check_signature(
                response.get_data() + b" ", response.headers[self.signature_header]
            )
        document: dict[str, Any] = json.loads(response.get_data())
        return document

    def check_processor_signature(self, document: dict[str, Any]) -> None:
        """§7.3, §9.2: `processor_signature` signs the body it is in, without itself."""
        rest = {name: value for name, value in document.items() if name != "processor_signature"}
        self.check_signature(rfc8785.dumps(rest), document["processor_signature"])
        with pytest.raises(NotAuthentic):
            self.check_signature(
                rfc8785.dumps({**rest, "request_status": "x"}), document["processor_signature"]
            )

    # --- §7 create, §8 status, §9 cancel ---

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(request).encode()
        response = self.call(
            "POST", f"{self.base}/{self.collection}", data=raw, content_type="application/json"
        )
        assert response.status_code == 201, response.get_data(as_text=True)  # §7.3
        document = self.check_signed(response)
        assert isinstance(document["controller_id"], str) and document["controller_id"]
        assert RFC3339.match(document["expected_completion_time"])
        assert RFC3339.match(document["received_time"])
        # §7.3: the entire body of the request, base64; the controller MUST NOT store it.
        assert base64.b64decode(document["encoded_request"]) == raw
        assert document["subject_request_id"] == request["subject_request_id"]
        self.check_processor_signature(document)
        return document

    def status(self, subject_request_id: str, *, path: str | None = None) -> dict[str, Any]:
        url = f"{self.base}/{path or self.collection}/{subject_request_id}"
        response = self.call("GET", url)  # §8.1
        assert response.status_code == 200
        document = self.check_signed(response)  # §8.3 headers
        assert isinstance(document["controller_id"], str) and document["controller_id"]
        assert RFC3339.match(document["expected_completion_time"])
        assert document["subject_request_id"] == subject_request_id
        assert document["request_status"] in STATUSES
        return document

    def cancel(self, subject_request_id: str) -> dict[str, Any]:
        response = self.call("DELETE", f"{self.base}/{self.collection}/{subject_request_id}")
        assert response.status_code == 202  # §9.2
        document = self.check_signed(response)
        assert isinstance(document["controller_id"], str) and document["controller_id"]
        assert RFC3339.match(document["received_time"])
        assert document["subject_request_id"] == subject_request_id
        self.check_processor_signature(document)
        return document

    def check_error(self, response: TestResponse, *, secrets: tuple[str, ...]) -> None:
        """§7.5: 400 with the error object of §7.6, no identity or credential in it."""
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == 400 and isinstance(error["code"], int)
        assert isinstance(error.get("message", ""), str)
        for detail in error.get("errors", []):
            assert {"message", "domain", "reason"} <= set(detail)
        text = response.get_data(as_text=True)
        for secret in (*secrets, self.api_key):
            assert secret not in text

    # --- §8.5-§8.8 callbacks ---

    def receive(self, got: Received, *, own_endpoints: set[str]) -> int:
        """§8.8: authenticate before parsing; 403 when it fails; then the callback URL."""
        headers = {name.lower(): value for name, value in got.headers.items()}  # any case
        try:
            assert headers.get(self.domain_header.lower()) == self.domain  # 1, 2: cached key
            self.check_signature(got.body, headers.get(self.signature_header.lower(), ""))  # 4
        except (AssertionError, NotAuthentic):
            self.refused += 1
            return 403  # 5
        document = json.loads(got.body)
        if document.get("status_callback_url") not in own_endpoints:  # 6
            self.refused += 1
            return 400
        self.callbacks.append(document)
        return 202
