"""What only the PostgreSQL engine has to show, on a real private server
(tests/pgserver.py): migrations raced by several coordinators, daily partitions that
--retain drops whole, writes that wait out a server restart, and a password that never
shows."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from structlog.testing import capture_logs

from coordinator.model import Job, JobSpec, JobState, ProbeResultData, TaskResultData
from coordinator.server import CoordinatorServer, ServerConfig, StartupError
from coordinator.store import PutJob, PutResult, StoreError, open_store
from coordinator.store import postgres_schema as schema
from coordinator.store.postgres import OwnerTaken, PostgresStore, redact
from coordinator.store.postgres_admin import ensure_partitions
from tests.pgserver import PgServer

JOB = Job(job_id="0123456789abcdef", spec=JobSpec(kind="tcp", targets=("a:1",)), state=JobState.RUNNING,
          created_at=1.0, next_round_at=1.0)  # fmt: skip


def result(task_id: str) -> TaskResultData:
    return TaskResultData(
        task_id=task_id, job_id=JOB.job_id, agent_id="de-1", started_at=1, finished_at=2, raw=task_id.encode(),
        result=ProbeResultData(kind="tcp", target="a:1", failure="", failure_detail="", duration_s=0.1, data={}),
    )  # fmt: skip


def sql(url: str, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def day_partitions(url: str) -> set[str]:
    names = sql(url, "SELECT relname FROM pg_class WHERE relkind = 'r'")
    return {str(n) for (n,) in names if schema.partition_day(str(n)) is not None}


async def test_coordinators_starting_at_once_migrate_exactly_once_and_one_owns_the_database(pg_url: str) -> None:
    stores = [PostgresStore(pg_url) for _ in range(6)]
    opened = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
    try:
        assert sorted(s.migrated_from for s in stores) == [0] + [schema.SCHEMA_VERSION] * 5
        assert sql(pg_url, "SELECT version FROM vantage_schema") == [(v,) for v in range(1, schema.SCHEMA_VERSION + 1)]
        # until the fleet is built, one coordinator schedules on a database: the others are refused
        refused = [o for o in opened if isinstance(o, OwnerTaken)]
        assert len(refused) == 5 and opened.count(None) == 1, opened
        assert "another coordinator already uses this database" in str(refused[0])
    finally:
        for s, o in zip(stores, opened, strict=True):
            if o is None:
                await s.close()
    again = PostgresStore(pg_url)  # the owner is gone: the database is free again
    await again.open()
    await again.close()


async def test_a_newer_schema_is_refused_with_its_version(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    sql(pg_url, "INSERT INTO vantage_schema VALUES (99, 0)")
    with pytest.raises(psycopg.Error, match="schema version 99 is newer than this vantage knows"):
        await PostgresStore(pg_url).open()


async def test_results_land_in_their_days_partition_and_retain_drops_old_days_whole(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    try:
        now = time.time()
        today = schema.partition_name(schema.day_of(now))
        names = day_partitions(pg_url)
        assert today in names and len(names) == schema.DAYS_AHEAD + 2  # yesterday .. 3 days ahead
        old = now - 10 * schema.DAY_S
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await ensure_partitions(conn, old)  # as a coordinator running ten days ago did
        await store.write([PutJob.of(JOB)])
        await store.write([PutResult(result(f"old{i}"), "de", old + i) for i in range(5)])
        await store.write([PutResult(result("new"), "de", now)])
        where = dict(sql(pg_url, "SELECT task_id, tableoid::regclass::text FROM measurements"))
        assert where["new"] == today and where["old0"] == schema.partition_name(schema.day_of(old))
        before = len(day_partitions(pg_url))
        pruned = await store.prune(now - 5 * schema.DAY_S)
        assert pruned.measurements == 5
        after = day_partitions(pg_url)
        assert schema.partition_name(schema.day_of(old)) not in after and today in after
        assert len(after) < before
        assert await store.count_results() == 1
        assert sql(pg_url, "SELECT task_id FROM result_ids") == [("new",)]
    finally:
        await store.close()


async def test_writes_wait_out_a_server_restart_and_nothing_acked_is_lost(pg_server: PgServer, pg_url: str) -> None:
    store = PostgresStore(pg_url, retry_for_s=60)
    await store.open()
    try:
        await store.write([PutJob.of(JOB)])
        acked: list[str] = []
        under_way = asyncio.Event()

        async def ingest() -> None:
            for i in range(300):
                await store.write([PutResult(result(f"t{i}"), "de", time.time())])
                acked.append(f"t{i}")
                if len(acked) == 50:
                    under_way.set()
                await asyncio.sleep(0.005)

        with capture_logs() as logs:
            writer = asyncio.create_task(ingest())
            await asyncio.wait_for(under_way.wait(), 30)
            await asyncio.to_thread(pg_server.restart, "immediate")  # a crash, then back
            await asyncio.wait_for(writer, 90)
        assert any(e["event"] == "store_unavailable" for e in logs), "the outage was not seen"
        stored = {r[0] for r in sql(pg_url, "SELECT task_id FROM measurements")}
        assert len(acked) == 300 and stored == set(acked)
        assert await store.count_results() == 300  # the read side reconnected too
        # the restart dropped the owner lock with its connection; maintenance takes it again
        await store.maintain(time.time())
        with pytest.raises(OwnerTaken):
            await PostgresStore(pg_url).open()
    finally:
        await store.close()


async def test_the_password_never_shows(pg_server: PgServer) -> None:
    url = f"postgresql://vantage:s3cret@127.0.0.1:{pg_server.port + 1}/nowhere"  # nothing listens there
    assert redact(url) == f"postgresql://vantage:***@127.0.0.1:{pg_server.port + 1}/nowhere"
    with pytest.raises(StoreError) as err:
        open_store(url.replace("postgresql", "mysql"))
    assert "s3cret" not in str(err.value)
    server = CoordinatorServer(ServerConfig(listen="127.0.0.1:0", metrics_listen="127.0.0.1:0", db=url))
    with pytest.raises(StartupError) as failed:
        await server.start()
    assert "--db postgresql://vantage:***@" in str(failed.value) and "s3cret" not in str(failed.value)


async def test_a_standby_waits_for_the_owner_and_takes_over_the_moment_it_goes(pg_url: str) -> None:
    owner = PostgresStore(pg_url)
    await owner.open()
    standby = PostgresStore(pg_url, standby=True)
    with capture_logs() as logs:
        waiting = asyncio.create_task(standby.open())
        await asyncio.sleep(2.5)  # it polls every second; it must still be waiting
        assert not waiting.done()
        assert [e["event"] for e in logs].count("coordinator_standby") == 1
        gone = time.monotonic()
        await owner.close()
        await asyncio.wait_for(waiting, 10)
        took = time.monotonic() - gone
    assert took < 2.0, took
    assert any(e["event"] == "coordinator_taking_over" for e in logs)
    await standby.write([PutJob.of(JOB)])  # it serves
    assert [j.job_id for j in await standby.load_jobs()] == [JOB.job_id]
    await standby.close()


async def test_a_standby_that_is_cancelled_while_it_waits_leaves_nothing_open(pg_url: str) -> None:
    owner = PostgresStore(pg_url)
    await owner.open()
    standby = PostgresStore(pg_url, standby=True)
    waiting = asyncio.create_task(standby.open())
    await asyncio.sleep(1.5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await standby.close()
    sessions = sql(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
    await owner.close()
    assert sessions[0][0] == 3, sessions  # the owner's two (writer, lock) and this query's: none of the standby's
