"""The coordinator's canary job: a light periodic probe of the operator's ``--canary``
URLs from every agent, so the analysis knows whether an agent reaches the outside world
(coordinator/analysis/health.py). A failure of another target counts against it only
when the same agent was seen reaching a canary (or a control) around it.

What a canary should be: a small page on a site that no censor in your regions blocks
and that is not the target of any verdict (your own server, a large CDN's status page).
Give two or more: one that happens to be blocked in a region does not silence the
agents there as long as another one works.

The job is an ordinary stored job with ``purpose`` "canary": it runs on every agent that
can run http probes, each round spread over half the interval, and no API caller can
submit one. At start-up the coordinator keeps the open canary job whose spec matches the
flags and cancels any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from common.specs import Limits, SpecError, parse_spec
from coordinator.model import CANARY_PURPOSE, Job, JobSpec

DEFAULT_EVERY_S = 10.0
MAX_CANARIES = 8
# The http probe's own timeout (seconds), at most half the interval: a canary is light.
CANARY_TIMEOUT_S = 5.0


class CanaryError(ValueError):
    """A --canary setting the coordinator cannot use; the message names it."""


def canary_spec(urls: Sequence[str], every_s: float = DEFAULT_EVERY_S) -> JobSpec | None:
    """The canary job for ``urls`` (None when there are none). Raises CanaryError naming
    --canary or --canary-every."""
    if not urls:
        return None
    if len(urls) > MAX_CANARIES:
        raise CanaryError(f"--canary: at most {MAX_CANARIES} canaries, got {len(urls)}")
    if len(set(urls)) != len(urls):
        raise CanaryError("--canary: a URL is given twice")
    if not every_s >= 5.0 or every_s > 3600:
        raise CanaryError(f"--canary-every: must be between 5s and 1h, got {every_s:g}s")
    options = {"timeout": f"{min(CANARY_TIMEOUT_S, every_s / 2):g}"}
    lenient = Limits(allow_private_targets=True)  # each agent applies its own policy
    for url in urls:
        try:
            parse_spec("http", url, options, lenient)
        except SpecError as exc:
            raise CanaryError(f"--canary: {url!r}: {exc.reason}") from None
    return JobSpec(
        kind="http",
        targets=tuple(urls),
        options=options,
        every_s=every_s,
        spread_s=every_s / 2,
        timeout_s=every_s,
        purpose=CANARY_PURPOSE,
    )


def reconcile(open_jobs: Iterable[Job], wanted: JobSpec | None) -> tuple[Job | None, list[Job]]:
    """Of the open canary jobs, the one to keep (its spec is ``wanted``) and those to
    cancel (every other one)."""
    keep: Job | None = None
    cancel: list[Job] = []
    for job in open_jobs:
        if job.spec.purpose != CANARY_PURPOSE:
            continue
        if keep is None and wanted is not None and job.spec == wanted:
            keep = job
        else:
            cancel.append(job)
    return keep, cancel
