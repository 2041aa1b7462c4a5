"""Ingest: results from an agent, checked, stored once by task id, acked only once
committed, then counted, fed to the analysis and announced to watchers.

What of a result the coordinator takes from the agent and what it sets itself is
``coordinator/vouch.py``'s rule; a refused result is acked, counted and fails its task."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from common.failures import GENERIC_TIMEOUT, HOST_UNREACHABLE
from coordinator.analysis import Analyzer, blockpage
from coordinator.analysis.paths import PATH_KINDS, beyond_first_hop
from coordinator.lifecycle import Book
from coordinator.model import CANARY_PURPOSE, AgentInfo, Task, TaskResultData, TaskState
from coordinator.observe import Counters, measurement_from_result
from coordinator.registry import Registry, Session
from coordinator.store import Change, JobProgress, PutResult, Store, TaskLookup, TaskProgress
from coordinator.tasks import TaskEvent, apply
from coordinator.vouch import Refused, vouched
from coordinator.watch import Watchers, WatchEvent

log = structlog.get_logger("vantage.coordinator")


@dataclass(frozen=True, kw_only=True)
class IngestOutcome:
    acked: tuple[str, ...]
    accepted: int
    duplicates: int
    dropped: int


class Ingest:
    def __init__(
        self,
        *,
        book: Book,
        store: Store,
        registry: Registry,
        counters: Counters,
        analyzer: Analyzer,
        watchers: Watchers,
        clock: Callable[[], float],
        group_by: str,
        on_done: Callable[[str], None],
        seal: Callable[[TaskResultData], bytes],
        block_pages: Sequence[blockpage.Fingerprint] = (),
    ) -> None:
        self.book = book
        self.store = store
        self.registry = registry
        self.counters = counters
        self.analyzer = analyzer
        self.watchers = watchers
        self.clock = clock
        self.group_by = group_by
        self.on_done = on_done  # called with the agent id once its results are committed
        self.seal = seal  # the stored bytes of a vouched result (coordinator/convert.py)
        self.block_pages = tuple(block_pages)
        # Task ids whose results are being committed, with the commit's outcome to come:
        # a second copy of one (another batch, the same agent's or a replaced session's)
        # is acked only once that commit succeeded.
        self._committing: dict[str, asyncio.Future[bool]] = {}

    async def ingest(
        self,
        session: Session,
        results: list[TaskResultData],
        refused: Sequence[tuple[str, Refused]] = (),
    ) -> IngestOutcome:
        """Store what ``session``'s agent may report; returns the task ids to ack.

        ``refused`` are results (by task id) that could not even be read; they, and
        results that fail ``vouch.vouched``, are acked, counted and fail their task when
        it is this agent's.

        Every await that may be interrupted (the reader is cancelled when its session
        ends) comes before any state changes; the commit and what follows it run shielded,
        so a result is either stored, counted, observed and announced, or none of these.
        """
        agent_id = session.info.agent_id
        tasks = self.book.tasks
        fresh: dict[str, TaskResultData] = {}
        for result in results:
            fresh.setdefault(result.task_id, result)
        unknown = [tid for tid in fresh if tid not in tasks]
        looked_up = await self.store.lookup_tasks(unknown) if unknown else []
        # From here on no await until the shielded commit: the checks below still hold.
        acked: list[str] = []
        duplicates = dropped = 0
        for task_id, why in refused:
            if task_id not in fresh:
                self._refuse(task_id, agent_id, why)
                acked.append(task_id)
                dropped += 1
        for lookup in looked_up:
            acked.append(lookup.task_id)
            if lookup.result_stored:
                duplicates += 1
            else:
                dropped += 1
                self._drop(fresh[lookup.task_id], agent_id, _why_unknown(lookup, agent_id))
        accepted: list[tuple[TaskResultData, Task]] = []
        # copies of results another batch is committing: acked once that commit succeeded
        awaited: list[tuple[str, asyncio.Future[bool]]] = []
        for result in fresh.values():
            task = tasks.get(result.task_id)
            if task is None:
                continue  # looked up above (or finished by another batch meanwhile)
            if task.state is TaskState.DONE:
                pending = self._committing.get(result.task_id)
                if pending is not None:
                    awaited.append((result.task_id, pending))
                else:
                    duplicates += 1
                    acked.append(result.task_id)
            elif task.agent_id != agent_id or task.state not in (TaskState.ASSIGNED, TaskState.PENDING):
                dropped += 1
                self._drop(result, agent_id, "task is assigned to another agent")
                acked.append(result.task_id)
            else:
                try:
                    accepted.append((self._vouched(result, task, session.info), task))
                except Refused as why:
                    dropped += 1
                    self._refuse(result.task_id, agent_id, why)
                    acked.append(result.task_id)
        self.counters.duplicate += duplicates
        if accepted:
            # Marked done now, before any await, so a cancel or a racing batch sees it.
            before = [(task, task.state) for _, task in accepted]
            for _, task in accepted:
                apply(task, TaskEvent.RESULT)
            outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            for r, _ in accepted:
                self._committing[r.task_id] = outcome
            stored = await asyncio.shield(self._commit_then_tell(accepted, before, session.info, outcome))
            acked.extend(r.task_id for r, _ in accepted if stored)
        for task_id, pending in awaited:
            if await asyncio.shield(pending):  # stored by the other batch: a duplicate
                self.counters.duplicate += 1
                duplicates += 1
                acked.append(task_id)
        return IngestOutcome(
            acked=tuple(acked), accepted=len(accepted), duplicates=duplicates, dropped=dropped
        )

    async def _commit_then_tell(
        self,
        accepted: list[tuple[TaskResultData, Task]],
        before: list[tuple[Task, TaskState]],
        agent: AgentInfo,
        outcome: asyncio.Future[bool],
    ) -> bool:
        stored = False
        try:
            stored = await self._commit(accepted, before, agent)
            return stored
        finally:
            for r, _ in accepted:
                if self._committing.get(r.task_id) is outcome:
                    del self._committing[r.task_id]
            outcome.set_result(stored)

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
        jobs = self.book.jobs
        changes: list[Change] = [PutResult(r, r.region, now) for r, _ in accepted]
        changes.extend(TaskProgress.of(t) for _, t in accepted)
        counts = Counter(t.job_id for _, t in accepted)
        for job_id, n in counts.items():
            jobs[job_id].tasks_done += n
            changes.append(JobProgress.of(jobs[job_id]))
        try:
            await self.store.write(changes)
        except Exception as exc:
            for task, state in before:
                task.state = state
            for job_id, n in counts.items():
                jobs[job_id].tasks_done -= n
            log.error("results_not_stored", agent_id=agent.agent_id, error=str(exc), results=len(accepted))
            return False
        for result, task in accepted:
            self.book.tasks.pop(task.task_id, None)
            owner = jobs.get(task.job_id)
            is_canary = owner is not None and owner.spec.purpose == CANARY_PURPOSE
            self.observe(result, agent, task.target, canary=is_canary, owner=owner.owner if owner is not None else "")
            self.watchers.notify(task.job_id, WatchEvent(result=result, region=task.region))
        self.on_done(agent.agent_id)
        return True

    def _vouched(self, result: TaskResultData, task: Task, agent: AgentInfo) -> TaskResultData:
        job = self.book.jobs[task.job_id]
        return vouched(
            result, task, kind=job.spec.kind, agent_id=agent.agent_id, received_at=self.clock(),
            place=agent, seal=self.seal,
        )  # fmt: skip

    def _refuse(self, task_id: str, agent_id: str, why: Refused) -> None:
        """Count a result that is not stored; its task, when it is this agent's open task,
        fails with the reason (the agent will not send another)."""
        self.counters.dropped[why.reason] += 1
        self.registry.count_error(agent_id, f"refused: {why.reason}")
        log.warning("result_refused", agent_id=agent_id, task_id=task_id, reason=why.reason, detail=why.detail)
        task = self.book.tasks.get(task_id)
        if task is None or task.agent_id != agent_id:
            return
        if task.state not in (TaskState.ASSIGNED, TaskState.PENDING):
            return
        changes = self.book.fail_task(task, f"result refused: {why.detail}")
        self.store.write_nowait(changes, _write_failed)
        self.watchers.notify(task.job_id, WatchEvent(failed_task=task))

    def _drop(self, result: TaskResultData, agent_id: str, why: str) -> None:
        self.counters.dropped[why] += 1
        log.warning(
            "result_dropped", agent_id=agent_id, task_id=result.task_id, reason=why,
        )  # fmt: skip

    def observe(
        self, result: TaskResultData, agent: AgentInfo, target: str, *, canary: bool = False, owner: str = ""
    ) -> None:
        """Count a stored result and give it to the analysis (``owner``: the API token
        whose job it answers, for the analysis' fair share of targets)."""
        reason = self.counters.count(result, agent)
        if reason is not None:
            self.registry.count_error(agent.agent_id, reason)
        self.analyse(result, agent, target, canary=canary, owner=owner)

    def analyse(
        self, result: TaskResultData, agent: AgentInfo, target: str, *, canary: bool = False, owner: str = ""
    ) -> None:
        r = result.result
        if r.kind in PATH_KINDS:
            # Path evidence: loss, RTT and hops per region (coordinator/analysis/paths.py).
            group = str(agent.asn) if self.group_by == "asn" else agent.region
            at = result.finished_at or time.time()
            if not self.analyzer.paths.add(group, target, r.kind, at, r.data):
                self.counters.not_analysed += 1
                return
            beyond = beyond_first_hop(r.data) if r.kind == "traceroute" else None
            if beyond is not None and (r.failure or "") in TRACE_RAN:
                # Agent health's Paths rule: a trace that died at the agent's own first
                # hop says its network is down (coordinator/analysis/health.py).
                self.analyzer.health.add_trace(agent.agent_id, group, target, at, beyond)
            return
        try:
            self.analyzer.add(measurement_from_result(
                result, agent, target, self.group_by, canary=canary, fingerprints=self.block_pages,
            ), owner=owner)  # fmt: skip
        except ValueError as exc:
            # Stored and acked all the same: a result the analysis cannot read must not
            # stop ingestion. Counted and logged so it is seen.
            self.counters.not_analysed += 1
            log.warning("result_not_analysable", task_id=result.task_id, error=str(exc))


# The outcomes of a traceroute that sent its probes: reached, or not (a timeout, an
# unreachable). Anything else (a name that did not resolve, the target policy, an agent
# error) never probed the path and says nothing of the agent's network.
TRACE_RAN = frozenset({"", GENERIC_TIMEOUT, HOST_UNREACHABLE})


def _write_failed(error: BaseException, changes: int) -> None:
    log.error("store_write_failed", error=str(error), changes=changes)


def _why_unknown(lookup: TaskLookup, agent_id: str) -> str:
    if lookup.agent_id is None or lookup.state is None:
        return "unknown task"
    if lookup.agent_id != agent_id:
        return "task is assigned to another agent"
    return f"task already {lookup.state.value}"
