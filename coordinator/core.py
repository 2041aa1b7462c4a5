"""The coordinator: its parts put together, between the gRPC edge and the store.

- ``registry.Registry``: one record per agent, with its session;
- ``lifecycle.Book``: jobs and open tasks, and the job life cycle on them;
- ``dispatch.plan``: which due task goes to which agent (pure), applied here;
- ``ingest.Ingest``: results stored once, acked once committed, then observed;
- ``watch.Watchers``: the fan-out to ``WatchJob`` streams.

The servicers (``coordinator/services.py``) and the metrics collector only call the
read-only queries at the end of this class; protobuf stays in ``coordinator/convert.py``.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import structlog

from coordinator import dispatch, quotas, restore, scheduler
from coordinator.analysis import Analyzer, blockpage
from coordinator.ingest import Ingest, IngestOutcome
from coordinator.lifecycle import Book
from coordinator.model import (
    CANARY_PURPOSE,
    AgentInfo,
    ApiToken,
    Assignment,
    AuditEntry,
    Cancellation,
    Job,
    JobSpec,
    Task,
    TaskResultData,
    TaskState,
)
from coordinator.observe import Counters
from coordinator.queries import Queries
from coordinator.registry import Registry, Session, SharedLimits
from coordinator.store import (
    AgentHello,
    AgentSeen,
    Change,
    PutAudit,
    PutJob,
    PutTask,
    Store,
    TaskProgress,
)
from coordinator.tasks import TaskEvent, apply
from coordinator.validation import JobLimits, check_task_count, validate_job
from coordinator.vouch import Refused
from coordinator.watch import Watchers, WatchEvent

log = structlog.get_logger("vantage.coordinator")

# The share of the time the scheduling tick's full pass over the open tasks may take
# (Coordinator._full_pass).
FULL_PASS_SHARE = 0.2
# A full pass cheaper than this runs on every tick.
FULL_PASS_CHEAP_S = 0.01
# How often the registry is swept for agents to forget.
FORGET_EVERY_S = 60.0


class AgentRefused(Exception):
    """A hello this coordinator does not take; the message says why."""


class AgentLimit(AgentRefused):
    """A hello past the shared agent token's limits (coordinator/registry.py ``SharedLimits``)."""


class NotStored(Exception):
    """A job could not be written (the database, or a fleet's fence), so it was not accepted."""

@dataclass(frozen=True, kw_only=True)
class CoordinatorConfig:
    heartbeat_interval_s: float = 5.0
    # An agent silent for this many heartbeat intervals is considered lost.
    heartbeat_misses: int = 3
    # Tasks of an agent that vanished wait this long for it to come back, then go to
    # another matching agent.
    reassign_after_s: float = 10.0
    # After a restart, rounds wait (at most this long) for the agents seen shortly before
    # the restart to reconnect, so a restart does not produce rounds without agents.
    startup_grace_s: float = 20.0
    tick_s: float = 0.25
    evaluate_every_s: float = 1.0
    group_by: str = "region"  # or "asn"
    # An agent not seen for this long is forgotten: it leaves ListAgents and the metrics
    # (a region with no agent left leaves vantage_agents_connected).
    forget_agents_after_s: float = 7 * 86400.0
    # What the holders of the shared agent token may make (coordinator/registry.py).
    shared_agents: SharedLimits = field(default_factory=SharedLimits)
    job_limits: JobLimits = field(default_factory=JobLimits)
    # The block-page fingerprints http results are matched against: the shipped file's
    # by default, with an operator's (--block-pages) added (coordinator/analysis/blockpage.py).
    block_pages: tuple[blockpage.Fingerprint, ...] = field(default_factory=blockpage.load)


