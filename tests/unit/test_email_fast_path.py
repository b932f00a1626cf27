"""The plain-address fast path of email normalisation answers exactly as email-validator does.

Most addresses a privacy officer submits are plain ASCII (`name.surname+tag@company.example`);
for those, intake skips email-validator's Unicode and IDNA machinery. Anything the fast path is
not sure of goes to email-validator, so the only thing to prove is that whatever the fast path
accepts, email-validator accepts too and normalises the same way."""

from __future__ import annotations

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from erasure.identifiers import normalize_email, plain_ascii_email

# The characters at the edges of both rules: dots, dashes, plus, underscore, digits, case, and a
# few the fast path refuses (so the generator reaches both sides of every rule).
_LOCAL = st.text(alphabet="aZ09._+-!#'%~", min_size=0, max_size=70)
_LABEL = st.one_of(
    st.text(alphabet="aZ09-", min_size=0, max_size=66),
    st.sampled_from([*SPECIAL_USE_DOMAIN_NAMES, "xn--bcher-kva", "ab--cd", "com", "co", "c"]),
)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=5).map(".".join)
# Near the common form, so the fast path's accepting side is reached often too.
_ATOMS = st.lists(st.text(alphabet="aZ09_+-", min_size=1, max_size=24), min_size=1, max_size=4)
_PLAIN_LABEL = st.one_of(
    st.from_regex(r"[aZ0-9](?:[aZ0-9-]{0,10}[aZ0-9])?", fullmatch=True),
    st.text(alphabet="aZ09", min_size=60, max_size=66),
)
_TOP = st.one_of(
    st.text(alphabet="aZ", min_size=1, max_size=65),
    st.sampled_from([*SPECIAL_USE_DOMAIN_NAMES, "123"]),
)
_PLAUSIBLE = st.builds(
    lambda atoms, labels, top: ".".join(atoms) + "@" + ".".join([*labels, top]),
    _ATOMS,
    st.lists(_PLAIN_LABEL, min_size=1, max_size=4),
    _TOP,
)
_ADDRESS = st.one_of(
    _PLAUSIBLE,
    st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN),
    st.text(alphabet="aZ09.@-_ ", max_size=40),
)


def _validator(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@settings(max_examples=3000, deadline=None)
@given(_ADDRESS)
@example("Subject-1-2@Example.COM")
@example("a@b.test")
@example("a@x.localhost")
@example("a@example.123")
@example("a..b@example.com")
@example(".a@example.com")
@example("a@-example.com")
@example("a@exa--mple.com")
@example("a@" + "x" * 64 + ".com")
@example("x" * 65 + "@example.com")
@example("a@" + ".".join(["x" * 63] * 4) + ".com")
def test_what_the_fast_path_accepts_email_validator_accepts_the_same(value: str) -> None:
    fast = plain_ascii_email(value)
    if fast is not None:
        assert fast == _validator(value)
    # And the function intake calls agrees with email-validator on every input.
    expected = _validator(value)
    try:
        assert normalize_email(value) == expected
    except ValueError:
        assert expected is None


def test_the_common_forms_take_the_fast_path() -> None:
    for value in ("subject-1-2@example.com", "Jane.Doe+erasure@Mail.Example.ORG", "a_b@x.io"):
        assert plain_ascii_email(value) == value.lower()
    for value in ("jörg@example.com", "a@bücher.example", "a@example.test", "a@xn--bcher-kva.ch"):
        assert plain_ascii_email(value) is None
