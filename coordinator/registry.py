"""The agent registry: one record per agent ever seen, with its session when connected.

A record keeps what the agent declared in its last hello, when it was first and last
seen, since when it is gone (the grace before its tasks move elsewhere), the counts of
tasks it could not run, and its open session. The registry only keeps the facts; what to
do about a lost agent is decided in ``coordinator/core.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import structlog

from coordinator.model import AgentInfo, Outgoing
from coordinator.store import StoredAgent

log = structlog.get_logger("vantage.coordinator")

# Messages waiting for one agent before it is cut off.
MAX_OUTGOING = 50_000
# An agent last seen this recently before a restart is awaited by the start-up grace.
RECENT_S = 120.0


@dataclass(eq=False)
class Session:
    """One connected agent's stream. ``outgoing`` holds what to send (None: close)."""

    info: AgentInfo
    peer: str
    connected_at: float
    last_seen: float
    outgoing: asyncio.Queue[Outgoing | None] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    running: int = 0
    outbox: int = 0
    persisted_seen: float = 0.0
    # Coordinator.stalled when it was last seen: the stall since does not count as silence.
    stalled_at_seen: float = 0.0
    # Its stream is not being read because the coordinator has no room to ingest more
    # (coordinator/services.py): not silent meanwhile.
    held_back: bool = False
    # What proved the agent's identity (coordinator/access.py Principal.credential): a
    # second session for its id is taken only with the same one.
    credential: str = ""

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.outgoing.put_nowait(None)

    def send(self, message: Outgoing) -> None:
        """Queue a message for the agent. An agent that stops reading while this many
        messages wait is cut off (its tasks are then reassigned) rather than letting the
        queue grow without bound."""
        if self.outgoing.qsize() >= MAX_OUTGOING:
            if not self.closed.is_set():
                log.warning("agent_not_reading", agent_id=self.info.agent_id, queued=MAX_OUTGOING)
            self.close()
            return
        self.outgoing.put_nowait(message)


@dataclass(eq=False)
class AgentRecord:
    info: AgentInfo
    first_seen: float
    last_seen: float
    session: Session | None = None
    lost_at: float | None = None  # when its session ended (or the coordinator restarted)
    # Tasks it could not run (failure class agent_*), by reason, since this process started.
    errors: Counter[str] = field(default_factory=Counter)
    # What proved it at its last hello (coordinator/access.py ``Principal.credential``):
    # "shared" for the shared agent token, "" when restored from the store.
    credential: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentView:
    """A read-only copy of one record, for the API and the metrics."""

    info: AgentInfo
    connected: bool
    first_seen: float
    last_seen: float
    running: int
    peer: str
    errors: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class SharedLimits:
    """What the holders of the shared agent token may make: any holder may connect under
    any id in any region it names, so 1,600 hellos in 2.5 s once left 1,601 series of
    ``vantage_agents_connected`` and a ListAgents too large for its client, for 7 days.
    Enrolled agents are not counted."""

    # Agent records made under the shared token (connected or not).
    max_agents: int = 1000
    # Distinct regions among them.
    max_regions: int = 64
    # A shared-token agent that is gone is forgotten after this long, not after
    # ``forget_agents_after_s`` (it has no enrolment to keep it).
    forget_after_s: float = 3600.0


SHARED = "shared"


