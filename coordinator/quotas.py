"""An API token's quotas: how many of its jobs may run at once, how many tasks its jobs
may create in an hour, and how many bytes their probes may move in an hour.

A job's **hourly bytes** are its hourly cost (below) times the most one of its tasks may
move (``task_bytes``: a throughput or http task's ``max_bytes``, counted again for a
control download and a trigger check; 0 for kinds without a body). Counting the ceiling,
not what was moved, makes the quota a promise at submit time: a token allowed 4 tasks an
hour once made one agent upload 419 MB in 31 s, and a job multiplies that by every agent
it selects. They are counted over the same jobs and the same hour as the tasks.

A job's **hourly cost** is the tasks it creates in an hour: a one-off job its tasks (all
matched agents times targets); a periodic job its tasks per round times the rounds it
runs in an hour (at most its ``count``), at the largest round it has had (a job for every
agent of a region grows as agents join). A job counts against its token's hourly quota
while it runs and for an hour after it ended: so a periodic job counts its rate for as
long as it runs and the hour after, and a one-off job its tasks for about the hour it
was made in. That bounds the tasks a token's jobs create in any hour by its quota (but
for rounds that grew after admission, which count from then on), and says exactly when
room frees up: an hour after a job ended, or when a running job ends or is cancelled.

The quotas are checked when a job is submitted, against the jobs this coordinator holds
(restored from the store after a restart or a takeover: each job keeps its owner and
cost). The bootstrap token and loopback callers without a token have no quotas.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from coordinator.model import ApiToken, Job, JobSpec

HOUR_S = 3600.0


class QuotaExceeded(Exception):
    """A submit over one of the token's quotas; the message names it and when it frees up."""


def hourly_cost(spec: JobSpec, per_round: int) -> int:
    if not spec.periodic:
        return per_round
    rounds = math.ceil(HOUR_S / spec.every_s)
    if spec.rounds is not None:
        rounds = min(rounds, spec.rounds)
    return per_round * rounds


def task_bytes(spec: JobSpec) -> int:
    """The most bytes one task of ``spec`` may move (see the module's doc)."""
    if spec.kind not in ("throughput", "http") or not spec.targets:
        return 0
    from common.specs import parse_spec
    from common.specs.base import Limits, bytes_at_most

    try:
        parsed = parse_spec(spec.kind, spec.targets[0], spec.options, Limits(allow_private_targets=True))
    except ValueError:
        return 0  # validate_job refused it already
    return bytes_at_most(parsed)


def hourly_bytes(job: Job) -> int:
    return job.hourly_cost * task_bytes(job.spec)


def _when(at: float, now: float) -> str:
    stamp = dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    minutes = max(1, math.ceil((at - now) / 60))
    return f"{stamp} (in {minutes} min)"


def _ended(job: Job) -> float:
    return max(job.created_at, job.finished_at)


def check(token: ApiToken, jobs: Iterable[Job], cost: int, now: float, task_bytes_of: int = 0) -> None:
    """Raise QuotaExceeded when a new job of ``cost`` tasks an hour, each moving at most
    ``task_bytes_of`` bytes, would take ``token`` over a quota, given every job the
    coordinator holds."""
    mine = [j for j in jobs if j.owner == token.name]
    running = [j for j in mine if not j.state.finished]
    if token.max_active_jobs and len(running) >= token.max_active_jobs:
        raise QuotaExceeded(
            f"max_active_jobs: token {token.name!r} has {len(running)} running jobs, its quota is "
            f"{token.max_active_jobs}; room frees up when one ends or is cancelled (vantage cancel JOB_ID)"
        )
    _check_bytes(token, mine, cost, now, task_bytes_of)
    limit = token.max_tasks_per_hour
    if not limit:
        return
    if cost > limit:
        raise QuotaExceeded(
            f"max_tasks_per_hour: this job alone creates {cost} tasks an hour, over token "
            f"{token.name!r}'s quota of {limit}; submit fewer targets, rounds or agents"
        )
    counted = [j for j in mine if not j.state.finished or _ended(j) > now - HOUR_S]
    used = sum(j.hourly_cost for j in counted)
    if used + cost <= limit:
        return
    need = used + cost - limit
    freed = 0
    for j in sorted((j for j in counted if j.state.finished), key=_ended):
        freed += j.hourly_cost
        if freed >= need:
            frees = f"enough frees up at {_when(_ended(j) + HOUR_S, now)}"
            break
    else:
        frees = "room frees up when its running jobs end or are cancelled"
    raise QuotaExceeded(
        f"max_tasks_per_hour: token {token.name!r} has {used} of its {limit} tasks an hour in use "
        f"and this job needs {cost}; {frees}"
    )


def _check_bytes(token: ApiToken, mine: list[Job], cost: int, now: float, per_task: int) -> None:
    limit = token.max_bytes_per_hour
    if not limit or not per_task:
        return
    wanted = cost * per_task
    if wanted > limit:
        raise QuotaExceeded(
            f"max_bytes_per_hour: this job alone may move {wanted} bytes an hour ({cost} tasks of at most "
            f"{per_task} bytes), over token {token.name!r}'s quota of {limit}; lower max_bytes or submit "
            "fewer targets, rounds or agents"
        )
    counted = [j for j in mine if not j.state.finished or _ended(j) > now - HOUR_S]
    used = sum(hourly_bytes(j) for j in counted)
    if used + wanted > limit:
        raise QuotaExceeded(
            f"max_bytes_per_hour: token {token.name!r} has {used} of its {limit} bytes an hour in use "
            f"and this job may move {wanted}; room frees up an hour after its jobs end, or when "
            "they are cancelled"
        )
