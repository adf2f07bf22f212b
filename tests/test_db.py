"""Database: write() and what it hands over after the commit; write_direct, the engine's
transactions on a synchronous connection in a thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from signoff.db import Database
from signoff.models import Base, Team
from signoff.queue.jobs import StepJob, defer, deferred

pytestmark = pytest.mark.postgres

TEAMS = Team.__table__


async def _team_names(database: Database) -> list[str]:
    async with database.read() as session:
        return list(await session.scalars(select(Team.name).order_by(Team.name)))


async def test_a_direct_transaction_commits_when_its_function_returns(database: Database) -> None:
    def write(connection: Connection) -> int:
        connection.execute(
            insert(TEAMS), [{"id": "t1", "name": "One"}, {"id": "t2", "name": "Two"}]
        )
        return int(connection.execute(select(func.count()).select_from(TEAMS)).scalar_one())

    assert await database.write_direct(write) == 2
    assert await _team_names(database) == ["One", "Two"]


async def test_a_direct_transaction_rolls_back_when_its_function_raises(
    database: Database,
) -> None:
    def write(connection: Connection) -> None:
        connection.execute(insert(TEAMS), {"id": "t1", "name": "One"})
        raise RuntimeError("changed its mind")

    with pytest.raises(RuntimeError, match="changed its mind"):
        await database.write_direct(write)
    assert await _team_names(database) == []


async def test_a_cancelled_caller_waits_until_the_transaction_has_ended(
    database: Database,
) -> None:
    # A thread cannot be interrupted: the cancellation is delivered once the transaction has
    # committed, so a stopped worker leaves no transaction behind.
    inside = threading.Event()
    release = threading.Event()

    def write(connection: Connection) -> None:
        connection.execute(insert(TEAMS), {"id": "t1", "name": "One"})
        inside.set()
        assert release.wait(timeout=5)

    caller = asyncio.create_task(database.write_direct(write))
    assert await asyncio.to_thread(inside.wait, 5)
    caller.cancel()
    await asyncio.sleep(0.05)  # time for a cancellation that is not held back to end the task
    assert not caller.done()  # still waiting for the thread
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await _team_names(database) == ["One"]


async def test_sqlite_writers_of_one_process_take_turns_in_order(tmp_path: Path) -> None:
    # Without the turns, the direct transaction's thread would be backing off in SQLite's busy
    # handler (sleeping up to 100 ms at a time) when the first writer commits, and the writer
    # that asked last would get the lock first.
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/turns.db")
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    committed: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with database.write() as session:
            session.add(Team(id="t1", name="First"))
            await session.flush()  # holds SQLite's write lock from here
            holding.set()
            await release.wait()
        committed.append("first")

    def second(connection: Connection) -> None:
        connection.execute(insert(TEAMS), {"id": "t2", "name": "Second"})

    try:
        holder = asyncio.create_task(first())
        await asyncio.wait_for(holding.wait(), timeout=10)
        waiting = asyncio.create_task(database.write_direct(second))
        waiting.add_done_callback(lambda _: committed.append("second"))
        # Time for what the turns prevent: the second writer's thread backing off in SQLite's
        # busy handler (there is nothing to wait on: with the turns, it is not there).
        await asyncio.sleep(0.3)
        release.set()
        async with database.write() as session:
            session.add(Team(id="t3", name="Third"))
        committed.append("third")
        await asyncio.gather(holder, waiting)
        assert committed == ["first", "second", "third"]
        assert await _team_names(database) == ["First", "Second", "Third"]
    finally:
        await database.dispose()


async def _kill_the_direct_connection(database: Database) -> int:
    """Terminate the server process of the direct thread's kept connection (PostgreSQL), as a
    database restart would; its process id."""
    backend = int(
        await database.write_direct(
            lambda connection: connection.execute(select(func.pg_backend_pid())).scalar_one()
        )
    )
    async with database.engine.connect() as admin:
        await admin.execute(select(func.pg_terminate_backend(backend)))
    return backend


@pytest.mark.postgres(only=True)  # a SQLite file has no server connection to lose
async def test_a_dead_direct_connection_is_replaced_and_the_transaction_runs_once(
    database: Database,
) -> None:
    # The threads keep their connections between transactions (no pool checkout, no ping), so
    # the first transaction after a database restart finds its connection dead. It was not
    # committed, so it runs again on a new connection instead of failing a step attempt.
    backend = await _kill_the_direct_connection(database)
    runs: list[int] = []

    def write(connection: Connection) -> int:
        runs.append(1)
        connection.execute(insert(TEAMS), {"id": "t1", "name": "One"})
        return int(connection.execute(select(func.pg_backend_pid())).scalar_one())

    assert await database.write_direct(write) != backend
    assert len(runs) == 2  # the first try met the dead connection
    assert await _team_names(database) == ["One"]


async def test_a_database_error_fails_only_its_own_transaction(database: Database) -> None:
    # The thread's connection is replaced after a database error; the next transaction on it
    # starts clean.
    def duplicate(connection: Connection) -> None:
        connection.execute(insert(TEAMS), {"id": "t1", "name": "One"})
        connection.execute(insert(TEAMS), {"id": "t1", "name": "Again"})

    with pytest.raises(IntegrityError):
        await database.write_direct(duplicate)

    def write(connection: Connection) -> None:
        connection.execute(insert(TEAMS), {"id": "t2", "name": "Two"})

    await database.write_direct(write)
    assert await _team_names(database) == ["Two"]


def _in_transaction(connection: Connection) -> bool:
    """Whether the driver has a transaction open (psycopg; pysqlite's own flag)."""
    driver = connection.connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        return driver.info.transaction_status != TransactionStatus.IDLE
    return bool(driver.in_transaction)


async def test_one_statement_is_a_transaction_of_its_own(database: Database) -> None:
    # On PostgreSQL it runs in autocommit (no BEGIN, no COMMIT: two round trips fewer); on
    # SQLite as any direct transaction. Either way it is committed, and the thread's next
    # transaction is a real one again.
    def one(connection: Connection) -> bool:
        connection.execute(insert(TEAMS), {"id": "t1", "name": "One"})
        return _in_transaction(connection)

    in_transaction = await database.write_direct(one, one_statement=True)
    assert in_transaction is database.is_sqlite
    assert await _team_names(database) == ["One"]

    def then(connection: Connection) -> bool:
        connection.execute(insert(TEAMS), {"id": "t2", "name": "Two"})
        return _in_transaction(connection)

    assert await database.write_direct(then) is True
    assert await _team_names(database) == ["One", "Two"]


async def test_a_failed_statement_of_its_own_changes_nothing(database: Database) -> None:
    def duplicate(connection: Connection) -> None:
        connection.execute(
            insert(TEAMS), [{"id": "t1", "name": "One"}, {"id": "t1", "name": "Again"}]
        )

    with pytest.raises(IntegrityError):
        await database.write_direct(duplicate, one_statement=True)
    assert await _team_names(database) == []

    def write(connection: Connection) -> None:
        connection.execute(insert(TEAMS), {"id": "t2", "name": "Two"})
        raise RuntimeError("changed its mind")

    # The thread's next transaction is a real one: it rolls back.
    with pytest.raises(RuntimeError, match="changed its mind"):
        await database.write_direct(write)
    assert await _team_names(database) == []


@pytest.mark.postgres(only=True)  # a SQLite file has no server connection to lose
async def test_a_statement_of_its_own_on_a_dead_connection_runs_again(
    database: Database,
) -> None:
    await _kill_the_direct_connection(database)
    runs: list[int] = []

    def one(connection: Connection) -> None:
        runs.append(1)
        connection.execute(insert(TEAMS), {"id": "t1", "name": "One"})

    await database.write_direct(one, one_statement=True)
    assert len(runs) == 2  # the first try met the dead connection
    assert await _team_names(database) == ["One"]


async def test_a_write_hands_what_it_deferred_over_only_after_its_commit(
    database: Database,
) -> None:
    handed: list[list[StepJob]] = []
    seen_committed: list[list[str]] = []

    async def on_commit(session_info: dict[Any, Any]) -> None:
        handed.append(deferred(session_info))
        seen_committed.append(await _team_names(database))  # the write is visible by now

    database.on_commit = on_commit
    async with database.write() as session:
        session.add(Team(id="t1", name="One"))
        defer(session, StepJob(1, 0, 1))
        defer(session, StepJob(2, 3, 2))
        assert handed == []
    assert handed == [[StepJob(1, 0, 1), StepJob(2, 3, 2)]]
    assert seen_committed == [["One"]]

    async def failing_write() -> None:
        async with database.write() as session:
            session.add(Team(id="t2", name="Two"))
            defer(session, StepJob(3, 0, 1))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await failing_write()
    assert handed == [[StepJob(1, 0, 1), StepJob(2, 3, 2)]]  # nothing for a rolled-back write
    assert await _team_names(database) == ["One"]
