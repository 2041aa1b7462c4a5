"""What the coordinator vouches for in a result: the fields it knows itself, and times it
can believe.

An agent may be seized or copied, so its results are claims. Of a result the coordinator
keeps only what the agent alone can know (what the probe measured) and sets the rest
itself:

- **Job, agent, target, kind and place** come from the task the result answers and from
  the session that carried it, never from the agent's message: a result cannot land in
  another job, speak for another agent, rename what was measured or claim to have been
  measured elsewhere. The place (region, country, ASN) is the agent's as the coordinator
  knows it when the result arrives: its enrolment, or its hello when not enrolled.
- **Times are clamped.** ``finished_at`` is at most the time the coordinator received the
  result: an agent's clock that runs ahead (or lies) cannot date a sample into the future
  and keep it in the analysis window for ever. Neither time may be earlier than the task's
  due time less :data:`SKEW_S` (an agent's clock may run that far behind before its times
  are pulled forward), and ``started_at`` is at most ``finished_at``. ``duration_s`` is at
  most :data:`MAX_DURATION_S`.
- **Numbers must be numbers.** A time or duration that is not finite, or negative, makes
  the result refused (:class:`Refused`); so does a number anywhere in the probe's data
  that is not finite or is larger in magnitude than :data:`MAX_NUMBER`, a physical
  ceiling (checked where the data is decoded, ``coordinator/convert.py``). A refused
  result is acked (the agent must not resend it for ever), counted under a fixed reason in
  ``vantage_results_dropped_total`` and under the agent in ``vantage agents`` (its
  ``errors``, as ``refused: <reason>``), and its task fails with the reason; the session goes on.
- **Failure classes are a closed set.** A failure string outside ``common.failures`` is
  stored as ``unknown_failure`` with the agent's string quoted (bounded) in the detail, and
  counted under the outcome ``invalid``: an agent never picks a metric label.
- **Sizes are bounded**: the detail at :data:`MAX_DETAIL` characters, and (at the
  servicer) :data:`MAX_BATCH` results per batch and :data:`MAX_RESULT_BYTES` per result.

Pure: no protobuf here; ``coordinator/convert.py`` re-encodes the stored bytes from the
vouched fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from common.failures import FAILURES, UNKNOWN_FAILURE
from coordinator.model import AgentInfo, ProbeResultData, Task, TaskResultData

#: How far behind the coordinator an agent's clock may be before its times are pulled
#: forward to the task's due time less this.
SKEW_S = 60.0
#: The longest duration a probe may report (the longest task timeout is 600 s).
MAX_DURATION_S = 3600.0
#: The largest magnitude of any number in a probe's data: 1e12 bytes/s is 8 Tbit/s, past
#: any link an agent has; seconds, ratios and losses are far below it. An agent reporting
#: 1e308 bytes/s against a control of 1e-10 once overflowed the analysis' arithmetic.
MAX_NUMBER = 1e12
#: Characters of failure detail kept.
MAX_DETAIL = 1024
#: Results in one ResultBatch; the rest of a longer batch is not acked (the agent, which
#: sends at most 200, resends them). Checked by the servicer.
MAX_BATCH = 1000
#: Bytes of one serialized result (a throughput result with its series is a few kB).
MAX_RESULT_BYTES = 256 * 1024
#: The outcome label of a result whose failure class is not one of the closed set.
INVALID = "invalid"


class Refused(ValueError):
    """A result the coordinator does not store. ``reason`` is a fixed string (a metric
    label value); ``detail`` says what was wrong, for the log and the task's reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


#: The fixed reasons of :class:`Refused`.
NOT_A_NUMBER = "result has a bad number"
WRONG_KIND = "result is of another kind than its task"
TOO_LARGE = "result too large"


def vouched(
    result: TaskResultData,
    task: Task,
    *,
    kind: str,
    agent_id: str,
    received_at: float,
    place: AgentInfo | None = None,
    seal: Callable[[TaskResultData], bytes] | None = None,
) -> TaskResultData:
    """``result`` with the fields the coordinator knows set from ``task``, ``kind``,
    ``agent_id`` and ``place`` (the session's agent: region, country and ASN), its times
    clamped, ``invalid_failure`` set when its failure class was not
    one of the closed set, and (with ``seal``) its stored bytes re-encoded from these.
    Raises :class:`Refused` for a result that cannot be stored."""
    r = result.result
    for name, value in (
        ("started_at", result.started_at),
        ("finished_at", result.finished_at),
        ("duration_s", r.duration_s),
    ):
        if not math.isfinite(value):
            raise Refused(NOT_A_NUMBER, f"{name} is not a finite number")
        if value < 0:
            raise Refused(NOT_A_NUMBER, f"{name} is negative")
    if r.kind != kind:
        raise Refused(WRONG_KIND, f"the task is {kind}, the result says {r.kind[:32]!r}")
    earliest = task.due_at - SKEW_S
    finished = min(max(result.finished_at, earliest), received_at)
    started = min(max(result.started_at, earliest), finished)
    failure, detail = r.failure, r.failure_detail
    invalid = bool(failure) and failure not in FAILURES
    if invalid:
        detail = f"the agent reported an unknown failure class {failure[:64]!r}: {detail}"
        failure = UNKNOWN_FAILURE
    probe = ProbeResultData(
        kind=kind,
        target=task.target,
        failure=failure,
        failure_detail=detail[:MAX_DETAIL],
        duration_s=min(r.duration_s, MAX_DURATION_S),
        data=r.data,
    )
    region, country, asn = (place.region, place.country, place.asn) if place else (task.region, "", 0)
    fixed = TaskResultData(
        task_id=result.task_id, job_id=task.job_id, agent_id=agent_id, started_at=started,
        finished_at=finished, result=probe, raw=result.raw, invalid_failure=invalid,
        region=region, country=country, asn=asn,
    )  # fmt: skip
    if seal is None:
        return fixed
    return replace(fixed, raw=seal(fixed))
