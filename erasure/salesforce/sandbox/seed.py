"""Seed data for the sandbox: the `demo` dataset, and explicit records for tests.

The demo identifiers are fixed (documented in docs/salesforce.md) so a person can submit one:
phones +14155550000 + n, emails demo.user<n>@example.com. Contacts hold their phone as people type
it ("(415) 555-0001", "+1 415-555-0005", ...), as real orgs do, so a lookup by phone must find
them the way Salesforce's search does; the web chat users are reachable by phone only that way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from erasure.salesforce.sandbox.data import OrgData

DEMO_USERS = 36
#: How the demo contacts' phones are written, by n % 4 (all are +1 415 555 nnnn).
PHONE_FORMATS = (
    "({area}) {exchange}-{line}",
    "+1 {area}-{exchange}-{line}",
    "{area}{exchange}{line}",
    "+1 ({area}) {exchange}-{line}",
)
_WEB_KEYS = uuid.UUID("5b1f6c1e-3f0a-4c55-9d7e-2a1c0de5a11e")


@dataclass(frozen=True)
class SeededEndUser:
    end_user_id: str
    contact_id: str | None
    platform_key: str
    phone: str | None
    email: str | None
    conversation_ids: tuple[str, ...]
    session_ids: tuple[str, ...]


def add_end_user(
    data: OrgData,
    *,
    platform_key: str,
    message_type: str = "Text",
    email: str | None = None,
    phone: str | None = None,
    mobile_phone: str | None = None,
    conversations: int = 1,
    open_session: bool = False,
    blocking_child: str | None = None,
    entries: int = 3,
) -> SeededEndUser:
    """One end user with a contact (when an email or a phone is given), sessions and
    conversations. Phones are stored exactly as given, formatted or not."""
    contact_id = None
    if email or phone or mobile_phone:
        contact_id = data.add(
            "Contact", Name="Demo Contact", Email=email, Phone=phone, MobilePhone=mobile_phone
        )
    end_user_id = data.add(
        "MessagingEndUser",
        Name=f"Messaging user {platform_key[-4:]}",
        MessagingPlatformKey=platform_key,
        MessageType=message_type,
        ContactId=contact_id,
        MessagingChannelId=None,
    )
    conv_ids: list[str] = []
    session_ids: list[str] = []
    for n in range(conversations):
        conv_id = data.add_conversation(entries=entries)
        conv_ids.append(conv_id)
        is_last = n == conversations - 1
        status = "Active" if open_session and is_last else "Ended"
        session_ids.append(
            data.add(
                "MessagingSession",
                Name=f"MS-{len(data.tables['MessagingSession']):06d}",
                MessagingEndUserId=end_user_id,
                ConversationId=conv_id,
                Status=status,
            )
        )
    if blocking_child:
        data.blocking[end_user_id] = blocking_child
    return SeededEndUser(
        end_user_id,
        contact_id,
        platform_key,
        phone or mobile_phone,
        email,
        tuple(conv_ids),
        tuple(session_ids),
    )


def demo_phone(n: int) -> str:
    """Demo user n's phone number, in E.164: what a person submits."""
    return f"+1415555{n:04d}"


def demo_phone_as_stored(n: int) -> str:
    """How demo user n's contact holds that number."""
    return PHONE_FORMATS[n % 4].format(area="415", exchange="555", line=f"{n:04d}")


def seed_demo(data: OrgData) -> list[SeededEndUser]:
    """36 end users: n = 1..36. Every 6th has an open session, every 9th a blocking child.

    Even n are SMS users keyed by their phone; odd n divisible by 3 WhatsApp users keyed
    `whatsapp:<phone>`; the other odd n web chat users whose key is no phone at all. n % 3 == 0
    have no contact; the others have a contact holding their email and their phone, formatted
    (`demo_phone_as_stored`), in Phone or, for n divisible by 5, MobilePhone.
    """
    seeded = []
    for n in range(1, DEMO_USERS + 1):
        phone = demo_phone(n)
        has_contact = n % 3 != 0
        if n % 2 == 0:
            key, message_type = phone, "Text"
        elif not has_contact:
            key, message_type = f"whatsapp:{phone}", "WhatsApp"
        else:
            key, message_type = str(uuid.uuid5(_WEB_KEYS, str(n))), "EmbeddedMessaging"
        stored = demo_phone_as_stored(n) if has_contact else None
        mobile = n % 5 == 0
        seeded.append(
            add_end_user(
                data,
                platform_key=key,
                message_type=message_type,
                email=f"demo.user{n}@example.com" if has_contact else None,
                phone=None if mobile else stored,
                mobile_phone=stored if mobile else None,
                conversations=1 + n % 2,
                open_session=n % 6 == 0,
                blocking_child="EngagementAttendee" if n % 9 == 0 else None,
            )
        )
    return seeded


def seeded_as_json(seeded: list[SeededEndUser]) -> list[dict[str, Any]]:
    return [
        {
            "end_user_id": s.end_user_id,
            "contact_id": s.contact_id,
            "platform_key": s.platform_key,
            "phone": s.phone,
            "email": s.email,
            "conversation_ids": list(s.conversation_ids),
            "session_ids": list(s.session_ids),
        }
        for s in seeded
    ]