class Coordinator(Queries):
    def __init__(
        self,
        store: Store,
        analyzer: Analyzer,
        config: CoordinatorConfig,
        *,
        clock: Callable[[], float] = time.time,
        seal: Callable[[TaskResultData], bytes] | None = None,
    ) -> None:
        """``seal`` gives the stored bytes of a vouched result; by default
        ``coordinator.convert.sealed`` (the one place that speaks protobuf)."""
        if seal is None:
            from coordinator.convert import sealed

            seal = sealed
        self.store = store
        self.analyzer = analyzer
        self.config = config
        self.clock = clock
        self.rng = random.Random()
        self.book = Book()
        self.registry = Registry(config.shared_agents)
        self.watchers = Watchers()
        self.counters = Counters()
        self.ingest_results = Ingest(
            book=self.book, store=store, registry=self.registry, counters=self.counters,
            analyzer=analyzer, watchers=self.watchers, clock=clock, group_by=config.group_by,
            on_done=self._slots_freed, seal=seal, block_pages=config.block_pages,
        )  # fmt: skip
        self.accepting = True
        self.started_at = clock()
        self._awaited_agents: set[str] = set()
        self._waiting_for_slot: set[str] = set()  # agents with due tasks held for a slot
        self._forgot_at = 0.0
        self._writing: list[Job] = []  # jobs accepted but not yet committed (quotas count them)
        # Seconds the event loop was too busy to read the streams (``note_stall``); the
        # heartbeat limit leaves them out. ``lag``: the loop's latest measured lag.
        self.stalled = 0.0
        self.lag = 0.0
        # The last full pass over the open tasks: when it ended and what it cost
        # (time.perf_counter seconds; run_due spaces them by their cost).
        self._full_pass_end = -math.inf
        self._full_pass_cost = 0.0
        self._requeued: list[Task] = []  # made pending by a reconnect since the last tick

    # ------------------------------------------------------------------ start-up

    async def load(self, decode: Callable[[bytes], TaskResultData] | None = None) -> int:
        """Restore jobs, open tasks and known agents after a restart; with ``decode``,
        refill the analysis window from the store (coordinator/restore.py). Returns how
        many stored results were read back into the analysis."""
        self._awaited_agents, refilled = await restore.restore(self, decode)
        self.started_at = self.clock()  # the start-up grace runs from here (in a fleet: the takeover)
        return refilled

    async def start_canaries(self, spec: JobSpec | None) -> Job | None:
        """The canary job for ``spec``, or None (coordinator/restore.py)."""
        return await restore.start_canaries(self, spec)

    # ------------------------------------------------------------------ persistence

    def _persist(self, changes: list[Change]) -> None:
        """Queue writes now without waiting for the commit. Every engine keeps queue
        order, so a task's insert always lands before its later updates."""
        if changes:
            self.store.write_nowait(changes, self._write_failed)

    @staticmethod
    def _write_failed(error: BaseException, changes: int) -> None:
        log.error("store_write_failed", error=str(error), changes=changes)

    async def flush(self) -> None:
        """Wait until every write queued so far is committed (graceful shutdown)."""
        await self.store.flush()

    # ------------------------------------------------------------------ agents

    def agent_connected(
        self, info: AgentInfo, peer: str, held_task_ids: Iterable[str], credential: str = ""
    ) -> Session:
        """A session for ``info``, proven by ``credential`` (coordinator/access.py). A
        session of the same agent id with the same credential is replaced (the agent came
        back, e.g. after a network change); one with another credential is not taken over:
        AgentRefused."""
        now = self.clock()
        live = self.registry.session(info.agent_id)
        if live is not None and not live.closed.is_set() and live.credential != credential:
            log.warning("agent_takeover_refused", agent_id=info.agent_id, peer=peer, connected_from=live.peer)
            raise AgentRefused(
                f"hello.agent_id: agent {info.agent_id} is connected with another credential; "
                "a second session needs the same one"
            )
        refusal = self.registry.refusal(info, credential)
        if refusal is not None:
            log.warning("agent_over_shared_limit", agent_id=info.agent_id, region=info.region, peer=peer)
            raise AgentLimit(refusal)
        session, old = self.registry.connect(info, peer, now, credential)
        session.credential = credential
        session.stalled_at_seen = self.stalled
        if old is not None:
            log.info("agent_replaced", agent_id=info.agent_id, old_session=old.session_id)
            old.close()
        held = set(held_task_ids)
        requeued = []
        for task in self.book.tasks.values():
            if task.agent_id == info.agent_id and task.state is TaskState.ASSIGNED and task.task_id not in held:
                apply(task, TaskEvent.NOT_HELD, reason="agent no longer held the task")
                requeued.append(task)
        self._requeued.extend(requeued)  # dispatched at the next tick, full pass or not
        self._persist([AgentHello(info, now, peer), *(TaskProgress.of(t) for t in requeued)])
        log.info(
            "agent_connected", agent_id=info.agent_id, region=info.region, peer=peer,
            session_id=session.session_id, held=len(held), requeued=len(requeued),
        )  # fmt: skip
        return session

    def agent_disconnected(self, session: Session, reason: str) -> None:
        now = self.clock()
        if not self.registry.disconnect(session, now):
            return  # already replaced by a newer session
        self._persist([AgentSeen(session.info.agent_id, now)])
        log.warning(
            "agent_lost", agent_id=session.info.agent_id, region=session.info.region,
            session_id=session.session_id, reason=reason,
        )  # fmt: skip

    def note_stall(self, seconds: float) -> None:
        """The event loop could not run for ``seconds`` (the scheduling tick came that
        much late: coordinator/server.py ``_every``), so no stream was read meanwhile:
        the heartbeat limit does not count them against any agent."""
        self.stalled += seconds

    def heartbeat(self, session: Session, running: int, outbox: int) -> None:
        now = self.clock()
        session.last_seen = now
        session.stalled_at_seen = self.stalled
        session.running = running
        session.outbox = outbox
        # Kept on disk too (at most once a minute), so after a crash the start-up grace
        # knows which agents were connected just before it.
        if now - session.persisted_seen >= 60:
            session.persisted_seen = now
            self._persist([AgentSeen(session.info.agent_id, now)])

    # ------------------------------------------------------------------ jobs

    def end_session(self, agent_id: str, reason: str) -> bool:
        """Close ``agent_id``'s session now (its enrolment was revoked); False without one."""
        session = self.registry.session(agent_id)
        if session is None:
            return False
        session.close()
        self.agent_disconnected(session, reason)
        return True

    def audit(self, actor: str, action: str, subject: str, **detail: object) -> PutAudit:
        return PutAudit(AuditEntry(at=self.clock(), actor=actor, action=action, subject=subject,
                                   detail=json.dumps(detail, sort_keys=True)))  # fmt: skip

    async def submit_job(self, spec: JobSpec, *, owner: str = "", token: ApiToken | None = None) -> Job:
        """Accept ``spec`` for ``owner`` (an API token's name; its quotas in ``token``):
        durable, with its audit record, before it returns. Raises InvalidJob,
        QuotaExceeded, or RuntimeError while shutting down."""
        if not self.accepting:
            raise RuntimeError("coordinator is shutting down")
        now = self.clock()
        matched = validate_job(spec, self.registry.connected(), self.config.job_limits, now=now)
        per_round = len(scheduler.select_agents(matched, spec.selector, spec.kind)) * len(spec.targets)
        check_task_count(spec, per_round)
        cost = quotas.hourly_cost(spec, per_round)
        if token is not None:  # jobs still being written count too: concurrent submits race no quota
            quotas.check(token, [*self.book.jobs.values(), *self._writing], cost, now, quotas.task_bytes(spec))
        job = self.book.new_job(spec, now, per_round=per_round)
        job.owner, job.hourly_cost = owner, cost
        entry = self.audit(
            owner, "submit", job.job_id, kind=spec.kind, targets=len(spec.targets), tasks_per_round=per_round,
            hourly_cost=cost, every_s=spec.every_s, count=spec.count,
        )  # fmt: skip
        self._writing.append(job)
        try:
            await self.store.write([PutJob.of(job), entry])  # accepted means durable
        except Exception as exc:  # any engine's error
            log.error("job_not_stored", error=" ".join(str(exc).split())[:300])
            raise NotStored(str(exc)) from exc
        finally:
            self._writing.remove(job)
        self.book.add(job)
        log.info(
            "job_accepted", job_id=job.job_id, kind=spec.kind, targets=len(spec.targets),
            agents=len(matched), every_s=spec.every_s, count=spec.count,
        )  # fmt: skip
        self.run_due(now)
        return job

    def cancel_job(self, job_id: str, *, actor: str = "") -> Job:
        job = self.book.jobs[job_id]
        if job.state.finished:
            return job
        assigned, changes = self.book.cancel(job_id, self.clock())
        for task in assigned:
            if session := self.registry.session(task.agent_id):
                session.send(Cancellation(task_id=task.task_id, reason="job cancelled"))
        changes.append(self.audit(actor, "cancel", job_id, owner=job.owner, tasks_cancelled=len(assigned)))
        self._persist(changes)
        log.info("job_cancelled", job_id=job_id, by=actor)
        self.watchers.notify(job_id, WatchEvent(job_end=job))
        return job

    # ------------------------------------------------------------------ the tick

    def run_due(self, now: float) -> None:
        """One scheduling pass: rounds, lost agents, dispatch, job ends."""
        changes: list[Change] = []
        if self._awaited_agents and now - self.started_at < self.config.startup_grace_s:
            self._awaited_agents = {a for a in self._awaited_agents if not self.registry.is_connected(a)}
        else:
            self._awaited_agents.clear()
        created: list[Task] = []
        if not self._awaited_agents:  # else: still in the start-up grace, agents reconnect
            due = [job for job in self.book.open_jobs.values() if scheduler.round_is_due(job, now)]
            # new rounds add pending tasks, never assigned ones: one count serves them all
            load = dispatch.assigned_load(self.book.tasks.values(), self._canary_jobs()) if due else {}
            for job in due:
                agents = scheduler.select_agents(
                    self.registry.connected(), job.spec.selector, job.spec.kind, load=load, rng=self.rng
                )
                made = self.book.create_round(job, agents, now, self.rng)
                changes.extend(made)
                # the live tasks (a PutTask holds a copy)
                created.extend(self.book.tasks[c.task.task_id] for c in made if isinstance(c, PutTask))
                # a round larger than the one the job was admitted with (more agents since)
                # counts against its token's hourly quota from now on
                job.hourly_cost = max(job.hourly_cost, quotas.hourly_cost(job.spec, len(agents) * len(job.spec.targets)))
        self._expire_silent_sessions(now)
        if now - self._forgot_at >= FORGET_EVERY_S:
            self._forgot_at = now
            self._forget_agents(now)
        started = time.perf_counter()
        cost = self._full_pass_cost
        if cost < FULL_PASS_CHEAP_S or started - self._full_pass_end >= cost / FULL_PASS_SHARE:
            changes.extend(self._full_pass(now))
            self._full_pass_end = time.perf_counter()
            self._full_pass_cost = self._full_pass_end - started
        elif created or self._requeued:
            # Between full passes a new round (fan-out latency) and the tasks a
            # reconnected agent no longer held still go out at once, counted against
            # every agent's assigned tasks.
            load = dispatch.assigned_load(self.book.tasks.values(), self._canary_jobs())
            again = [t for t in self._requeued if t.state is TaskState.PENDING]
            changes.extend(self._dispatch([*created, *again], now, load=load))
        self._requeued.clear()
        self._persist(changes)

    def _full_pass(self, now: float) -> list[Change]:
        """Everything that walks all open tasks: lost agents' tasks, deadlines, due tasks,
        job ends. It runs every tick while it takes under FULL_PASS_CHEAP_S; with many tasks
        open (200,000 take a tenth of a second or more) at most as often as keeps it to
        FULL_PASS_SHARE of the time, so the streams are still read. Deadlines and lost
        agents are then noticed up to five passes' cost late (half a second at 200,000)."""
        changes = self._reassign_lost_agents_tasks(now)
        self._waiting_for_slot.clear()  # a full pass: it finds them all again
        changes.extend(self._dispatch(self.book.tasks.values(), now))
        ended, finished = self.book.finish_jobs(now)
        changes.extend(finished)
        for job in ended:
            self.watchers.notify(job.job_id, WatchEvent(job_end=job))
        return changes

    def _forget_agents(self, now: float) -> None:
        busy = {t.agent_id for t in self.book.tasks.values()}
        gone = self.registry.forget(now - self.config.forget_agents_after_s, keep=busy, now=now)
        if gone:
            log.info("agents_forgotten", agents=len(gone), after_s=self.config.forget_agents_after_s)

    def _expire_silent_sessions(self, now: float) -> None:
        limit = self.config.heartbeat_interval_s * self.config.heartbeat_misses
        for session in list(self.registry.sessions()):
            if session.held_back:
                continue  # not read because the coordinator has no room: not its silence
            # Silence while the coordinator itself stalled is not the agent's.
            if now - session.last_seen - (self.stalled - session.stalled_at_seen) > limit:
                session.close()
                self.agent_disconnected(session, f"no heartbeat for {limit:g}s")

    def _reassign_lost_agents_tasks(self, now: float) -> list[Change]:
        changes: list[Change] = []
        for task in self.book.tasks.values():
            if task.state is not TaskState.ASSIGNED or self.registry.is_connected(task.agent_id):
                continue
            lost = self.registry.lost_at(task.agent_id)
            if now - (now if lost is None else lost) >= self.config.reassign_after_s:
                apply(task, TaskEvent.AGENT_LOST, reason=f"agent {task.agent_id} lost")
                changes.append(TaskProgress.of(task))
        return changes

    def _dispatch(self, tasks: Iterable[Task], now: float, *, load: dict[str, int] | None = None) -> list[Change]:
        """Plan and send ``tasks``; ``load``: every agent's assigned tasks, when ``tasks``
        are not all the open ones of the agents concerned."""
        plan = dispatch.plan(
            tasks, now, connected={a.agent_id: a for a in self.registry.connected()},
            specs={j: job.spec for j, job in self.book.open_jobs.items()},
            lost_at=self.registry.lost_at, reassign_after_s=self.config.reassign_after_s, load=load,
        )  # fmt: skip
        changes: list[Change] = []
        for task, reason in plan.expired:
            changes.extend(self.book.fail_task(task, reason))
            self.watchers.notify(task.job_id, WatchEvent(failed_task=task))
        for task, reason in plan.waiting:
            task.reason = reason
        self._waiting_for_slot |= plan.short_of_slots
        for task, agent in plan.sends:
            if agent.agent_id != task.agent_id:
                log.info(
                    "task_reassigned", task_id=task.task_id, job_id=task.job_id,
                    from_agent=task.agent_id, agent_id=agent.agent_id,
                )  # fmt: skip
                task.agent_id = agent.agent_id
                task.region = agent.region
            changes.append(self._send_assignment(task, now))
        return changes

    def _canary_jobs(self) -> set[str]:
        """The open canary jobs: their tasks hold no slot (an agent runs them in a lane
        of their own, agent/runner.py)."""
        return {j for j, job in self.book.open_jobs.items() if job.spec.purpose == CANARY_PURPOSE}

    def _slots_freed(self, agent_id: str) -> None:
        """Results of ``agent_id`` landed: its due tasks held for a slot go out now, not at
        the next tick."""
        if agent_id in self._waiting_for_slot:
            self._waiting_for_slot.discard(agent_id)  # the pass below finds it again if need be
            now = self.clock()
            mine = [t for t in self.book.tasks.values() if t.agent_id == agent_id]
            self._persist(self._dispatch(mine, now))

    def _send_assignment(self, task: Task, now: float) -> Change:
        job = self.book.jobs[task.job_id]
        apply(task, TaskEvent.DISPATCH)
        task.assigned_at = now
        task.attempts += 1
        session = self.registry.session(task.agent_id)
        assert session is not None  # dispatch sends only to connected agents
        session.send(
            Assignment(
                task_id=task.task_id, job_id=task.job_id, kind=job.spec.kind, target=task.target,
                options=job.spec.options, not_before=task.due_at, deadline=task.deadline,
                canary=job.spec.purpose == CANARY_PURPOSE,
            )
        )
        return TaskProgress.of(task)

    # ------------------------------------------------------------------ results

    async def ingest(
        self,
        session: Session,
        results: list[TaskResultData],
        refused: Sequence[tuple[str, Refused]] = (),
    ) -> IngestOutcome:
        return await self.ingest_results.ingest(session, results, refused)

    async def prune(self, retain_s: float) -> None:
        """Drop what is older than ``retain_s`` (``--retain``), in the store and here."""
        before = self.clock() - retain_s
        pruned = await self.store.prune(before)
        jobs = self.book.forget_finished(before)
        log.info("store_pruned", measurements=pruned.measurements, tasks=pruned.tasks, jobs=max(jobs, pruned.jobs))
