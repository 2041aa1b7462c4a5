"""The coordinator's state and rules, between the gRPC edge and the store.

It owns jobs, open tasks and agent sessions; it creates rounds, dispatches due tasks,
reassigns the tasks of vanished agents, fails tasks whose deadline passed, ingests
results (deduplicated by task id, acknowledged only once committed), feeds the analysis
and tells watchers. The gRPC servicers in ``coordinator/server.py`` only translate.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from coordinator import canary, scheduler
from coordinator import jobs as job_states
from coordinator.analysis import Analyzer, Measurement
from coordinator.analysis.model import AGENT_ERRORS, FAILURES
from coordinator.jobs import JobEvent
from coordinator.model import (
    CANARY_PURPOSE,
    AgentInfo,
    Job,
    JobSpec,
    JobState,
    Task,
    TaskResultData,
    TaskState,
)
from coordinator.store import (
    BARRIER,
    Op,
    SQLiteStore,
    agent_op,
    agent_seen_op,
    job_op,
    job_state_op,
    measurement_op,
    task_op,
    task_state_op,
)
from coordinator.tasks import TaskEvent, apply
from coordinator.validation import JobLimits, validate_job

log = structlog.get_logger("vantage.coordinator")

# Messages waiting for one agent, and events for one watcher, before they are cut off.
MAX_OUTGOING = 50_000
MAX_WATCH_BACKLOG = 10_000

# Upper bounds (seconds) of the probe duration histogram.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


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
    job_limits: JobLimits = field(default_factory=JobLimits)


@dataclass(eq=False)
class Session:
    """One connected agent's stream."""

    info: AgentInfo
    peer: str
    connected_at: float
    last_seen: float
    outgoing: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    running: int = 0
    outbox: int = 0
    persisted_seen: float = 0.0

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.outgoing.put_nowait(None)

    def send(self, message: Any) -> None:
        """Queue a message for the agent. An agent that stops reading while this many
        messages wait is cut off (its tasks are then reassigned) rather than letting the
        queue grow without bound."""
        if self.outgoing.qsize() >= MAX_OUTGOING:
            if not self.closed.is_set():
                log.warning("agent_not_reading", agent_id=self.info.agent_id, queued=MAX_OUTGOING)
            self.close()
            return
        self.outgoing.put_nowait(message)


@dataclass(frozen=True, kw_only=True)
class IngestOutcome:
    acked: tuple[str, ...]
    accepted: int
    duplicates: int
    dropped: int


@dataclass
class WatchEvent:
    result: TaskResultData | None = None
    region: str = ""
    failed_task: Task | None = None
    job_end: Job | None = None
    overflow: bool = False  # the watcher fell behind and was dropped


