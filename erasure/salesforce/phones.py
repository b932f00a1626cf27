"""Finding a person's phone number in Contact fields that hold it as someone typed it.

Salesforce keeps a phone field as entered ("(415) 555-0001", "+1 415-555-0001", "4155550001"),
so an exact match on the E.164 form misses most contacts. The client asks Salesforce's search
(SOSL `FIND {...} IN PHONE FIELDS`), which matches phone fields on their digits, with the forms of
the number that a field may hold: the E.164 digits, the national number, and the national number
as dialled at home (with its trunk prefix, such as the UK's 0). Then it keeps a contact only when
one of the configured fields *is* the subject's number (`same_number`): the search also looks at
fields that are not the person's own line (an assistant's phone, a fax), and a number with an
extension is another line.

The values are personal data: nothing here logs them.
"""

from __future__ import annotations

import phonenumbers


def _parse_e164(e164: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("a phone subject must be in E.164 form") from exc
    return number


def search_terms(e164: str) -> list[str]:
    """The digit strings a phone field holding this number may reduce to, most likely first."""
    number = _parse_e164(e164)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    terms = [
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+"),
        phonenumbers.national_significant_number(number),
        "".join(ch for ch in national if ch.isdigit()),
    ]
    # Only digits reach the search text: nothing a SOSL parser would read as an operator.
    return [term for n, term in enumerate(terms) if term.isdigit() and term not in terms[:n]]


def same_number(stored: object, e164: str) -> bool:
    """Whether a phone field's value is the number `e164` (no extension), read as dialled in
    the number's own country when it has no country code."""
    if not isinstance(stored, str) or not stored.strip():
        return False
    subject = _parse_e164(e164)
    # The region of the subject's own number decides how a number without a country code
    # reads: "(415) 555-0001" is +1 for a US subject.
    region = phonenumbers.region_code_for_number(subject)
    if region is None:
        region = phonenumbers.region_code_for_country_code(subject.country_code or 0)
    try:
        parsed = phonenumbers.parse(stored, region)
    except phonenumbers.NumberParseException:
        return False
    return (
        not parsed.extension
        and parsed.country_code == subject.country_code
        and parsed.national_number == subject.national_number
        and bool(parsed.italian_leading_zero) == bool(subject.italian_leading_zero)
    )
