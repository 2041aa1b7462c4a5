"""Start-up: what a coordinator reads back from the store before it serves, and its
canary job.

Jobs, their open tasks and every known agent come back as they were. The analysis
window is refilled from the stored results of the last window (plus the health horizon
and the reassignment grace), judged where each was measured (its place; rows from before
results carried one take the agent's stored facts) and with each job's purpose, so a restart, or a rolling upgrade of a fleet, does not blank any verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from coordinator import canary
from coordinator.model import CANARY_PURPOSE, AgentInfo, Job, JobSpec, TaskResultData
from coordinator.store import PutJob

if TYPE_CHECKING:
    from coordinator.core import Coordinator

log = structlog.get_logger("vantage.coordinator")

# At most this many stored measurements are read back into the analysis at start-up:
# far more than the window holds (its caps: targets x groups x agents x 3 samples).
MAX_REFILL = 200_000
# The coordinator already listens while it refills (coordinator/server.py
# ``_load_then_serve``): it lets the event loop run after this many rows.
REFILL_CHUNK = 1_000


async def restore(
    core: Coordinator, decode: Callable[[bytes], TaskResultData] | None
) -> tuple[set[str], int]:
    """Returns the agents the start-up grace waits for, and how many results refilled
    the analysis (0 without ``decode``)."""
    store = core.store
    core.book.restore(await store.load_jobs(), await store.load_open_tasks())
    now = core.clock()
    awaited = core.registry.restore(await store.load_agents(), now)
    refilled = await refill(core, decode, now) if decode is not None else 0
    log.info(
        "state_restored", jobs=len(core.book.jobs), open_jobs=len(core.book.open_jobs),
        open_tasks=len(core.book.tasks), agents=len(core.registry), refilled=refilled,
    )  # fmt: skip
    return awaited, refilled


async def refill(core: Coordinator, decode: Callable[[bytes], TaskResultData], now: float) -> int:
    cfg = core.analyzer.config
    since = now - max(cfg.window_s, cfg.health_horizon_s) - core.config.reassign_after_s
    n = 0
    for i, row in enumerate(await core.store.recent_results(since, limit=MAX_REFILL)):
        if i % REFILL_CHUNK == REFILL_CHUNK - 1:
            await asyncio.sleep(0)  # the health service and the connecting agents are served
        try:
            result = decode(row.raw)
        except ValueError:
            continue  # it was counted as not analysable when it first arrived
        agent = core.registry.info(row.agent_id) or AgentInfo(agent_id=row.agent_id, region=row.region)
        if result.region:  # judged where it was measured, not where the agent is now
            agent = replace(agent, region=result.region, country=result.country, asn=result.asn)
        job = core.book.jobs.get(row.job_id)
        is_canary = job is not None and job.spec.purpose == CANARY_PURPOSE
        core.ingest_results.analyse(result, agent, row.target, canary=is_canary, owner=job.owner if job is not None else "")
        n += 1
    return n


async def start_canaries(core: Coordinator, spec: JobSpec | None) -> Job | None:
    """Run the canary job ``spec`` (coordinator/canary.py): keep the stored one when it
    matches, cancel any other, create it when missing. None: no canaries."""
    keep, stale = canary.reconcile(list(core.book.open_jobs.values()), spec)
    for job in stale:
        core.cancel_job(job.job_id)
    if keep is not None or spec is None:
        return keep
    job = core.book.new_job(spec, core.clock())
    await core.store.write([PutJob.of(job)])
    core.book.add(job)
    log.info("canary_job_started", job_id=job.job_id, canaries=list(spec.targets), every_s=spec.every_s)
    return job
