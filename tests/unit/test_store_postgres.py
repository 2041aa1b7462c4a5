"""What only the PostgreSQL engine has to show, on a real private server
(tests/pgserver.py): migrations raced by several coordinators, the fleet's lease raced by
several and fencing the writes of a holder that lost it, daily partitions that --retain
drops whole, writes that wait out a server restart, and a password that never shows."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from structlog.testing import capture_logs

from coordinator.model import Job, JobSpec, JobState, ProbeResultData, TaskResultData
from coordinator.server import CoordinatorServer, ServerConfig
from coordinator.startup import StartupError
from coordinator.store import PutJob, PutResult, StoreError, open_store
from coordinator.store import postgres_schema as schema
from coordinator.store.postgres import PostgresStore, redact
from coordinator.store.postgres_admin import ensure_partitions
from coordinator.store.postgres_lease import LeaseLost
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


async def test_coordinators_starting_at_once_migrate_exactly_once_and_all_of_them_open(pg_url: str) -> None:
    stores = [PostgresStore(pg_url) for _ in range(6)]
    opened = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
    try:
        assert opened == [None] * 6  # a fleet: any number of coordinators share the database
        assert sorted(s.migrated_from for s in stores) == [0] + [schema.SCHEMA_VERSION] * 5
        assert sql(pg_url, "SELECT version FROM vantage_schema") == [(v,) for v in range(1, schema.SCHEMA_VERSION + 1)]
    finally:
        for s in stores:
            await s.close()


async def test_of_coordinators_racing_for_the_lease_exactly_one_wins_and_the_rest_see_it(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    leases = [store.lease() for _ in range(8)]
    try:
        for _ in range(5):  # five elections, each raced by eight
            won = await asyncio.gather(*(le.acquire(f"c{i}", f"h{i}:1", 30.0) for i, le in enumerate(leases)))
            winners = [i for i, epoch in enumerate(won) if epoch is not None]
            assert len(winners) == 1, won
            (w,) = winners
            holder = await leases[0].current()
            assert holder is not None and holder.valid
            assert (holder.holder, holder.address, holder.epoch) == (f"c{w}", f"h{w}:1", won[w])
            assert await leases[w].renew(f"c{w}", holder.epoch, 30.0)
            assert not await leases[w - 1].renew(f"c{w - 1}", holder.epoch, 30.0)  # not the holder
            await leases[w].release(f"c{w}", holder.epoch)
            freed = await leases[0].current()
            assert freed is not None and not freed.valid
        assert holder.epoch == 5  # one epoch per election, never two winners of one
    finally:
        for le in leases:
            await le.close()
        await store.close()


async def test_a_lease_expires_by_the_servers_clock_and_then_another_takes_it(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    a, b = store.lease(), store.lease()
    try:
        first = await a.acquire("a", "a:1", 1.0)
        assert first == 1
        assert await b.acquire("b", "b:1", 1.0) is None  # held
        await asyncio.sleep(1.3)  # a died: it renews no more
        assert await b.acquire("b", "b:1", 30.0) == 2
        assert not await a.renew("a", 1, 30.0)  # a comes back: the lease is b's now
    finally:
        await a.close()
        await b.close()
        await store.close()


async def test_the_fence_refuses_every_write_of_a_holder_whose_lease_was_taken(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    a, b = store.lease(), store.lease()
    try:
        epoch = await a.acquire("a", "a:1", 0.5)
        assert epoch is not None
        store.fence("a", epoch)
        await store.write([PutJob.of(JOB)])  # a holds it: the write lands
        await asyncio.sleep(0.7)
        assert await b.acquire("b", "b:1", 30.0) == epoch + 1
        late = Job(**{**JOB.__dict__, "job_id": "fedcba9876543210"})
        with pytest.raises(LeaseLost, match="no longer held by a"):
            await store.write([PutJob.of(late)])
        assert [j.job_id for j in await store.load_jobs()] == [JOB.job_id]  # nothing of a's after
    finally:
        await a.close()
        await b.close()
        await store.close()


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
