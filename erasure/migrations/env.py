"""Alembic environment: migrations run online against Postgres, one transaction per migration,
under an advisory lock so two deploys cannot migrate at once."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, text

import erasure.tables  # noqa: F401  # registers every table on the metadata
from erasure.config import database_url_from_env
from erasure.db import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

MIGRATION_LOCK = 0x65726173  # "eras": any constant shared by every deploy


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or database_url_from_env()
    engine = create_engine(url)
    with engine.connect() as connection:
        # Fail fast rather than queue behind a long transaction and block the app behind us.
        connection.execute(text("SET lock_timeout = '10s'"))
        connection.execute(text("SET statement_timeout = '5min'"))
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                transaction_per_migration=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run them against the database")
run_migrations_online()