class Coordinator:
    def __init__(
        self,
        store: SQLiteStore,
        analyzer: Analyzer,
        config: CoordinatorConfig,
        *,
        messages: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.analyzer = analyzer
        self.config = config
        self.pb = messages  # the generated module, so this file stays protobuf-agnostic
        self.clock = clock
        self.rng = random.Random()
        self.jobs: dict[str, Job] = {}
        # Unfinished jobs, the only ones each tick looks at (finished ones stay for queries).
        self.open_jobs: dict[str, Job] = {}
        self.tasks: dict[str, Task] = {}
        self.sessions: dict[str, Session] = {}
        self.known_agents: dict[str, tuple[AgentInfo, float]] = {}
        self.lost_at: dict[str, float] = {}
        self.first_seen: dict[str, float] = {}
        self.watchers: dict[str, set[asyncio.Queue[WatchEvent]]] = defaultdict(set)
        # Counters the Prometheus collector reads at scrape time.
        self.measurement_counts: Counter[tuple[str, str, str]] = Counter()
        self.duration_buckets: dict[tuple[str, str], list[int]] = {}
        self.duration_sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.results_dropped: Counter[str] = Counter()
        self.results_duplicate = 0
        self.results_not_analysed = 0
        # Tasks the agents could not run (failure class agent_*): per (region, reason) for
        # the metric, per agent for `vantage agents`; since this process started.
        self.agent_errors: Counter[tuple[str, str]] = Counter()
        self.agent_error_counts: dict[str, Counter[str]] = {}
        self.accepting = True
        self.started_at = clock()
        self._awaited_agents: set[str] = set()

    # ------------------------------------------------------------------ start-up

    def load(self) -> None:
        """Restore jobs, open tasks and known agents after a restart."""
        for job in self.store.load_jobs():
            self.jobs[job.job_id] = job
            if not job.state.finished:
                self.open_jobs[job.job_id] = job
        for task in self.store.load_open_tasks():
            if task.job_id in self.jobs:
                self.tasks[task.task_id] = task
        now = self.clock()
        for info, last_seen, first_seen in self.store.load_agents():
            self.known_agents[info.agent_id] = (info, last_seen)
            self.first_seen[info.agent_id] = first_seen
            if now - last_seen < 120:
                self._awaited_agents.add(info.agent_id)
            # An agent that held tasks before the restart gets the usual grace to come back.
            self.lost_at[info.agent_id] = now
        open_jobs = len(self.open_jobs)
        log.info("state_restored", jobs=len(self.jobs), open_jobs=open_jobs, open_tasks=len(self.tasks))

    async def start_canaries(self, spec: JobSpec | None) -> Job | None:
        """Run the canary job ``spec`` (coordinator/canary.py): keep the stored one when
        it matches, cancel any other, create it when missing. None: no canaries."""
        keep, stale = canary.reconcile(list(self.open_jobs.values()), spec)
        for job in stale:
            self.cancel_job(job.job_id)
        if keep is not None or spec is None:
            return keep
        now = self.clock()
        job = Job(
            job_id=uuid.uuid4().hex[:16], spec=spec, state=JobState.PENDING, created_at=now,
            next_round_at=now,
        )  # fmt: skip
        await self.store.write([job_op(job)])
        self.jobs[job.job_id] = job
        self.open_jobs[job.job_id] = job
        log.info("canary_job_started", job_id=job.job_id, canaries=list(spec.targets), every_s=spec.every_s)
        return job

    # ------------------------------------------------------------------ persistence

    def _persist(self, ops: list[Op]) -> None:
        """Queue writes now without waiting for the commit. The store's single writer
        keeps queue order, so a task's insert always lands before its later updates."""
        if ops:
            self.store.write_nowait(ops, self._write_failed)

    @staticmethod
    def _write_failed(error: BaseException, ops: int) -> None:
        log.error("store_write_failed", error=str(error), ops=ops)

    async def flush(self) -> None:
        """Wait until every write queued so far is committed (graceful shutdown)."""
        await self.store.write([BARRIER])

    # ------------------------------------------------------------------ agents

    def connected_agents(self) -> list[AgentInfo]:
        return [s.info for s in self.sessions.values()]

    def agent_load(self) -> dict[str, int]:
        load: Counter[str] = Counter()
        for task in self.tasks.values():
            if task.state is TaskState.ASSIGNED:
                load[task.agent_id] += 1
        return dict(load)

    def agent_connected(self, info: AgentInfo, peer: str, held_task_ids: Iterable[str]) -> Session:
        now = self.clock()
        old = self.sessions.get(info.agent_id)
        if old is not None:
            log.info("agent_replaced", agent_id=info.agent_id, old_session=old.session_id)
            old.close()
        session = Session(info=info, peer=peer, connected_at=now, last_seen=now, persisted_seen=now)
        self.sessions[info.agent_id] = session
        self.known_agents[info.agent_id] = (info, now)
        self.first_seen.setdefault(info.agent_id, now)
        self.lost_at.pop(info.agent_id, None)
        self._persist([agent_op(info, now, peer)])
        held = set(held_task_ids)
        requeued = []
        for task in self.tasks.values():
            if task.agent_id == info.agent_id and task.state is TaskState.ASSIGNED and task.task_id not in held:
                apply(task, TaskEvent.NOT_HELD, reason="agent no longer held the task")
                requeued.append(task)
        self._persist([task_state_op(t) for t in requeued])
        log.info(
            "agent_connected", agent_id=info.agent_id, region=info.region, peer=peer,
            session_id=session.session_id, held=len(held), requeued=len(requeued),
        )
        return session

    def agent_disconnected(self, session: Session, reason: str) -> None:
        if self.sessions.get(session.info.agent_id) is not session:
            return  # already replaced by a newer session
        del self.sessions[session.info.agent_id]
        now = self.clock()
        self.lost_at[session.info.agent_id] = now
        self.known_agents[session.info.agent_id] = (session.info, now)
        self._persist([agent_seen_op(session.info.agent_id, now)])
        log.warning(
            "agent_lost", agent_id=session.info.agent_id, region=session.info.region,
            session_id=session.session_id, reason=reason,
        )

    def heartbeat(self, session: Session, running: int, outbox: int) -> None:
        now = self.clock()
        session.last_seen = now
        session.running = running
        session.outbox = outbox
        # Kept on disk too (at most once a minute), so after a crash the start-up grace
        # knows which agents were connected just before it.
        if now - session.persisted_seen >= 60:
            session.persisted_seen = now
            self._persist([agent_seen_op(session.info.agent_id, now)])

    # ------------------------------------------------------------------ jobs

    async def submit_job(self, spec: JobSpec) -> Job:
        if not self.accepting:
            raise RuntimeError("coordinator is shutting down")
        now = self.clock()
        matched = validate_job(spec, self.connected_agents(), self.config.job_limits, now=now)
        job = Job(
            job_id=uuid.uuid4().hex[:16],
            spec=spec,
            state=JobState.PENDING,
            created_at=now,
            next_round_at=now,
        )
        per_round = len(scheduler.select_agents(matched, spec.selector, spec.kind)) * len(spec.targets)
        job.tasks_expected = scheduler.expected_tasks(spec, per_round, 0, 0)
        await self.store.write([job_op(job)])  # accepted means durable
        self.jobs[job.job_id] = job
        self.open_jobs[job.job_id] = job
        log.info(
            "job_accepted", job_id=job.job_id, kind=spec.kind, targets=len(spec.targets),
            agents=len(matched), every_s=spec.every_s, count=spec.count,
        )
        self.run_due(now)
        return job

    def cancel_job(self, job_id: str) -> Job:
        job = self.jobs[job_id]
        if job.state.finished:
            return job
        ops: list[Op] = []
        for task in self._open_tasks_of(job_id):
            if task.state is TaskState.DONE:
                continue  # its result is being committed right now: let it land
            was_assigned = task.state is TaskState.ASSIGNED
            apply(task, TaskEvent.CANCEL, reason="job cancelled")
            if was_assigned and (session := self.sessions.get(task.agent_id)):
                session.send(
                    self.pb.CoordinatorMessage(
                        cancel=self.pb.CancelTask(task_id=task.task_id, reason="job cancelled")
                    )
                )
            ops.append(task_state_op(task))
            del self.tasks[task.task_id]
        job_states.apply(job, JobEvent.CANCEL, now=self.clock(), reason="cancelled by request")
        self.open_jobs.pop(job_id, None)
        ops.append(job_state_op(job))
        self._persist(ops)
        log.info("job_cancelled", job_id=job_id)
        self._notify(job_id, WatchEvent(job_end=job))
        return job

    def _open_tasks_of(self, job_id: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.job_id == job_id]

    # ------------------------------------------------------------------ the tick

    def run_due(self, now: float) -> None:
        """One scheduling pass: rounds, dispatch, lost agents, deadlines, job ends."""
        ops: list[Op] = []
        if self._awaited_agents and now - self.started_at < self.config.startup_grace_s:
            self._awaited_agents -= set(self.sessions)
        else:
            self._awaited_agents.clear()
        for job in list(self.open_jobs.values()):
            if self._awaited_agents:
                break  # still in the start-up grace: agents are reconnecting
            if scheduler.round_is_due(job, now):
                ops.extend(self._create_round(job, now))
        ops.extend(self._expire_lost_agents(now))
        ops.extend(self._dispatch(now))
        ops.extend(self._finish_jobs(now))
        self._persist(ops)

    def _create_round(self, job: Job, now: float) -> list[Op]:
        spec = job.spec
        agents = scheduler.select_agents(
            self.connected_agents(), spec.selector, spec.kind, load=self.agent_load(), rng=self.rng
        )
        round_at = job.next_round_at
        round_no = job.rounds_done
        offsets = scheduler.start_offsets(len(agents) * len(spec.targets), spec.spread_s, self.rng)
        timeout = scheduler.task_timeout(spec)
        ops: list[Op] = []
        i = 0
        for agent in agents:
            for target in spec.targets:
                due = max(round_at, now) + offsets[i]
                i += 1
                task = Task(
                    # job, round, index, and a random tag in case a round is created
                    # again after a crash that lost it; a reassigned task keeps its id
                    task_id=f"{job.job_id}-{round_no}-{i - 1}-{self.rng.getrandbits(32):08x}",
                    job_id=job.job_id,
                    round=round_no,
                    target=target,
                    agent_id=agent.agent_id,
                    region=agent.region,
                    state=TaskState.PENDING,
                    due_at=due,
                    deadline=due + timeout,
                )
                self.tasks[task.task_id] = task
                ops.append(task_op(task))
        job.rounds_done += 1
        job.tasks_created += len(agents) * len(spec.targets)
        job_states.apply(job, JobEvent.ROUND, now=now)
        if not agents:
            job.reason = f"round {round_no + 1}: no connected agent matched the selector"
            log.warning("round_without_agents", job_id=job.job_id, round=round_no + 1)
        if spec.periodic:
            job.next_round_at = scheduler.next_round_at(job, now)
        job.tasks_expected = scheduler.expected_tasks(
            spec, len(agents) * len(spec.targets), job.rounds_done, job.tasks_created
        )
        ops.append(job_state_op(job))
        return ops

    def _expire_lost_agents(self, now: float) -> list[Op]:
        ops: list[Op] = []
        limit = self.config.heartbeat_interval_s * self.config.heartbeat_misses
        for session in list(self.sessions.values()):
            if now - session.last_seen > limit:
                session.close()
                self.agent_disconnected(session, f"no heartbeat for {limit:g}s")
        for task in self.tasks.values():
            if task.state is not TaskState.ASSIGNED or task.agent_id in self.sessions:
                continue
            lost = self.lost_at.get(task.agent_id, now)
            if now - lost >= self.config.reassign_after_s:
                apply(task, TaskEvent.AGENT_LOST, reason=f"agent {task.agent_id} lost")
                ops.append(task_state_op(task))
        return ops

    def _dispatch(self, now: float) -> list[Op]:
        ops: list[Op] = []
        load: dict[str, int] | None = None
        for task in list(self.tasks.values()):
            if task.state is TaskState.PENDING and now >= task.deadline:
                apply(task, TaskEvent.DEADLINE, reason=task.reason or "no agent before the deadline")
                ops.extend(self._task_failed(task))
                continue
            if task.state is TaskState.ASSIGNED and now >= task.deadline + self.config.reassign_after_s:
                # The agent times the task out itself at the deadline; this is the backstop
                # when its result never comes.
                apply(task, TaskEvent.DEADLINE, reason="no result by the deadline")
                ops.extend(self._task_failed(task))
                continue
            if task.state is not TaskState.PENDING or now < task.due_at:
                continue
            session = self.sessions.get(task.agent_id)
            if session is None:
                lost = self.lost_at.get(task.agent_id)
                if task.attempts == 0 and lost is not None and now - lost < self.config.reassign_after_s:
                    continue  # give its agent the grace period to come back
                job = self.jobs[task.job_id]
                if load is None:
                    load = self.agent_load()
                candidates = [
                    a for a in self.connected_agents()
                    if scheduler.agent_matches(a, job.spec.selector, job.spec.kind)
                ]
                replacement = scheduler.choose_replacement(candidates, task.region, task.agent_id, load)
                if replacement is None:
                    task.reason = "no matching agent connected"
                    continue
                log.info(
                    "task_reassigned", task_id=task.task_id, job_id=task.job_id,
                    from_agent=task.agent_id, agent_id=replacement.agent_id,
                )
                task.agent_id = replacement.agent_id
                task.region = replacement.region
                session = self.sessions[replacement.agent_id]
                load[replacement.agent_id] = load.get(replacement.agent_id, 0) + 1
            ops.append(self._send_assignment(task, session, now))
        return ops

    def _send_assignment(self, task: Task, session: Session, now: float) -> Op:
        job = self.jobs[task.job_id]
        apply(task, TaskEvent.DISPATCH)
        task.assigned_at = now
        task.attempts += 1
        session.send(
            self.pb.CoordinatorMessage(
                assign=self.pb.TaskAssignment(
                    task_id=task.task_id,
                    job_id=task.job_id,
                    kind=job.spec.kind,
                    target=task.target,
                    options=dict(job.spec.options),
                    not_before=task.due_at,
                    deadline=task.deadline,
                )
            )
        )
        return task_state_op(task)

    def _task_failed(self, task: Task) -> list[Op]:
        job = self.jobs[task.job_id]
        job.tasks_failed += 1
        self.tasks.pop(task.task_id, None)
        log.warning(
            "task_failed", task_id=task.task_id, job_id=task.job_id, agent_id=task.agent_id,
            reason=task.reason,
        )
        self._notify(task.job_id, WatchEvent(failed_task=task))
        return [task_state_op(task), job_state_op(job)]

    def _finish_jobs(self, now: float) -> list[Op]:
        ops: list[Op] = []
        busy = {t.job_id for t in self.tasks.values()}
        for job in list(self.open_jobs.values()):
            if job.job_id in busy or not scheduler.all_rounds_created(job, now):
                continue
            event = job_states.finished_event(job)
            why = (job.reason or "no task produced a result") if event is JobEvent.FAILED else ""
            job_states.apply(job, event, now=now, reason=why)
            job.tasks_expected = job.tasks_created
            del self.open_jobs[job.job_id]
            ops.append(job_state_op(job))
            log.info(
                "job_finished", job_id=job.job_id, state=job.state.value,
                done=job.tasks_done, failed=job.tasks_failed,
            )
            self._notify(job.job_id, WatchEvent(job_end=job))
        return ops

    # ------------------------------------------------------------------ results

    async def ingest(self, session: Session, results: list[TaskResultData]) -> IngestOutcome:
        """Store what ``session``'s agent may report; returns the task ids to ack.

        Every await that may be interrupted (the reader is cancelled when its session
        ends) comes before any state changes; the commit and what follows it run shielded,
        so a result is either stored, counted, observed and announced, or none of these.
        """
        agent_id = session.info.agent_id
        fresh: dict[str, TaskResultData] = {}
        for result in results:
            fresh.setdefault(result.task_id, result)
        unknown = [r for r in fresh.values() if r.task_id not in self.tasks]
        classified = (
            await asyncio.to_thread(self._classify_unknown, unknown, agent_id) if unknown else []
        )
        # From here on no await until the shielded commit: the checks below still hold.
        acked: list[str] = []
        duplicates = dropped = 0
        for result, is_duplicate, why in classified:
            acked.append(result.task_id)
            if is_duplicate:
                duplicates += 1
            else:
                dropped += 1
                self._drop(result, agent_id, why)
        accepted: list[tuple[TaskResultData, Task]] = []
        for result in fresh.values():
            task = self.tasks.get(result.task_id)
            if task is None:
                continue  # classified above (or finished by another batch meanwhile)
            if task.state is TaskState.DONE:
                duplicates += 1  # the same result is being committed from another batch
                acked.append(result.task_id)
            elif task.agent_id != agent_id or task.state not in (TaskState.ASSIGNED, TaskState.PENDING):
                dropped += 1
                self._drop(result, agent_id, "task is assigned to another agent")
                acked.append(result.task_id)
            else:
                accepted.append((result, task))
        self.results_duplicate += duplicates
        if accepted:
            # Marked done now, before any await, so a cancel or a racing batch sees it.
            before = [(task, task.state) for _, task in accepted]
            for _, task in accepted:
                apply(task, TaskEvent.RESULT)
            stored = await asyncio.shield(self._commit(accepted, before, session.info))
            acked.extend(r.task_id for r, _ in accepted if stored)
        return IngestOutcome(
            acked=tuple(acked), accepted=len(accepted), duplicates=duplicates, dropped=dropped
        )

    async def _commit(
        self,
        accepted: list[tuple[TaskResultData, Task]],
        before: list[tuple[Task, TaskState]],
        agent: AgentInfo,
    ) -> bool:
        """Store accepted results; only once they are committed do the tasks leave the open
        set, the job counters move and the analysis and watchers hear of them. On a failed
        write the tasks go back as they were and nothing is acked: the agent sends again."""
        now = self.clock()
        ops: list[Op] = [measurement_op(r, t.region, now) for r, t in accepted]
        ops.extend(task_state_op(t) for _, t in accepted)
        counts = Counter(t.job_id for _, t in accepted)
        for job_id, n in counts.items():
            job = self.jobs[job_id]
            job.tasks_done += n
            ops.append(job_state_op(job))
        try:
            await self.store.write(ops)
        except Exception as exc:
            for task, state in before:
                task.state = state
            for job_id, n in counts.items():
                self.jobs[job_id].tasks_done -= n
            log.error("results_not_stored", agent_id=agent.agent_id, error=str(exc), results=len(accepted))
            return False
        for result, task in accepted:
            self.tasks.pop(task.task_id, None)
            owner = self.jobs.get(task.job_id)
            is_canary = owner is not None and owner.spec.purpose == CANARY_PURPOSE
            self._observe(result, agent, task.target, canary=is_canary)
            self._notify(task.job_id, WatchEvent(result=result, region=task.region))
        return True

    def _classify_unknown(
        self, results: list[TaskResultData], agent_id: str
    ) -> list[tuple[TaskResultData, bool, str]]:
        out = []
        for result in results:
            if self.store.measurement_exists(result.task_id):
                out.append((result, True, "duplicate"))
                continue
            owner = self.store.task_owner(result.task_id)
            if owner is None:
                out.append((result, False, "unknown task"))
            elif owner[0] != agent_id:
                out.append((result, False, "task is assigned to another agent"))
            else:
                out.append((result, False, f"task already {owner[1]}"))
        return out

    def _drop(self, result: TaskResultData, agent_id: str, why: str) -> None:
        self.results_dropped[why] += 1
        log.warning(
            "result_dropped", agent_id=agent_id, task_id=result.task_id, job_id=result.job_id,
            reason=why,
        )

    def _observe(
        self, result: TaskResultData, agent: AgentInfo, target: str, *, canary: bool = False
    ) -> None:
        r = result.result
        outcome = r.failure or "ok"
        self.measurement_counts[(agent.region, r.kind, outcome)] += 1
        if r.failure in AGENT_ERRORS:
            reason = r.failure.removeprefix("agent_")
            self.agent_errors[(agent.region, reason)] += 1
            self.agent_error_counts.setdefault(agent.agent_id, Counter())[reason] += 1
        key = (agent.region, r.kind)
        buckets = self.duration_buckets.setdefault(key, [0] * (len(DURATION_BUCKETS) + 1))
        for i, bound in enumerate(DURATION_BUCKETS):
            if r.duration_s <= bound:
                buckets[i] += 1
                break
        else:
            buckets[-1] += 1
        self.duration_sums[key] += r.duration_s
        try:
            self.analyzer.add(
                measurement_from_result(result, agent, target, self.config.group_by, canary=canary)
            )
        except ValueError as exc:
            # Stored and acked all the same: a result the analysis cannot read must not
            # stop ingestion. Counted and logged so it is seen.
            self.results_not_analysed += 1
            log.warning("result_not_analysable", task_id=result.task_id, error=str(exc))

    # ------------------------------------------------------------------ watchers

    def watch(self, job_id: str) -> asyncio.Queue[WatchEvent]:
        q: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self.watchers[job_id].add(q)
        return q

    def unwatch(self, job_id: str, q: asyncio.Queue[WatchEvent]) -> None:
        queues = self.watchers.get(job_id)
        if queues is None:
            return
        queues.discard(q)
        if not queues:
            del self.watchers[job_id]

    def _notify(self, job_id: str, event: WatchEvent) -> None:
        for q in list(self.watchers.get(job_id, ())):
            if q.qsize() >= MAX_WATCH_BACKLOG:
                self.unwatch(job_id, q)
                q.put_nowait(WatchEvent(overflow=True))
            else:
                q.put_nowait(event)


def measurement_from_result(
    result: TaskResultData, agent: AgentInfo, target: str, group_by: str, *, canary: bool = False
) -> Measurement:
    """The analysis sees the target as the job named it, so metric labels match the job.
    A throughput job's control is read whether or not the target failed: it is what
    shows the agent reaching the outside world (coordinator/analysis/health.py)."""
    r = result.result
    data = r.data
    throughput = None
    control = None
    control_failure = None
    if r.kind == "throughput":
        bps = data.get("bytes_per_second")
        if not r.failure:
            throughput = float(bps) if isinstance(bps, int | float) else None
        ctl = data.get("control")
        if isinstance(ctl, dict):
            failure = ctl.get("failure")
            cbps = ctl.get("bytes_per_second")
            if failure:
                known = isinstance(failure, str) and failure in FAILURES
                control_failure = failure if known else "unknown_failure"
            elif isinstance(cbps, int | float) and cbps > 0:
                control = float(cbps)
    group = str(agent.asn) if group_by == "asn" else agent.region
    return Measurement(
        at=result.finished_at or time.time(),
        group=group,
        agent_id=agent.agent_id,
        target=target,
        kind=r.kind,
        failure=r.failure or None,
        duration_s=r.duration_s,
        throughput_bps=throughput,
        control_bps=control,
        country=agent.country,
        control_failure=control_failure,
        role="canary" if canary else "test",
    )
