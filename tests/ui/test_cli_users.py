"""`erasure users create`: the first admin of the console, password from the environment."""

from __future__ import annotations

import uuid

from click.testing import CliRunner
from sqlalchemy import delete

from erasure.accounts.models import Role, User
from erasure.cli import main
from erasure.config import Settings
from erasure.db import make_engine, make_sessionmaker
from erasure.ui import accounts


def test_users_create(settings: Settings) -> None:
    env = {
        "ERASURE_DATABASE_URL": settings.database_url,
        "ERASURE_ENCRYPTION_KEYS": ",".join(
            f"{k}:{v.get_secret_value()}" for k, v in settings.encryption_keys.items()
        ),
        "ERASURE_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
        "ERASURE_PUBLIC_URL": "http://127.0.0.1",
        "ERASURE_NEW_USER_PASSWORD": "a long enough password",
    }
    email = f"Admin-{uuid.uuid4().hex[:8]}@Example.org"
    runner = CliRunner()
    result = runner.invoke(main, ["users", "create", "--role", "admin", "--email", email], env=env)
    assert result.exit_code == 0, result.output
    assert "a long enough password" not in result.output
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            signed = accounts.authenticate(session, email, "a long enough password")
            assert signed.user is not None and signed.user.role is Role.ADMIN
            again = runner.invoke(
                main, ["users", "create", "--role", "admin", "--email", email], env=env
            )
            assert again.exit_code != 0 and "already exists" in again.output
            weak = runner.invoke(
                main,
                ["users", "create", "--role", "officer", "--email", "x@example.org"],
                env=env | {"ERASURE_NEW_USER_PASSWORD": "short"},
            )
            assert weak.exit_code != 0 and "12 characters" in weak.output
            session.rollback()
            session.execute(delete(User).where(User.email == email.lower()))
            session.commit()
    finally:
        engine.dispose()
