import base64
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from erasure.config import Settings

KEY = base64.b64encode(os.urandom(32)).decode()
BASE = {
    "database_url": "postgresql+psycopg://db/erasure",
    "encryption_keys": f"k1:{KEY}",
    "pseudonym_key": KEY,
}


def test_required_settings_have_no_defaults() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Settings.model_validate({})
    missing = {error["loc"][0] for error in excinfo.value.errors()}
    assert missing == {"database_url", "encryption_keys", "pseudonym_key"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encryption_keys": "nocolon"}, "id:base64key"),
        ({"encryption_keys": "k1:c2hvcnQ="}, "32 bytes"),
        ({"encryption_keys": f"k1:{KEY},k1:{KEY}"}, "twice"),
        ({"pseudonym_key": "!!!"}, "base64"),
        ({"public_url": "http://erasure.example.com"}, "https"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(change: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate(BASE | change)


def test_development_mode_allows_plain_http() -> None:
    settings = Settings.model_validate(
        BASE | {"mode": "development", "public_url": "http://dev.example.com"}
    )
    assert settings.public_url == "http://dev.example.com"


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings.model_validate(
        BASE | {"database_url": "postgresql+psycopg://u:hunter2@db/erasure"}
    )
    assert "hunter2" not in repr(settings) and KEY not in repr(settings)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`ERASURE_{name.upper()}`" in readme, f"ERASURE_{name.upper()} is not in the README"
