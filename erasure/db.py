"""SQLAlchemy plumbing: metadata with a naming convention, the declarative Base, engines, sessions.

Imports nothing from erasure but config; never commits.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


def make_engine(database_url: str, *, pool_size: int = 5) -> Engine:
    """An engine with pre-ping (survives a Postgres restart) and a bounded pool."""
    return create_engine(
        database_url,
        pool_pre_ping=True,
        # Errors and echo never show bound values: they may be ciphertexts, pseudonyms or ids.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A statement that hangs on a lock must not hang a worker forever.
        connect_args={"options": "-c statement_timeout=30000 -c lock_timeout=10000"},
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
