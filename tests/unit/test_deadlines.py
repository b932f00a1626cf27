from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.core.models import Regulation
from erasure.deadlines import add_months, due_at, extended_due_at


def at(y: int, m: int, d: int, h: int = 12, tz: timezone = UTC) -> datetime:
    return datetime(y, m, d, h, tzinfo=tz)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        (at(2026, 3, 15), end_of(2026, 4, 15)),  # the same date next month
        (at(2026, 1, 31), end_of(2026, 2, 28)),  # no 31 February: the month's last day
        (at(2028, 1, 31), end_of(2028, 2, 29)),  # leap year
        (at(2026, 3, 31), end_of(2026, 4, 30)),
        (at(2026, 12, 15), end_of(2027, 1, 15)),  # across the year end
        (at(2026, 2, 28), end_of(2026, 3, 28)),  # not "end of month to end of month"
        (at(2026, 5, 31, 23), end_of(2026, 6, 30)),
    ],
)
def test_gdpr_due_one_calendar_month_later(received: datetime, expected: datetime) -> None:
    assert due_at(Regulation.GDPR, received) == expected
    assert due_at(Regulation.UK_GDPR, received) == expected


def test_gdpr_counts_the_day_in_utc() -> None:
    # 23:30 on 31 Jan in New York is already 1 Feb in UTC.
    new_york = timezone(timedelta(hours=-5))
    assert due_at(Regulation.GDPR, at(2026, 1, 31, 23, tz=new_york)) == end_of(2026, 3, 1)


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        (at(2026, 1, 1), end_of(2026, 2, 15)),
        (at(2026, 12, 1), end_of(2027, 1, 15)),
        (at(2028, 2, 1), end_of(2028, 3, 17)),  # 29 days in February 2028
    ],
)
def test_ccpa_due_45_days_later(received: datetime, expected: datetime) -> None:
    assert due_at(Regulation.CCPA, received) == expected


def test_lgpd_due_15_days_later() -> None:
    assert due_at(Regulation.LGPD, at(2026, 6, 20)) == end_of(2026, 7, 5)


def test_naive_received_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        due_at(Regulation.GDPR, datetime(2026, 1, 1))  # the point of the test


def test_extension_limits() -> None:
    assert extended_due_at(Regulation.GDPR, end_of(2026, 2, 28)) == end_of(2026, 4, 28)
    assert extended_due_at(Regulation.CCPA, end_of(2026, 2, 15)) == end_of(2026, 4, 1)
    assert extended_due_at(Regulation.LGPD, end_of(2026, 2, 15)) is None


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31)), st.integers(0, 36))
def test_add_months_lands_in_the_right_month_and_never_overshoots(day: date, months: int) -> None:
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day <= day.day
    assert result.day == day.day or result.day >= 28  # only clamped at a month's end


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_gdpr_deadline_is_28_to_31_days_after_receipt(received: datetime) -> None:
    delta = due_at(Regulation.GDPR, received).date() - received.date()
    assert 28 <= delta.days <= 31
