"""SQLAlchemy plumbing: metadata with a naming convention, the declarative Base every domain's
models share (with its column helpers), engines, sessions.

Imports nothing from erasure but config; never commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import psycopg
from sqlalchemy import DateTime, Enum, MetaData, event, func
from sqlalchemy.engine import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

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


def str_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A StrEnum stored by value as VARCHAR with a named CHECK (no native PG enum to migrate)."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        create_constraint=True,
    )


UUID_PK: dict[str, Any] = {"primary_key": True, "server_default": func.gen_random_uuid()}


def now_column(*, comment: str | None = None) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), comment=comment)


def make_engine(
    database_url: str,
    *,
    pool_size: int = 5,
    pooled: bool = True,
    connect_timeout_s: int | None = None,
    ping_idle_after_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Engine:
    """An engine with pre-ping (survives a Postgres restart) and a bounded pool.

    `pooled=False` opens a connection per use and keeps none: for a process that forks children
    after using it (a Celery worker's parent), or that uses it every few seconds.

    `ping_idle_after_s` (the web app's choice) pings only a connection that sat in the pool
    longer than that, instead of one round trip per checkout: a busy API pays nothing, a
    connection that idled (and may have been dropped by Postgres or a firewall) is tested and
    replaced. The price: after a Postgres restart, the first statement on a connection used
    within that time fails (answered 503 database_unavailable, safe to retry with the same
    Idempotency-Key) and the pool is emptied, so each process loses at most one request.
    """
    connect_args: dict[str, Any] = {
        # A statement that hangs on a lock must not hang a worker forever.
        "options": "-c statement_timeout=30000 -c lock_timeout=10000",
    }
    if connect_timeout_s is not None:
        connect_args["connect_timeout"] = connect_timeout_s
    pool_args: dict[str, Any] = (
        {"pool_size": pool_size, "max_overflow": pool_size} if pooled else {"poolclass": NullPool}
    )
    engine = create_engine(
        database_url,
        pool_pre_ping=ping_idle_after_s is None,
        # Errors and echo never show bound values: they may be ciphertexts, pseudonyms or ids.
        hide_parameters=True,
        connect_args=connect_args,
        **pool_args,
    )
    if ping_idle_after_s is not None:
        _ping_when_idle(engine, ping_idle_after_s, clock)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float, clock: Callable[[], float]) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = clock()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or clock() - since < idle_s:
            return  # new, or back in the pool only briefly
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: the pool discards it and connects afresh
            raise DisconnectionError("an idle pooled connection is gone") from exc


#: SQLSTATE classes of a database that cannot serve us right now, as opposed to a bad statement:
#: connection exceptions, insufficient resources (too many connections), operator intervention
#: (shutting down, starting up).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def database_unavailable(exc: BaseException) -> bool:
    """Our database is unreachable (down, restarting, failing over, full), so the same work
    will succeed later; a bad statement, a constraint or a deadlock is not this."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    # No SQLSTATE: the driver never reached the server (refused, reset, timed out).
    return sqlstate is None or str(sqlstate).startswith(_UNAVAILABLE_SQLSTATES)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def pipelined(
    session: Session, *, whole_transaction: bool = False
) -> Iterator[psycopg.Connection[Any]]:
    """The session's connection (in the session's transaction) in psycopg pipeline mode.

    Statements executed on it are sent at once without waiting for their answers; reading an
    answer waits for everything sent so far, and the end of the block waits once more. So a hot
    path that sends its statements in two or three batches pays two or three round trips, not
    one per statement. Only plain psycopg statements may run inside the block: SQLAlchemy reads
    a statement's result as soon as it executes it, which a pipeline cannot give it. Pending ORM
    changes are flushed first, so the statements see them.

    `whole_transaction=True` says the block is all the caller's transaction will do (it commits
    or rolls back right after). If nothing ran in that transaction yet, the block's statements
    then run as one implicit transaction (autocommit, no BEGIN), which the Sync that ends the
    pipeline commits, or the server rolls back on an error: BEGIN and COMMIT cost no round trips
    of their own. A block left by an exception still ends with that Sync, committing what it
    sent, so such a block sends only what may stand alone before it can fail (reads, locks).
    And if the session has not begun at all (no statement ran, nothing pending) and is bound to
    an engine, the block leaves the session alone: it takes a connection of its own from the
    engine (`Engine.connect`, a pool checkout) and closes it at the end, because the session's
    begin, connection and commit cost a request more CPU than that. The caller's commit or
    rollback then has nothing to do (`Session.in_transaction` says so). If a statement already ran (a
    key read for authentication, a test's savepoint), the block joins the session's transaction
    as without the flag.
    """
    if whole_transaction and not _begun(session) and isinstance(bind := session.get_bind(), Engine):
        with bind.connect() as own, _in_pipeline(own, whole_transaction=True) as connection:
            yield connection
        return
    session.flush()
    with _in_pipeline(session.connection(), whole_transaction=whole_transaction) as connection:
        yield connection


def _begun(session: Session) -> bool:
    return session.in_transaction() or bool(session.new or session.dirty or session.deleted)


@contextmanager
def _in_pipeline(
    bound: Connection, *, whole_transaction: bool
) -> Iterator[psycopg.Connection[Any]]:
    """`pipelined`'s block on `bound`'s pooled connection."""
    connection = bound.connection.driver_connection
    if not isinstance(connection, psycopg.Connection):
        raise TypeError("pipelined statements need a psycopg connection")
    implicit = (
        whole_transaction
        and not connection.autocommit
        and connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    )
    if implicit:
        connection.autocommit = True
    try:
        with connection.pipeline():
            yield connection
    except psycopg.Error as exc:
        # Answered like a statement SQLAlchemy ran: a lost connection is a DBAPIError with
        # connection_invalidated (503 at the web edge), and the pool is emptied, as SQLAlchemy
        # does on a disconnect, so the other pooled connections are not tried one by one.
        lost = connection.broken or connection.closed
        if lost:
            bound.invalidate(exc)
            bound.engine.dispose(close=False)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=lost
        ) from exc
    finally:
        if implicit:
            _leave_autocommit(bound, connection)


def _leave_autocommit(bound: Connection, connection: psycopg.Connection[Any]) -> None:
    """Back to the pool's mode after an implicit transaction: the Sync that ended the pipeline
    left the connection idle. One that is not (lost, or in a state nothing here expects) is
    discarded rather than handed to the next request half-way."""
    if connection.closed or connection.broken:
        return
    if connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        connection.autocommit = False
    else:
        bound.invalidate()


class Rows(Protocol):
    """A pipelined read's answer, read when wanted (a psycopg cursor is one)."""

    def fetchall(self) -> list[tuple[Any, ...]]: ...


#: Sends a read (named `%(...)s` parameters) on a pipelined connection: `connection.execute`, or
#: a caller's wrapper that sends more in the same statement (erasure.api.idempotency.Claim).
Send = Callable[[str, Mapping[str, Any]], Rows]


@dataclass(frozen=True)
class Insert:
    """One `INSERT ... VALUES (...)` with positional `%s` parameters, to be sent together with
    others (`insert_together`)."""

    sql: str
    params: Sequence[Any]


def insert_rows(sql: str, rows: Sequence[Sequence[Any]]) -> Insert:
    """`sql` (an INSERT of one row: `... VALUES (%s, ...)`) for every row of `rows` at once."""
    if not rows:
        raise ValueError("an INSERT needs at least one row")
    head, values = sql.split(" VALUES ", 1)
    return Insert(
        f"{head} VALUES {', '.join([values] * len(rows))}", [value for row in rows for value in row]
    )


def insert_together(connection: psycopg.Connection[Any], inserts: Sequence[Insert]) -> None:
    """Send `inserts` as one statement: all but the last as data-modifying CTEs of the last.

    On a hot path each statement costs the client CPU whatever it does (psycopg builds, sends
    and reads each one), so a transaction's writes go as one. Postgres runs each CTE exactly
    once, all with the statement's snapshot: none sees another's rows, which INSERTs of new rows
    do not need, and foreign keys are checked at the end of the statement, so a row may refer to
    one inserted beside it."""
    *first, last = inserts
    ctes = ", ".join(f"w{n} AS ({insert.sql})" for n, insert in enumerate(first))
    sql = f"WITH {ctes} {last.sql}" if first else last.sql
    connection.execute(sql, [value for insert in inserts for value in insert.params])
