"""The database: engine, sessions and the three kinds of transaction.

``db.write()`` and ``db.read()`` are the explicit transactions endpoints and jobs own (services
never commit); a write hands the jobs and mail it deferred to :attr:`Database.on_commit` once
committed. ``db.write_direct()`` runs the engine's hot path as Core statements on a synchronous
connection in a thread. SQLite writes start with ``BEGIN IMMEDIATE``. The why of each choice is
in docs/architecture.md, Rules of the road.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "signoff_write"
# Threads for write_direct on PostgreSQL (each holds one connection while it works). SQLite
# gets one: it has a single writer anyway.
DIRECT_THREADS = 4

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def _create_direct_engine(async_engine: AsyncEngine) -> Engine:
    """The synchronous twin of ``async_engine``, for :meth:`Database.write_direct`: the same
    database through the same driver family (pysqlite for aiosqlite; psycopg is both)."""
    url = async_engine.url
    if url.drivername == "sqlite+aiosqlite":
        if url.database in (None, "", ":memory:"):
            # Each connection would open its own empty database.
            raise ValueError("direct transactions need a SQLite file, not an in-memory database")
        engine = create_sync_engine(
            url.set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    return create_sync_engine(url, pool_pre_ping=True, pool_size=DIRECT_THREADS, max_overflow=0)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """The engine and the two kinds of transaction the application uses."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._writer = async_sessionmaker(
            engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )
        self._reader = async_sessionmaker(
            engine.execution_options(**{_WRITE_OPTION: False}), expire_on_commit=False
        )
        self._direct: _Direct | None = None
        # Called with a write session's ``info`` once its transaction has committed: the
        # Runtime sets it to enqueue the jobs and wake the mail sender the writes asked for.
        self.on_commit: Callable[[dict[Any, Any]], Awaitable[None]] | None = None
        # SQLite: this process's writers take turns here (docs/architecture.md: SQLite).
        self._write_turn = asyncio.Lock() if self.is_sqlite else None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(create_engine(url, **kwargs))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A read-write transaction, committed when the block ends without an exception; then
        :attr:`on_commit` runs what the writes deferred (jobs, mail to send)."""
        async with self._turn(), self._writer() as session, session.begin():
            yield session
        if self.on_commit is not None and session.info:
            await self.on_commit(session.info)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """On SQLite, this process's turn to write; waiting gives up after the busy timeout,
        as SQLite itself would."""
        if self._write_turn is None:
            yield
            return
        async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
            await self._write_turn.acquire()
        try:
            yield
        finally:
            self._write_turn.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction; closing the session ends it (loaded objects stay usable)."""
        async with self._reader() as session:
            yield session

    async def write_direct(
        self, work: Callable[[Connection], T], *, one_statement: bool = False
    ) -> T:
        """Run ``work(connection)`` as one write transaction on a synchronous connection in a
        thread: committed when it returns, rolled back if it raises. ``work`` runs Core
        statements and pure Python only (no awaits, no ORM session, no event-loop objects).

        ``work`` may run twice: when its thread's connection turns out to be dead (the server
        restarted), it runs again on a new one, which is safe because nothing of it was
        committed; so it must not change anything but the database.

        ``one_statement``: ``work`` executes a single statement, which is its own transaction.
        PostgreSQL then runs it in autocommit, without the BEGIN and COMMIT round trips
        (psycopg sends BEGIN on its own). There is no rollback: the statement itself must
        apply all of its changes or none. And since a dead connection can fail a statement
        that did commit, running it a second time must change nothing (a guarded update,
        as every direct statement is).

        A thread cannot be interrupted: cancelling the caller lets the transaction commit or
        roll back all the same (the caller cannot know which, as when a process dies after
        sending COMMIT), and the cancellation reaches the caller only once it has ended, so a
        stopped worker leaves no transaction behind (a shutdown, a test's cleanup).
        """
        if self._direct is None:
            threads = 1 if self.is_sqlite else DIRECT_THREADS
            self._direct = _Direct(_create_direct_engine(self.engine), threads)
        direct = self._direct
        async with self._turn():
            done = asyncio.get_running_loop().run_in_executor(
                direct.executor, direct.run, work, one_statement and not self.is_sqlite
            )
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                await asyncio.wait([done])
                raise

    async def dispose(self) -> None:
        if self._direct is not None:
            direct, self._direct = self._direct, None
            await asyncio.to_thread(direct.close)
        await self.engine.dispose()


class _Direct:
    """The threads of :meth:`Database.write_direct`, each with the connection it keeps."""

    def __init__(self, engine: Engine, threads: int) -> None:
        self.engine = engine
        self._psycopg = engine.dialect.driver == "psycopg"
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="signoff-db")
        self._local = threading.local()
        self._opened: list[Connection] = []  # to close them all, from any thread, at the end
        self._lock = threading.Lock()

    def run(self, work: Callable[[Connection], T], autocommit: bool) -> T:
        """On one of the threads: ``work(connection)`` as one transaction, or with
        ``autocommit`` (PostgreSQL) as one statement committed by itself."""
        retried = False
        while True:
            connection = self._connection()
            if self._psycopg:
                # psycopg's own switch, client-side (no round trip), on an idle connection. In
                # autocommit SQLAlchemy's transaction is a formality: no BEGIN is sent, and
                # psycopg skips COMMIT when no transaction is open.
                driver_connection = connection.connection.driver_connection
                assert driver_connection is not None
                driver_connection.autocommit = autocommit
            committing = False
            try:
                with connection.begin():  # commits, or rolls back on an exception
                    result = work(connection)
                    committing = True
                return result
            except DBAPIError as error:
                # After a database error the connection's state is not worth trusting (a
                # failed BEGIN, a dead socket): the thread's next transaction gets a new one.
                self._drop(connection)
                # A dead connection fails the first statement it sends, and a transaction that
                # did not reach COMMIT was not committed: safe to run again. Not after COMMIT
                # was sent: it may have reached the server. (In autocommit the statement is its
                # own COMMIT; write_direct requires it to be safe to run again.)
                if error.connection_invalidated and not committing and not retried:
                    retried = True
                    continue
                raise

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.engine.connect()
            with self._lock:
                self._opened.append(connection)
        return connection

    def _drop(self, connection: Connection) -> None:
        self._local.connection = None
        with self._lock:
            self._opened.remove(connection)
        if not connection.invalidated:
            connection.invalidate()  # the driver's connection is closed, not pooled again
        connection.close()

    def close(self) -> None:
        """After the threads have finished: close their connections and the engine."""
        self.executor.shutdown()
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self.engine.dispose()


def get_db(request: Request) -> Database:
    """FastAPI dependency: the application's :class:`Database`."""
    database: Database = request.app.state.db
    return database
