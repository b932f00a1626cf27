"""How each ticket system really signs and shapes a webhook: headers and payloads as they send
them, so the tests exercise what production will see."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import standardwebhooks

from erasure.core.models import Source
from erasure.integrations.models import WebhookScheme


class Sender(Protocol):
    system: Source
    scheme: WebhookScheme

    def payload(
        self, *, email: str, ticket: str, erasure: bool = True, access: bool = False
    ) -> dict[str, Any]:
        """An erasure ticket; with `access`, an access ticket; with neither, an unrelated one."""
        ...

    def sign(
        self, body: bytes, *, secret: str, at: datetime, delivery_id: str
    ) -> dict[str, str]: ...

    def restamp(self, document: dict[str, Any], at: datetime) -> dict[str, Any]: ...

    signature_header: str
    required_headers: tuple[str, ...]


def dumps(document: dict[str, Any]) -> bytes:
    # The senders' own spacing: re-serialising with other separators changes the bytes.
    return json.dumps(document, indent=None, separators=(", ", ": ")).encode()


@dataclass
class Jira:
    system: Source = Source.JIRA
    scheme: WebhookScheme = WebhookScheme.JIRA
    signature_header: str = "X-Hub-Signature"
    required_headers: tuple[str, ...] = ("X-Hub-Signature", "X-Atlassian-Webhook-Identifier")

    def payload(
        self, *, email: str, ticket: str, erasure: bool = True, access: bool = False
    ) -> dict[str, Any]:
        return {
            "timestamp": int(datetime.now(UTC).timestamp() * 1000),
            "webhookEvent": "jira:issue_created",
            "issue_event_type_name": "issue_created",
            "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Agent"},
            "issue": {
                "id": "10042",
                "self": f"https://acme.atlassian.net/rest/api/2/issue/{ticket}",
                "key": ticket,
                "fields": {
                    "summary": "Please delete my data",
                    "issuetype": {"name": "Privacy request"},
                    "project": {"key": ticket.split("-", maxsplit=1)[0]},
                    "labels": ["gdpr-access"]
                    if access
                    else ["gdpr-erasure"]
                    if erasure
                    else ["billing"],
                    "reporter": {"accountId": "qm:1", "emailAddress": email},
                },
            },
        }

    def restamp(self, document: dict[str, Any], at: datetime) -> dict[str, Any]:
        return {**document, "timestamp": int(at.timestamp() * 1000)}

    def sign(self, body: bytes, *, secret: str, at: datetime, delivery_id: str) -> dict[str, str]:
        del at  # Jira signs the body only; its timestamp is inside the body
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-Hub-Signature": f"sha256={digest}",
            "X-Atlassian-Webhook-Identifier": delivery_id,
            "X-Atlassian-Webhook-Flow": "Primary",
            "User-Agent": "Atlassian Webhook HTTP Client",
        }


@dataclass
class Zendesk:
    system: Source = Source.ZENDESK
    scheme: WebhookScheme = WebhookScheme.ZENDESK
    signature_header: str = "X-Zendesk-Webhook-Signature"
    required_headers: tuple[str, ...] = (
        "X-Zendesk-Webhook-Signature",
        "X-Zendesk-Webhook-Signature-Timestamp",
        "X-Zendesk-Webhook-Invocation-Id",
    )

    def payload(
        self, *, email: str, ticket: str, erasure: bool = True, access: bool = False
    ) -> dict[str, Any]:
        return {
            "ticket": {
                "id": ticket,
                "url": f"https://acme.zendesk.com/agent/tickets/{ticket}",
                "title": "Delete my data",
                "tags": "gdpr_access privacy"
                if access
                else "gdpr_erasure privacy"
                if erasure
                else "billing",
                "requester": {"email": email, "name": "Someone"},
            }
        }

    def restamp(self, document: dict[str, Any], at: datetime) -> dict[str, Any]:
        # The documented trigger body carries the ticket's update time: the signed timestamp has
        # whole seconds, so without it two events of one ticket within a second are one delivery.
        return {"ticket": {**document["ticket"], "updated_at": at.isoformat()}}

    def sign(self, body: bytes, *, secret: str, at: datetime, delivery_id: str) -> dict[str, str]:
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = base64.b64encode(
            hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        ).decode()
        return {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": signature,
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Id": "01F1KRFQ6BG29CNWFR60NK5FNY",
            "X-Zendesk-Webhook-Invocation-Id": delivery_id,
            "X-Zendesk-Account-Id": "123456",
        }


def _standard(secret: str, body: bytes, at: datetime, delivery_id: str) -> dict[str, str]:
    # The reference implementation signs: our verifier must agree with it.
    signature = standardwebhooks.Webhook(secret).sign(delivery_id, at, body.decode())
    return {
        "Content-Type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


@dataclass
class ServiceNow:
    """The business rule of docs/integrations.md: Standard Webhooks signed from a script."""

    system: Source = Source.SERVICENOW
    scheme: WebhookScheme = WebhookScheme.STANDARD_WEBHOOKS
    signature_header: str = "webhook-signature"
    required_headers: tuple[str, ...] = ("webhook-id", "webhook-timestamp", "webhook-signature")

    def payload(
        self, *, email: str, ticket: str, erasure: bool = True, access: bool = False
    ) -> dict[str, Any]:
        return {
            "sys_id": uuid.uuid5(uuid.NAMESPACE_URL, ticket).hex,
            "number": ticket,
            "table": "sn_customerservice_case",
            "url": f"https://acme.service-now.com/nav_to.do?uri=sn_customerservice_case.do?sys_id={ticket}",
            "request_type": "access" if access else "erasure" if erasure else "correction",
            "regulation": "gdpr",
            "subject": {"email": email, "phone": ""},
        }

    def restamp(self, document: dict[str, Any], at: datetime) -> dict[str, Any]:
        return document

    def sign(self, body: bytes, *, secret: str, at: datetime, delivery_id: str) -> dict[str, str]:
        return _standard(secret, body, at, delivery_id)


@dataclass
class StandardWebhooks:
    system: Source = Source.STANDARD_WEBHOOKS
    scheme: WebhookScheme = WebhookScheme.STANDARD_WEBHOOKS
    signature_header: str = "webhook-signature"
    required_headers: tuple[str, ...] = ("webhook-id", "webhook-timestamp", "webhook-signature")

    def payload(
        self, *, email: str, ticket: str, erasure: bool = True, access: bool = False
    ) -> dict[str, Any]:
        return {
            "type": "access.requested"
            if access
            else "erasure.requested"
            if erasure
            else "ticket.updated",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "reference": {"id": ticket, "url": f"https://tickets.example/{ticket}"},
                "subject": {"email": email},
                "regulation": "gdpr",
            },
        }

    def restamp(self, document: dict[str, Any], at: datetime) -> dict[str, Any]:
        return document

    def sign(self, body: bytes, *, secret: str, at: datetime, delivery_id: str) -> dict[str, str]:
        return _standard(secret, body, at, delivery_id)


SENDERS: dict[str, Sender] = {
    "jira": Jira(),
    "zendesk": Zendesk(),
    "servicenow": ServiceNow(),
    "standard": StandardWebhooks(),
}

STALE = timedelta(minutes=6)
