"""Start-up: what a coordinator reads back from the store before it serves.

Jobs, their open tasks and every known agent come back as they were. The analysis
window is refilled from the stored results of the last window (plus the health horizon
and the reassignment grace), judged with the agents' stored facts and each job's
purpose, so a restart, or a rolling upgrade of a fleet, does not blank any verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from coordinator.model import CANARY_PURPOSE, AgentInfo, TaskResultData

if TYPE_CHECKING:
    from coordinator.core import Coordinator

log = structlog.get_logger("vantage.coordinator")

# At most this many stored measurements are read back into the analysis at start-up:
# far more than the window holds (its caps: targets x groups x agents x 3 samples).
MAX_REFILL = 200_000


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
    for row in await core.store.recent_results(since, limit=MAX_REFILL):
        try:
            result = decode(row.raw)
        except ValueError:
            continue  # it was counted as not analysable when it first arrived
        agent = core.registry.info(row.agent_id) or AgentInfo(agent_id=row.agent_id, region=row.region)
        job = core.book.jobs.get(row.job_id)
        is_canary = job is not None and job.spec.purpose == CANARY_PURPOSE
        core.ingest_results.analyse(result, agent, row.target, canary=is_canary)
        n += 1
    return n
