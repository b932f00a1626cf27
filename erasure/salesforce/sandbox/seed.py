"""Seed data for the sandbox: the `demo` dataset, and explicit records for tests.

The demo identifiers are fixed (documented in docs/salesforce.md) so a person can submit one:
phones +14155550000 + n, emails demo.user<n>@example.com, WhatsApp keys whatsapp:+14155550000 + n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from erasure.salesforce.sandbox.data import OrgData

DEMO_USERS = 36


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
    conversations: int = 1,
    open_session: bool = False,
    blocking_child: str | None = None,
    entries: int = 3,
) -> SeededEndUser:
    """One end user with a contact (when email or phone is given), sessions and conversations."""
    contact_id = None
    if email or phone:
        contact_id = data.add(
            "Contact", Name="Demo Contact", Email=email, Phone=phone, MobilePhone=None
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
        end_user_id, contact_id, platform_key, phone, email, tuple(conv_ids), tuple(session_ids)
    )


def seed_demo(data: OrgData) -> list[SeededEndUser]:
    """36 end users: n = 1..36. Every 6th has an open session, every 9th a blocking child;
    even n are SMS users keyed by phone, odd n WhatsApp users, and n % 3 == 0 have no contact."""
    seeded = []
    for n in range(1, DEMO_USERS + 1):
        phone = f"+1415555{n:04d}"
        has_contact = n % 3 != 0
        seeded.append(
            add_end_user(
                data,
                platform_key=phone if n % 2 == 0 else f"whatsapp:{phone}",
                message_type="Text" if n % 2 == 0 else "WhatsApp",
                email=f"demo.user{n}@example.com" if has_contact else None,
                phone=phone if has_contact else None,
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
