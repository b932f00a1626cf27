"""Comment-back to the source ticket when a request completes or fails: a Jira comment, a
Zendesk private comment, a ServiceNow work note, each through the system's REST API with the
source's own credentials. The text names the request, its status and its certificate link,
never the subject. Pure request building: sending is the callbacks' delivery loop."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote

from erasure.core.models import Source
from erasure.identifiers import Vault
from erasure.integrations import mapping, sources
from erasure.integrations.models import WebhookSource


class CommentNotConfigured(Exception):
    """The source has no REST credentials, or its system takes no comments."""


def comment_text(
    request_id: uuid.UUID, *, status: str, outcome: str | None, certificate_url: str | None
) -> str:
    lines = [f"Erasure request {request_id}: {status.replace('_', ' ')}."]
    if outcome:
        lines.append(f"Outcome: {outcome}")
    if certificate_url:
        lines.append(f"Certificate of erasure: {certificate_url}")
    return "\n".join(lines)


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def request_for(
    source: WebhookSource, document: dict[str, Any], *, vault: Vault
) -> tuple[str, str, dict[str, str], bytes]:
    """(method, url, headers, body) of the comment. Raises CommentNotConfigured."""
    token = sources.comment_token(source, vault=vault)
    if not source.comment_base_url or token is None or not source.comment_user:
        raise CommentNotConfigured("the source has no comment-back credentials")
    base = source.comment_base_url.rstrip("/")
    ticket = quote(str(document["ticket"]), safe="")
    text: str = document["text"]
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    payload: dict[str, Any]
    match source.system:
        case Source.JIRA:
            # Jira Cloud REST v3 takes comments in Atlassian Document Format.
            method, url = "POST", f"{base}/rest/api/3/issue/{ticket}/comment"
            headers["Authorization"] = _basic(source.comment_user, token)
            paragraphs = [
                {"type": "paragraph", "content": [{"type": "text", "text": line}]}
                for line in text.split("\n")
            ]
            payload = {"body": {"type": "doc", "version": 1, "content": paragraphs}}
        case Source.ZENDESK:
            # An API token authenticates as "{email}/token:{token}".
            method, url = "PUT", f"{base}/api/v2/tickets/{ticket}.json"
            headers["Authorization"] = _basic(f"{source.comment_user}/token", token)
            payload = {"ticket": {"comment": {"body": text, "public": False}}}
        case Source.SERVICENOW:
            table = mapping.mapping_for(source.system, source.mapping).ticket_table
            method, url = "PATCH", f"{base}/api/now/table/{quote(table or '', safe='')}/{ticket}"
            headers["Authorization"] = _basic(source.comment_user, token)
            payload = {"work_notes": text}
        case _:
            raise CommentNotConfigured(f"{source.system.value} takes no comments")
    return method, url, headers, json.dumps(payload).encode()
