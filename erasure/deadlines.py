"""Legal deadlines: when an erasure request is due, by regulation.

GDPR Art. 12(3): "within one month of receipt". Periods in months follow Regulation (EEC,
Euratom) No 1182/71 Art. 3(2)(c): the period ends at the end of the day of the following month
with the same date as the day of receipt; when that month has no such date (31 January), it ends
at the end of that month's last day. CCPA (Cal. Civ. Code 1798.130(a)(2)): 45 calendar days.
Deadlines are computed in UTC and end at 23:59:59.999999 of the due day.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

from erasure.core.models import Regulation

# Extensions a regulation allows, with a recorded reason (GDPR Art. 12(3): two further months).
EXTENSION_MONTHS = {Regulation.GDPR: 2, Regulation.UK_GDPR: 2}
EXTENSION_DAYS = {Regulation.CCPA: 45, Regulation.LGPD: 0}


def add_months(day: date, months: int) -> date:
    """The same date `months` later, clamped to the last day of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day, time.max, tzinfo=UTC)


def due_at(regulation: Regulation, received_at: datetime) -> datetime:
    """When a request received at `received_at` must be answered. `received_at` must be aware."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must carry a timezone")
    received_day = received_at.astimezone(UTC).date()
    match regulation:
        case Regulation.GDPR | Regulation.UK_GDPR:
            return _end_of_day(add_months(received_day, 1))
        case Regulation.CCPA:
            return _end_of_day(received_day + timedelta(days=45))
        case Regulation.LGPD:
            # LGPD Art. 19(II): a complete answer within 15 days of the request.
            return _end_of_day(received_day + timedelta(days=15))


def extended_due_at(regulation: Regulation, current_due_at: datetime) -> datetime | None:
    """The furthest a deadline may be extended, or None if the regulation allows no extension."""
    if regulation in EXTENSION_MONTHS:
        return _end_of_day(
            add_months(current_due_at.astimezone(UTC).date(), EXTENSION_MONTHS[regulation])
        )
    days = EXTENSION_DAYS.get(regulation, 0)
    return (
        _end_of_day(current_due_at.astimezone(UTC).date() + timedelta(days=days)) if days else None
    )
