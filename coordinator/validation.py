"""Every field of a submitted job is checked here; the first bad one is named.

The job service turns ``InvalidJob`` into gRPC INVALID_ARGUMENT with the message
``"<field>: <reason>"``. Probe options and targets are parsed by
``common.specs.parse_spec`` (the same code the agent runs), so the coordinator refuses
what no agent could run. The target policy (no private addresses) is the agent's to apply: it is the
agent's network that would be probed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from common.ids import COUNTRY_RE, REGION_RE, is_country, is_region, labels_problem
from common.specs import KINDS, Limits, SpecError, parse_spec
from coordinator.model import AgentInfo, JobSpec
from coordinator.scheduler import agent_matches

# The rules are common.ids'; coordinator/server.py checks an agent's hello with these
# names from here (until it imports them from common.ids itself).
__all__ = [
    "COUNTRY_RE",
    "MAX_SPREAD_S",
    "MAX_TIMEOUT_S",
    "REGION_RE",
    "InvalidJob",
    "JobLimits",
    "check_task_count",
    "validate_job",
]

MAX_TIMEOUT_S = 600.0
MAX_SPREAD_S = 3600.0
#: Rounds of one periodic job.
MAX_COUNT = 100_000
#: How far ahead ``until`` may be (a year and a day).
MAX_HORIZON_S = 366 * 86400.0
#: Characters of one option value (a URL, a list of names); every assignment copies them.
MAX_OPTION_VALUE = 2048
#: Characters of a target, and of an option name.
MAX_TARGET = 2048
MAX_OPTION_NAME = 64
#: The whole spec: targets and options, as characters.
MAX_SPEC_CHARS = 256 * 1024
#: Regions, countries, ASNs or agent ids in a selector.
MAX_SELECTOR_ITEMS = 1000
#: A job's task count must fit the wire's uint32 (Job.tasks_expected).
MAX_TASKS_PER_JOB = 2**32 - 1


@dataclass(frozen=True, kw_only=True)
class JobLimits:
    min_interval_s: float = 5.0
    max_targets: int = 1000
    max_options: int = 32


class InvalidJob(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def validate_job(
    spec: JobSpec,
    agents: Sequence[AgentInfo],
    limits: JobLimits,
    *,
    now: float | None = None,
) -> list[AgentInfo]:
    """Check ``spec``; returns the connected agents its selector matches now."""
    now = time.time() if now is None else now
    if not spec.kind:
        raise InvalidJob("spec.kind", "is required")
    if spec.kind not in KINDS:
        raise InvalidJob("spec.kind", f"unknown probe kind {spec.kind!r}; one of {', '.join(KINDS)}")
    if not spec.targets:
        raise InvalidJob("spec.targets", "at least one target is required")
    if len(spec.targets) > limits.max_targets:
        raise InvalidJob(
            "spec.targets", f"{len(spec.targets)} targets, more than the limit of {limits.max_targets}"
        )
    if len(spec.options) > limits.max_options:
        raise InvalidJob("spec.options", f"more than {limits.max_options} options")
    for i, target in enumerate(spec.targets):
        if len(target) > MAX_TARGET:
            raise InvalidJob(f"spec.targets[{i}]", f"longer than {MAX_TARGET} characters")
    for name, value in spec.options.items():
        if len(name) > MAX_OPTION_NAME:
            raise InvalidJob("spec.options", f"an option name is longer than {MAX_OPTION_NAME} characters")
        if len(value) > MAX_OPTION_VALUE:
            raise InvalidJob(
                f"spec.options.{name}", f"{len(value)} characters, more than {MAX_OPTION_VALUE}"
            )
    size = sum(map(len, spec.targets)) + sum(len(k) + len(v) for k, v in spec.options.items())
    if size > MAX_SPEC_CHARS:
        raise InvalidJob("spec", f"targets and options hold {size} characters, more than {MAX_SPEC_CHARS}")
    lenient = Limits(allow_private_targets=True)
    # Duplicates are judged by the target as the probe reads it (a URL normalised, a name
    # without surrounding space, case-folded): 500 whitespace variants of one host were
    # once accepted as 500 targets.
    seen: dict[str, int] = {}
    for i, target in enumerate(spec.targets):
        try:
            parsed = parse_spec(spec.kind, target, spec.options, lenient)
        except SpecError as exc:
            field = f"spec.targets[{i}]" if exc.field == "target" else f"spec.{exc.field}"
            raise InvalidJob(field, exc.reason) from None
        key = str(getattr(parsed, "target", target)).strip().lower()
        if key in seen:
            raise InvalidJob(f"spec.targets[{i}]", f"the same target as spec.targets[{seen[key]}] ({key[:80]!r})")
        seen[key] = i

    if spec.purpose:
        raise InvalidJob("spec.purpose", "is set by the coordinator only; leave it empty")
    for name in ("every_s", "until", "spread_s", "timeout_s"):
        if not math.isfinite(getattr(spec, name)):
            raise InvalidJob(f"spec.{name}", "must be a finite number")
    if spec.every_s < 0:
        raise InvalidJob("spec.every_s", "must not be negative")
    if spec.every_s and spec.every_s < limits.min_interval_s:
        raise InvalidJob(
            "spec.every_s",
            f"interval {spec.every_s:g}s is below the minimum of {limits.min_interval_s:g}s",
        )
    if not spec.every_s and (spec.count > 1 or spec.until):
        raise InvalidJob("spec.every_s", "count or until needs an interval (every)")
    if spec.every_s and not spec.count and not spec.until:
        raise InvalidJob("spec.count", "a periodic job needs count or until")
    if spec.until and spec.until <= now:
        raise InvalidJob("spec.until", "is in the past")
    if spec.until > now + MAX_HORIZON_S:
        raise InvalidJob("spec.until", f"is more than {MAX_HORIZON_S / 86400:g} days ahead")
    if spec.count > MAX_COUNT:
        raise InvalidJob("spec.count", f"at most {MAX_COUNT} rounds")
    if spec.spread_s < 0 or spec.spread_s > MAX_SPREAD_S:
        raise InvalidJob("spec.spread_s", f"must be between 0 and {MAX_SPREAD_S:g} seconds")
    if spec.every_s and spec.spread_s >= spec.every_s:
        raise InvalidJob("spec.spread_s", "must be shorter than the interval")
    if spec.timeout_s < 0 or spec.timeout_s > MAX_TIMEOUT_S:
        raise InvalidJob("spec.timeout_s", f"must be between 0 and {MAX_TIMEOUT_S:g} seconds")

    sel = spec.selector
    for region in sel.regions:
        if not is_region(region):
            raise InvalidJob("spec.selector.regions", f"malformed region {region!r}")
    for country in sel.countries:
        if not is_country(country):
            raise InvalidJob(
                "spec.selector.countries", f"{country!r} is not a two-letter country code"
            )
    problem = labels_problem(dict(sel.labels))
    if problem is not None:
        raise InvalidJob("spec.selector.labels", problem)
    if len(sel.regions) > MAX_SELECTOR_ITEMS or len(sel.agent_ids) > MAX_SELECTOR_ITEMS:
        raise InvalidJob("spec.selector", f"at most {MAX_SELECTOR_ITEMS} regions and agent ids")
    if len(sel.countries) > MAX_SELECTOR_ITEMS or len(sel.asns) > MAX_SELECTOR_ITEMS:
        raise InvalidJob("spec.selector", f"at most {MAX_SELECTOR_ITEMS} countries and ASNs")
    if sel.per_region < 0:
        raise InvalidJob("spec.selector.per_region", "must not be negative")
    known = {a.agent_id for a in agents}
    for agent_id in sel.agent_ids:
        if agent_id not in known:
            raise InvalidJob("spec.selector.agent_ids", f"no connected agent {agent_id!r}")
    matched = [a for a in agents if agent_matches(a, sel, spec.kind)]
    if not matched:
        raise InvalidJob(
            "spec.selector", f"matches no connected agent that can run {spec.kind!r} probes"
        )
    return matched


def check_task_count(spec: JobSpec, per_round: int) -> None:
    """The job's expected task count fits ``Job.tasks_expected`` (uint32): a job that did
    not once made ``ListJobs`` fail for every caller."""
    rounds = spec.rounds
    if rounds is not None and per_round * rounds > MAX_TASKS_PER_JOB:
        raise InvalidJob(
            "spec.count",
            f"{rounds} rounds of {per_round} tasks is {per_round * rounds} tasks, more than "
            f"{MAX_TASKS_PER_JOB} in one job",
        )
