"""The PostgreSQL engine's administration: migrations, partitions, pruning, and the
helpers its connections share."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import Any

import psycopg
import structlog

from coordinator.store.postgres_schema import (
    DAY_S,
    DAYS_AHEAD,
    FINISHED_JOBS,
    FINISHED_TASKS,
    LOCK_KEY,
    MIGRATIONS,
    SCHEMA_VERSION,
    day_of,
    day_start,
    partition_day,
    partition_ddl,
)
from coordinator.store.records import Pruned

log = structlog.get_logger("vantage.coordinator")

Conn = psycopg.AsyncConnection[Any]


def redact(url: str) -> str:
    """``url`` without its password, for logs and errors (``coordinator.store.redact``)."""
    from coordinator.store import redact as redact_url

    return redact_url(url)


async def migrate(conn: Conn) -> int:
    """Bring the database's schema to SCHEMA_VERSION; returns the version found."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS vantage_schema (version integer PRIMARY KEY, "
            "applied_at double precision NOT NULL)"
        )
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM vantage_schema")
        row = await cur.fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise psycopg.errors.FeatureNotSupported(
                f"schema version {found} is newer than this vantage knows ({SCHEMA_VERSION}); "
                "run a newer vantage or another database"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1])  # several statements, no parameters
            await conn.execute("INSERT INTO vantage_schema VALUES (%s, %s)", (version, time.time()))
    return found


async def ensure_partitions(conn: Conn, now: float) -> int:
    """Daily partitions from yesterday to DAYS_AHEAD days ahead; returns how many exist
    after. A day whose rows already sit in the DEFAULT partition keeps them there."""
    today = day_of(now)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for offset in range(-1, DAYS_AHEAD + 1):
            day = today + dt.timedelta(days=offset)
            try:
                async with conn.transaction():  # a savepoint: one refusal spoils nothing else
                    await conn.execute(partition_ddl(day))
            except psycopg.errors.CheckViolation:
                log.warning("partition_not_created", day=str(day), reason="rows in the default partition")
    return len(await _partitions(conn))


async def _partitions(conn: Conn) -> list[tuple[str, dt.date]]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'measurements'"
    )
    out = []
    for (name,) in await cur.fetchall():
        day = partition_day(name)
        if day is not None:
            out.append((name, day))
    return sorted(out, key=lambda p: p[1])


async def prune(conn: Conn, before: float) -> Pruned:
    """Drop the partitions wholly older than ``before``, delete what is older in the rest,
    and the finished tasks and jobs older than it. Open work is never touched."""
    dropped = 0
    for name, day in await _partitions(conn):
        if day_start(day) + DAY_S <= before:
            cur = await conn.execute(f"SELECT count(*) FROM {name}")  # our own name
            row = await cur.fetchone()
            dropped += int(row[0]) if row else 0
            await conn.execute(f"DROP TABLE {name}")
    cur = await conn.execute("DELETE FROM measurements WHERE received_at < %s", (before,))
    m = dropped + cur.rowcount
    await conn.execute("DELETE FROM result_ids WHERE received_at < %s", (before,))
    cur = await conn.execute(
        "DELETE FROM tasks WHERE due_at < %s AND state = ANY(%s)", (before, FINISHED_TASKS)
    )
    t = cur.rowcount
    cur = await conn.execute(
        "DELETE FROM jobs WHERE finished_at > 0 AND finished_at < %s AND state = ANY(%s)",
        (before, FINISHED_JOBS),
    )
    return Pruned(measurements=m, tasks=t, jobs=cur.rowcount)


async def alive(conn: Conn | None) -> bool:
    if conn is None or conn.closed:
        return False
    try:
        await conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


async def close_quietly(conn: Conn | None) -> None:
    if conn is not None and not conn.closed:
        with contextlib.suppress(psycopg.Error):
            await conn.close()
