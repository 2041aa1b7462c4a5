"""The fleet: any number of coordinators on one PostgreSQL database, one of them scheduling.

Every coordinator of a fleet listens for agents and API callers. The one that holds the
lease (``coordinator/store/postgres_lease.py``) is the *scheduler*: it keeps the jobs,
the agent registry, the schedule and the analysis in memory, exactly as a lone
coordinator does, and it alone creates rounds, dispatches, sweeps lost agents and
deadlines, prunes, and exports verdicts. The others are *relays* (``coordinator/relay.py``):
they check an agent's token and hello, then carry its stream to the scheduler and back;
they forward the job API to it. So every coordinator gives the same answers (they come
from one place), each task is assigned once (one process assigns, and its writer is
fenced by the lease), and results are stored once by task id in the database itself.

Why one scheduler and relays, rather than every coordinator scheduling from the shared
tables: the schedule, the per-agent concurrency, the reassignment grace and the analysis
window are decisions over the whole network that want one consistent view; sharing them
row by row would make every one of them a distributed race. Relays carry the part that
grows with the network (connections, TLS, keepalives) and the scheduler's state is
rebuilt from the database in well under a second by whichever coordinator takes over.

Takeover. The holder renews the lease every ``RENEW_EVERY_S``; it expires ``LEASE_TTL_S``
after the last renewal by the database's clock; the others try to take it every
``ELECT_EVERY_S``. When the holder dies, one of them takes it within about ``LEASE_TTL_S``,
reads the state back from the database (as after a restart, analysis window included),
and schedules; the relays carry the agents there. A graceful shutdown releases the lease
at once. A holder that cannot confirm its lease (the database unreachable) pauses its
schedule from ``LEASE_TTL_S - MARGIN_S`` after its last confirmed renewal; if another
coordinator has taken the lease meanwhile, it stops (``on_lost``) and starts again as a
relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import structlog

log = structlog.get_logger("vantage.coordinator")

LEASE_TTL_S = 8.0
RENEW_EVERY_S = 2.0
ELECT_EVERY_S = 0.5
MARGIN_S = 1.0


class Role(StrEnum):
    ELECTING = "electing"  # no valid holder known: trying to take the lease
    FOLLOWING = "following"  # another coordinator schedules: relay to it
    TAKING_OVER = "taking_over"  # holds the lease, reading the state back
    LEADING = "leading"  # holds the lease and schedules


@dataclass(frozen=True, slots=True)
class Route:
    """Where a call goes: handled here (``local``) or relayed to ``address``."""

    local: bool
    address: str = ""


class LeaseHolder(Protocol):
    holder: str
    address: str
    epoch: int
    valid: bool
    remaining_s: float


class LeaseStore(Protocol):
    async def acquire(
        self, holder: str, address: str, ttl_s: float, *, predecessor: bool = False
    ) -> int | None: ...
    async def current(self) -> LeaseHolder | None: ...
    async def renew(self, holder: str, epoch: int, ttl_s: float) -> bool: ...
    async def release(self, holder: str, epoch: int) -> None: ...
    async def close(self) -> None: ...


def member_name() -> str:
    """This process's name in the lease: host, pid and a random part (a restart in the
    same process takes a new one)."""
    return f"{socket.gethostname()[:40]}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


class Fleet:
    def __init__(
        self,
        lease: LeaseStore,
        *,
        address: str,
        on_elected: Callable[[int], Coroutine[Any, Any, None]],
        on_lost: Callable[[str], None],
        ttl_s: float = LEASE_TTL_S,
        renew_every_s: float = RENEW_EVERY_S,
        elect_every_s: float = ELECT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.me = member_name()
        self.address = address  # where the other coordinators reach this one (--advertise)
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self.elect_every_s = elect_every_s
        self.clock = clock
        self.role = Role.ELECTING
        self.leader: str = ""  # the holder's address while following
        self.leader_name: str = ""
        self.epoch = 0
        self.takeovers = 0
        self._valid_until = 0.0
        self._paused = False
        self._told_same = False
        self._changed = asyncio.Event()

    # -- what the rest of the coordinator asks ----------------------------------------

    @property
    def leading(self) -> bool:
        return self.role is Role.LEADING

    def may_schedule(self) -> bool:
        """True while this coordinator leads on a lease it confirmed recently enough."""
        return self.role is Role.LEADING and self.clock() < self._valid_until

    def route_now(self) -> Route | None:
        if self.role is Role.LEADING:
            return Route(local=True)
        if self.role is Role.FOLLOWING and self.leader:
            return Route(local=False, address=self.leader)
        return None  # electing, or reading the state back

    async def route(self, timeout_s: float) -> Route | None:
        """Where to send a call, waiting up to ``timeout_s`` while there is no scheduler
        (an election, a takeover). None when there still is none."""
        deadline = self.clock() + timeout_s
        while (found := self.route_now()) is None:
            left = deadline - self.clock()
            if left <= 0:
                return None
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
        return found

    def _set(self, role: Role, leader: str = "", name: str = "") -> None:
        if (role, leader) == (self.role, self.leader):
            return
        log.info("fleet_role", role=str(role), leader=leader or None, holder=name or None, me=self.me)
        self.role, self.leader, self.leader_name = role, leader, name
        self._changed.set()
        self._changed = asyncio.Event()

    # -- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Take, hold or watch the lease until ``stop`` (or until it is lost; ``close``
        releases it). The state is read back (``on_elected``) while the lease is renewed
        beside it."""
        taking_over: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                if self.role in (Role.LEADING, Role.TAKING_OVER):
                    if not await self._renew():
                        return
                    pause = self.renew_every_s
                else:
                    taking_over = await self._elect()
                    pause = 0.0 if taking_over is not None else self.elect_every_s
                if taking_over is not None:
                    waits: set[asyncio.Future[Any]] = {taking_over, asyncio.ensure_future(stop.wait())}
                    _, pending = await asyncio.wait(waits, timeout=pause or self.renew_every_s,
                                                    return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                    for p in pending - {taking_over}:
                        p.cancel()
                    if taking_over.done():
                        failed = None if taking_over.cancelled() else taking_over.exception()
                        taking_over = None
                        if failed is not None:
                            log.error("fleet_takeover_failed", epoch=self.epoch, error=str(failed))
                            self.on_lost(f"could not take over: {failed}")
                            return
                        self._taken_over()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        finally:
            if taking_over is not None and not taking_over.done():
                taking_over.cancel()
                with contextlib.suppress(BaseException):
                    await taking_over

    async def close(self) -> None:
        """Release the lease if held (after the last write is committed: the next holder
        reads the state back from the database), and close the lease's connection."""
        if self.role in (Role.LEADING, Role.TAKING_OVER):
            try:
                await asyncio.wait_for(self.lease.release(self.me, self.epoch), 3.0)
                log.info("fleet_lease_released", epoch=self.epoch)
            except Exception as exc:
                log.warning("fleet_lease_not_released", epoch=self.epoch, error=str(exc)[:200],
                            effect=f"another coordinator takes over when it expires (within {self.ttl_s:g}s)")  # fmt: skip
        self.role = Role.ELECTING
        await self.lease.close()

    async def first_election(self, *, predecessor: bool = True) -> None:
        """One try for the lease before serving: when it is free (a lone coordinator, or
        the first of a fleet), the state is read back before the first request, as a
        coordinator on SQLite does."""
        taking_over = await self._elect(predecessor=predecessor)
        if taking_over is not None:
            await taking_over
            self._taken_over()

    def _taken_over(self) -> None:
        """The state is read back: from now on this coordinator schedules."""
        self.takeovers += 1
        self._set(Role.LEADING, self.address, self.me)

    async def _elect(self, *, predecessor: bool = False) -> asyncio.Task[None] | None:
        """One try for the lease; when taken, the takeover (reading the state back) as a
        task. ``predecessor``: at start-up, also from a holder at this very address (this
        coordinator bound its port, so that holder is gone)."""
        started = self.clock()
        try:
            epoch = await self.lease.acquire(self.me, self.address, self.ttl_s, predecessor=predecessor)
            holder = None if epoch is not None else await self.lease.current()
        except Exception as exc:  # the database: keep relaying to the holder we know
            log.warning("fleet_lease_unreadable", error=" ".join(str(exc).split())[:200])
            return None
        if epoch is None:
            # A holder at this coordinator's own address is a predecessor that died (a
            # restart on the same port): wait for its lease to expire, never relay to self.
            if holder is not None and holder.valid and holder.holder != self.me and holder.address != self.address:
                self._set(Role.FOLLOWING, holder.address, holder.holder)
            elif holder is not None and holder.valid and holder.holder != self.me and not self._told_same:
                self._told_same = True  # a dead predecessor here, or two members sharing one address
                log.error("fleet_holder_at_own_address", address=self.address, holder=holder.holder,
                          remaining_s=round(holder.remaining_s, 1),
                          hint="if this lasts, two coordinators advertise one address: give each its own --advertise")  # fmt: skip
                self._set(Role.ELECTING)
            else:
                self._set(Role.ELECTING)
            return None
        self.epoch = epoch
        self._valid_until = started + self.ttl_s - min(MARGIN_S, self.ttl_s / 4)
        self._set(Role.TAKING_OVER, self.address, self.me)
        log.warning("fleet_taking_over", epoch=epoch, me=self.me, address=self.address)
        return asyncio.create_task(self.on_elected(epoch), name="fleet-takeover")

    async def _renew(self) -> bool:
        """False when the lease is lost for good (``on_lost`` was called)."""
        started = self.clock()
        try:
            held = await self.lease.renew(self.me, self.epoch, self.ttl_s)
        except Exception as exc:  # the database cannot be asked: hold on while still valid
            if self.clock() >= self._valid_until and not self._paused:
                self._paused = True
                log.error("fleet_lease_unconfirmed", epoch=self.epoch, reason=" ".join(str(exc).split())[:200],
                          action="scheduling paused until the lease is confirmed")  # fmt: skip
            return True
        if not held:
            log.error("fleet_lease_lost", epoch=self.epoch, me=self.me)
            self.on_lost("another coordinator took the fleet lease")
            return False
        self._valid_until = started + self.ttl_s - min(MARGIN_S, self.ttl_s / 4)
        if self._paused:
            self._paused = False
            log.warning("fleet_lease_confirmed", epoch=self.epoch, action="scheduling resumed")
        return True
