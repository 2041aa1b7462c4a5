"""The id, region, country and label-key rules, one definition each.

Each rule is a compiled regex (for callers that match it themselves) and a small check
function. Every check and caller uses ``fullmatch``: with ``re.match``, ``$`` also matches
before one trailing newline, so ``"ru\n"`` passed as a region and made a series of its own.

Where two call sites judge the same kind of id differently, both rules are here, named
for the side that applies them, because the difference is deliberate:

- A job id at the coordinator's job API (:data:`JOB_ID_RE`) is exactly what the
  coordinator issues (16 lower-case hex digits): anything else cannot name a job, so it is
  refused before the store is asked.
- A job or task id in a task assignment, at the agent (:data:`ASSIGNED_JOB_ID_RE`,
  :data:`ASSIGNED_TASK_ID_RE`), only has to be safe: task ids name the outbox files and
  both travel in log lines, so no path separators and nothing a shell or a log would
  misread. The agent does not assume the coordinator's format (task ids are the job id,
  round, index and a random suffix joined by dashes, and may change).
"""

from __future__ import annotations

import re

#: An agent's id, as the agent declares it (``vantage agent --id``) and the coordinator
#: checks in the hello.
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
#: A region, as an agent declares it (``--region de-fra``) and a job's selector names it.
REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
#: A country: ISO 3166 alpha-2, upper case (callers upper-case what a person typed first).
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
#: A label key of a job's selector.
LABEL_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
#: A label value (of an agent's hello or a job's selector): printable, bounded.
MAX_LABEL_VALUE = 128
#: Labels an agent may declare.
MAX_LABELS = 16
#: An agent's version string, as its hello gives it (``0.1.0``, ``0.2.0+dev.3``).
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+~-]{0,63}$")
#: A job id at the coordinator's job API: what the coordinator issues (see above).
JOB_ID_RE = re.compile(r"^[0-9a-f]{16}$")
#: A task id in an assignment, at the agent: it names an outbox file (see above).
ASSIGNED_TASK_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
#: A job id in an assignment, at the agent: it goes into results and log lines.
ASSIGNED_JOB_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def is_agent_id(text: str) -> bool:
    return AGENT_ID_RE.fullmatch(text) is not None


def is_region(text: str) -> bool:
    return REGION_RE.fullmatch(text) is not None


def is_country(text: str) -> bool:
    return COUNTRY_RE.fullmatch(text) is not None


def is_label_key(text: str) -> bool:
    return LABEL_KEY_RE.fullmatch(text) is not None


def is_label_value(text: str) -> bool:
    """Printable (no control characters, so never a terminal escape) and bounded."""
    return len(text) <= MAX_LABEL_VALUE and text.isprintable()


def labels_problem(labels: dict[str, str]) -> str | None:
    """Why ``labels`` cannot be an agent's (or a selector's) labels, or None."""
    if len(labels) > MAX_LABELS:
        return f"at most {MAX_LABELS} labels"
    for key, value in labels.items():
        if not is_label_key(key):
            return f"malformed label key {key[:40]!r}"
        if not is_label_value(value):
            return f"label {key}: the value must be printable, at most {MAX_LABEL_VALUE} characters"
    return None


def is_version(text: str) -> bool:
    return VERSION_RE.fullmatch(text) is not None


def is_job_id(text: str) -> bool:
    """A job id the coordinator could have issued."""
    return JOB_ID_RE.fullmatch(text) is not None


def is_assigned_task_id(text: str) -> bool:
    """A task id an agent accepts in an assignment."""
    return ASSIGNED_TASK_ID_RE.fullmatch(text) is not None


def is_assigned_job_id(text: str) -> bool:
    """A job id an agent accepts in an assignment."""
    return ASSIGNED_JOB_ID_RE.fullmatch(text) is not None
