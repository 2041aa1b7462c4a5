"""The fleet's lease as its members live it (coordinator/fleet.py), on a real PostgreSQL
server: who follows whom, a takeover within the lease's time when the holder dies, a
fast handover when it shuts down, a holder that lost its lease stopping, and a holder
that cannot reach the database pausing its schedule until it can."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from coordinator.fleet import Fleet, Role, Route
from coordinator.store.postgres import PostgresStore
from tests.pgserver import PgServer


class Member:
    def __init__(self, store: PostgresStore, name: str, ttl_s: float) -> None:
        self.elected: list[int] = []
        self.lost: list[str] = []
        self.fleet = Fleet(store.lease(), address=f"{name}:50051", on_elected=self._elected, on_lost=self.lost.append,
                           ttl_s=ttl_s, renew_every_s=ttl_s / 5, elect_every_s=0.1)  # fmt: skip
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _elected(self, epoch: int) -> None:
        await asyncio.sleep(0.05)  # reading the state back takes a moment
        self.elected.append(epoch)

    def run(self) -> Member:
        self.task = asyncio.create_task(self.fleet.run(self.stop))
        return self

    async def die(self) -> None:
        """As kill -9 would: no renewal, no release."""
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.fleet.lease.close()


async def until(cond: object, within_s: float) -> float:
    started = time.monotonic()
    while not cond():  # type: ignore[operator]
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not within {within_s}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(pg_url)
    await s.open()
    yield s
    await s.close()


@pytest.mark.timing  # the lease expires by the database's clock: no fake clock moves it
async def test_the_others_follow_the_holder_and_one_takes_over_within_the_lease_when_it_dies(
    store: PostgresStore,
) -> None:
    a, b, c = (Member(store, n, ttl_s=1.5) for n in "abc")
    await a.fleet.first_election()
    assert a.fleet.role is Role.LEADING and a.elected == [1] and a.fleet.route_now() == Route(local=True)
    a.run()
    b.run(), c.run()
    await until(lambda: b.fleet.role is Role.FOLLOWING and c.fleet.role is Role.FOLLOWING, 3)
    assert await b.fleet.route(1.0) == Route(local=False, address="a:50051")
    await asyncio.sleep(2.0)  # longer than the lease: a renews it, nobody else takes it
    assert a.fleet.leading and not b.elected and not c.elected
    await a.die()
    took = await until(lambda: b.fleet.leading or c.fleet.leading, 5)
    assert took <= 1.5 + 0.5, took  # the lease's time, then the next try
    new, other = (b, c) if b.fleet.leading else (c, b)
    assert new.elected == [2] and other.elected == []
    await until(lambda: other.fleet.leader == new.fleet.address, 2)
    for m in (b, c):
        m.stop.set()
    await asyncio.gather(b.task, c.task)  # type: ignore[arg-type]
    for m in (b, c):
        await m.fleet.close()


async def test_a_graceful_shutdown_hands_over_at_once(store: PostgresStore) -> None:
    a, b = Member(store, "a", ttl_s=30.0), Member(store, "b", ttl_s=30.0)
    await a.fleet.first_election()
    b.run()
    await until(lambda: b.fleet.role is Role.FOLLOWING, 3)
    held = await b.fleet.lease.current()
    assert held is not None and held.valid and held.holder == a.fleet.me
    await a.fleet.close()  # releases the lease: no wait for its 30 s
    # b leads while a's lease, had it not been released, would still stand: it was the
    # release that handed over, not the expiry (remaining_s is some 30 s, by the database)
    took = await until(lambda: b.fleet.leading, held.remaining_s - 1.0)
    assert took < held.remaining_s - 1.0 and b.fleet.epoch == held.epoch + 1, (took, held)
    b.stop.set()
    await b.task  # type: ignore[misc]
    await b.fleet.close()


async def test_a_holder_whose_lease_another_took_stops_scheduling(store: PostgresStore, pg_url: str) -> None:
    a = Member(store, "a", ttl_s=1.0)
    await a.fleet.first_election()
    a.run()
    assert a.fleet.may_schedule()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as a takeover after an expiry does
        conn.execute("UPDATE vantage_lease SET holder = 'x', epoch = epoch + 1")
    await asyncio.wait_for(a.task, 3)  # type: ignore[arg-type]
    assert a.lost == ["another coordinator took the fleet lease"]
    await a.fleet.close()


async def test_a_holder_that_cannot_reach_the_database_pauses_and_resumes_when_it_can(
    store: PostgresStore, pg_server: PgServer
) -> None:
    a = Member(store, "a", ttl_s=2.0)
    await a.fleet.first_election()
    a.run()
    assert a.fleet.may_schedule()
    await asyncio.to_thread(pg_server.stop, "immediate")
    try:
        paused = await until(lambda: not a.fleet.may_schedule(), 4)
        assert paused <= 2.0, paused  # from its last confirmed renewal, less the margin
        assert a.fleet.leading and a.lost == []  # it holds on: nobody else could take it either
    finally:
        await asyncio.to_thread(pg_server.start)
    await until(a.fleet.may_schedule, 10)  # confirmed again: it schedules on
    assert a.lost == [] and a.elected == [1]
    a.stop.set()
    await a.task  # type: ignore[misc]
    await a.fleet.close()


async def test_a_coordinator_restarted_on_its_own_address_takes_its_lease_back_at_once(store: PostgresStore) -> None:
    old = Member(store, "a", ttl_s=30.0)
    await old.fleet.first_election()
    await old.fleet.lease.close()  # killed -9: its lease would stand for 30 s more
    other = Member(store, "b", ttl_s=30.0)
    await other.fleet.first_election()  # another address: it must wait for the expiry
    assert other.fleet.role is Role.FOLLOWING and other.fleet.leader == "a:50051"
    again = Member(store, "a", ttl_s=30.0)  # the same address (it could bind the port)
    await again.fleet.first_election()
    assert again.fleet.leading and again.elected == [2]
    # After losing the lease in-process it starts again without taking it from a holder
    # at its own address (that holder is alive: it took the lease), and says so.
    third = Member(store, "a", ttl_s=30.0)
    await third.fleet.first_election(predecessor=False)
    assert third.fleet.role is Role.ELECTING and third.fleet.route_now() is None and third.elected == []
    for m in (other, again, third):
        await m.fleet.lease.close()
