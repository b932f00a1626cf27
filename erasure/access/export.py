"""The export a subject receives: machine-readable JSON and a readable HTML page of the same
entries. The JSON is canonical (sorted keys, no spaces), so its SHA-256, which the audit log and
the certificate of disclosure record, names exactly one document."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Conversation:
    end_user_id: str
    conversation_id: str
    entries: list[dict[str, Any]]


@dataclass(frozen=True)
class Export:
    json_text: str
    html_text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.json_text.encode()).hexdigest()

    def pack(self) -> str:
        """One string to seal: both renderings."""
        return json.dumps({"json": self.json_text, "html": self.html_text})

    @classmethod
    def unpack(cls, packed: str) -> Export:
        doc = json.loads(packed)
        return cls(json_text=str(doc["json"]), html_text=str(doc["html"]))


def build(
    *,
    request_id: str,
    regulation: str,
    received_at: datetime,
    generated_at: datetime,
    conversations: list[Conversation],
    erased: int,
) -> Export:
    by_user: dict[str, list[dict[str, Any]]] = {}
    for conv in sorted(conversations, key=lambda c: (c.end_user_id, c.conversation_id)):
        by_user.setdefault(conv.end_user_id, []).append(
            {"conversation_id": conv.conversation_id, "entries": conv.entries}
        )
    document = {
        "request_id": request_id,
        "regulation": regulation,
        "received_at": received_at.isoformat(),
        "generated_at": generated_at.isoformat(),
        "source": "Salesforce Enhanced Messaging (Conversation Data API)",
        "messaging_end_users": [
            {"id": user_id, "conversations": convs} for user_id, convs in by_user.items()
        ],
        "conversations_erased_before_reading": erased,
    }
    json_text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Export(json_text=json_text, html_text=_html(document))


def _text_of(entry: dict[str, Any]) -> str:
    """The message text when the entry has one, else its payload as JSON."""
    payload = entry.get("entryPayload") or {}
    static = (payload.get("abstractMessage") or {}).get("staticContent") or {}
    text = static.get("text") if isinstance(static, dict) else None
    if isinstance(text, str):
        return text
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def _sent_at(entry: dict[str, Any]) -> str:
    ms = entry.get("serverReceivedTimestamp")
    if isinstance(ms, int):
        return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")
    return ""


def _html(document: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>Your messaging data</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em;"
        "text-align:left;vertical-align:top}</style></head><body>",
        "<h1>Your messaging data</h1>",
        f"<p>Request {e(str(document['request_id']))}, received {e(str(document['received_at']))},"
        f" prepared {e(str(document['generated_at']))}.</p>",
    ]
    users = document["messaging_end_users"]
    if not users:
        parts.append("<p>No conversation data was found.</p>")
    for user in users:
        parts.append(f"<h2>Messaging end user {e(user['id'])}</h2>")
        for conv in user["conversations"]:
            parts.append(f"<h3>Conversation {e(conv['conversation_id'])}</h3>")
            parts.append("<table><tr><th>When</th><th>From</th><th>Type</th><th>Content</th></tr>")
            for entry in conv["entries"]:
                sender = (entry.get("sender") or {}).get("role") or ""
                parts.append(
                    f"<tr><td>{e(_sent_at(entry))}</td><td>{e(str(sender))}</td>"
                    f"<td>{e(str(entry.get('entryType') or ''))}</td>"
                    f"<td>{e(_text_of(entry))}</td></tr>"
                )
            parts.append("</table>")
    if document["conversations_erased_before_reading"]:
        parts.append(
            f"<p>{int(document['conversations_erased_before_reading'])} conversation(s) were "
            "erased at your request before they could be read.</p>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