class Registry:
    def __init__(self, shared: SharedLimits | None = None) -> None:
        self._records: dict[str, AgentRecord] = {}
        self.shared = shared or SharedLimits()

    def refusal(self, info: AgentInfo, credential: str) -> str | None:
        """Why a hello of ``info`` proven by ``credential`` is not taken (the shared
        token's limits, ``SharedLimits``), or None."""
        if credential != SHARED:
            return None
        known = self._records.get(info.agent_id)
        if known is not None and known.credential == SHARED:
            same_region = known.info.region == info.region
        else:
            same_region = False
            n = sum(1 for r in self._records.values() if r.credential == SHARED)
            if n >= self.shared.max_agents:
                return (f"hello.agent_id: the shared agent token already has {n} agents, its limit; "
                        "enrol agents (vantage agents add) or raise --max-shared-agents")  # fmt: skip
        if not same_region:
            regions = {r.info.region for r in self._records.values() if r.credential == SHARED}
            if info.region not in regions and len(regions) >= self.shared.max_regions:
                return (f"hello.region: the shared agent token already spans {len(regions)} regions, "
                        "its limit; enrol agents (vantage agents add) or raise --max-shared-regions")  # fmt: skip
        return None

    def restore(self, stored: list[StoredAgent], now: float) -> set[str]:
        """Records of the agents the store knows; returns those seen in the last
        RECENT_S (the start-up grace waits for them). Each gets the usual grace to come
        back before its tasks move."""
        awaited = set()
        for s in stored:
            self._records[s.info.agent_id] = AgentRecord(
                info=s.info, first_seen=s.first_seen, last_seen=s.last_seen, lost_at=now
            )
            if now - s.last_seen < RECENT_S:
                awaited.add(s.info.agent_id)
        return awaited

    def connect(
        self, info: AgentInfo, peer: str, now: float, credential: str = ""
    ) -> tuple[Session, Session | None]:
        """A new session for ``info``; returns it and the session it replaces, if any."""
        record = self._records.get(info.agent_id)
        session = Session(info=info, peer=peer, connected_at=now, last_seen=now, persisted_seen=now)
        if record is None:
            self._records[info.agent_id] = AgentRecord(
                info=info, first_seen=now, last_seen=now, session=session, credential=credential
            )
            return session, None
        old = record.session
        record.credential = credential
        record.info = info
        record.last_seen = now
        record.session = session
        record.lost_at = None
        return session, old

    def disconnect(self, session: Session, now: float) -> bool:
        """End ``session``; False when a newer session already replaced it."""
        record = self._records.get(session.info.agent_id)
        if record is None or record.session is not session:
            return False
        record.session = None
        record.lost_at = now
        record.last_seen = now
        return True

    def forget(self, before: float, *, keep: set[str], now: float | None = None) -> list[str]:
        """Drop the records of agents not connected and not seen since ``before`` (unless
        in ``keep``: agents that still hold tasks); returns their ids. With ``now``, a
        shared-token agent goes after ``SharedLimits.forget_after_s`` already."""
        shared_before = before if now is None else max(before, now - self.shared.forget_after_s)
        gone = [
            agent_id for agent_id, r in self._records.items()
            if r.session is None and agent_id not in keep
            and r.last_seen < (shared_before if r.credential == SHARED else before)
        ]  # fmt: skip
        for agent_id in gone:
            del self._records[agent_id]
        return gone

    def session(self, agent_id: str) -> Session | None:
        record = self._records.get(agent_id)
        return record.session if record is not None else None

    def lost_at(self, agent_id: str) -> float | None:
        record = self._records.get(agent_id)
        return record.lost_at if record is not None else None

    def sessions(self) -> Iterator[Session]:
        for record in self._records.values():
            if record.session is not None:
                yield record.session

    def connected(self) -> list[AgentInfo]:
        return [s.info for s in self.sessions()]

    def is_connected(self, agent_id: str) -> bool:
        return self.session(agent_id) is not None

    def info(self, agent_id: str) -> AgentInfo | None:
        record = self._records.get(agent_id)
        return record.info if record is not None else None

    def count_error(self, agent_id: str, reason: str) -> None:
        record = self._records.get(agent_id)
        if record is not None:
            record.errors[reason] += 1

    def regions(self) -> set[str]:
        return {r.info.region for r in self._records.values()}

    def views(self) -> list[AgentView]:
        out = []
        for agent_id in sorted(self._records):
            r = self._records[agent_id]
            s = r.session
            out.append(
                AgentView(
                    info=r.info, connected=s is not None, first_seen=r.first_seen,
                    last_seen=s.last_seen if s else r.last_seen, running=s.running if s else 0,
                    peer=s.peer if s else "", errors=dict(r.errors),
                )
            )
        return out

    def __len__(self) -> int:
        return len(self._records)
