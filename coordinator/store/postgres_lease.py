"""The fleet's scheduling lease, a row of ``vantage_lease`` in PostgreSQL.

One coordinator of a fleet holds it and alone creates rounds, dispatches and sweeps; the
others relay to it (``coordinator/fleet.py``). The lease is a row, not an advisory lock:
a lock held by a session survives as long as the server thinks the session lives (after
a network partition, until TCP keepalive gives up, which can be hours), while a row with
an expiry frees itself on the server's clock whatever happened to its holder.

- ``acquire`` takes the row when it is free or expired, in one statement, and bumps the
  epoch: two coordinators racing for it cannot both win.
- ``renew`` pushes the expiry out, only for the holder of the epoch it names.
- ``release`` expires it at once (a graceful shutdown hands over without the wait).
- ``FENCE`` is run by the holder's writer in every transaction it commits: it reads the
  row ``FOR SHARE``, so a takeover (an ``UPDATE`` of the row) waits for the commit, and a
  coordinator whose lease was taken writes nothing more.

Expiry is judged by the database's clock (``now()``), never the coordinators' clocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from coordinator.store.postgres_admin import Conn, close_quietly

NAME = "scheduler"
# A statement on the lease connection that takes longer than this is given up (the
# connection is dropped): the lease loop must keep its own time whatever the server does.
STATEMENT_TIMEOUT_S = 3.0

ACQUIRE = (
    "INSERT INTO vantage_lease AS l (name, holder, address, epoch, expires_at) "
    "VALUES (%(name)s, %(holder)s, %(address)s, 1, now() + %(ttl)s * interval '1 second') "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, address = excluded.address, "
    "epoch = l.epoch + 1, expires_at = excluded.expires_at "
    "WHERE l.expires_at < now() OR (%(predecessor)s AND l.address = excluded.address) "
    "RETURNING epoch"
)
CURRENT = (
    "SELECT holder, address, epoch, expires_at > now(), "
    "extract(epoch FROM expires_at - now()) FROM vantage_lease WHERE name = %s"
)
RENEW = (
    "UPDATE vantage_lease SET expires_at = now() + %s * interval '1 second' "
    "WHERE name = %s AND holder = %s AND epoch = %s RETURNING epoch"
)
RELEASE = (
    "UPDATE vantage_lease SET expires_at = now() - interval '1 second' "
    "WHERE name = %s AND holder = %s AND epoch = %s"
)
FENCE = "SELECT 1 FROM vantage_lease WHERE name = %s AND holder = %s AND epoch = %s FOR SHARE"


class LeaseLost(Exception):
    """Another coordinator holds the lease now; this one must not write as the holder."""


@dataclass(frozen=True, slots=True)
class Holder:
    holder: str
    address: str
    epoch: int
    valid: bool  # not expired by the database's clock
    remaining_s: float


def fence_check(holder: str, epoch: int) -> Callable[[Conn], Awaitable[None]]:
    """The writer's check, run inside each transaction it commits."""

    async def check(conn: Conn) -> None:
        cur = await conn.execute(FENCE, (NAME, holder, epoch))
        if await cur.fetchone() is None:
            raise LeaseLost(f"the fleet lease (epoch {epoch}) is no longer held by {holder}")

    return check


class Lease:
    """The lease row, through a connection of its own (reconnected when it breaks)."""

    def __init__(self, connect: Callable[[], Awaitable[Conn]]) -> None:
        self._connect = connect
        self._conn: Conn | None = None
        self._lock = asyncio.Lock()

    async def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None:
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await asyncio.wait_for(self._connect(), STATEMENT_TIMEOUT_S)
            try:
                cur = await asyncio.wait_for(self._conn.execute(sql, params), STATEMENT_TIMEOUT_S)
                return await cur.fetchone() if cur.description else None
            except (psycopg.OperationalError, TimeoutError):
                await close_quietly(self._conn)
                self._conn = None
                raise

    async def acquire(self, holder: str, address: str, ttl_s: float, *, predecessor: bool = False) -> int | None:
        """The new epoch when the lease was free or expired and is now ``holder``'s. With
        ``predecessor``, also when its holder has this very address: a coordinator that
        restarts on the port it held (which it could bind, so the old process is gone)
        takes its own lease back at once."""
        row = await self._one(ACQUIRE, {"name": NAME, "holder": holder, "address": address, "ttl": ttl_s,
                                        "predecessor": predecessor})  # fmt: skip
        return int(row[0]) if row else None

    async def current(self) -> Holder | None:
        row = await self._one(CURRENT, (NAME,))
        if row is None:
            return None
        return Holder(holder=row[0], address=row[1], epoch=int(row[2]), valid=bool(row[3]),
                      remaining_s=float(row[4]))  # fmt: skip

    async def renew(self, holder: str, epoch: int, ttl_s: float) -> bool:
        """True when ``holder`` still holds ``epoch`` (now extended); False when another
        coordinator has taken it. Raises when the database cannot be asked."""
        return await self._one(RENEW, (ttl_s, NAME, holder, epoch)) is not None

    async def release(self, holder: str, epoch: int) -> None:
        await self._one(RELEASE, (NAME, holder, epoch))

    async def close(self) -> None:
        await close_quietly(self._conn)
        self._conn = None
