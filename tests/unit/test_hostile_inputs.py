"""Hostile inputs from an API caller or an agent that once made series of their own or
slipped past a check (the hostile-load review)."""

from __future__ import annotations

import pytest

from common import ids
from coordinator.model import AgentInfo, JobSpec
from coordinator.validation import InvalidJob, JobLimits, validate_job


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (ids.is_agent_id, "de-fra-1"),
        (ids.is_region, "de-fra"),
        (ids.is_country, "DE"),
        (ids.is_label_key, "tier"),
        (ids.is_version, "0.1.0"),
    ],
)
def test_an_id_with_a_trailing_newline_is_refused(check: object, good: str) -> None:
    assert callable(check)
    assert check(good)
    for bad in (good + "\n", good + "\r\n", "\n" + good, good + "\n\n"):
        assert not check(bad), repr(bad)


@pytest.mark.parametrize(
    ("kind", "targets"),
    [
        ("tcp", ["h.example:80", " h.example:80", "h.example:80 "]),
        ("http", ["https://h.example/", "HTTPS://H.EXAMPLE/", " https://h.example/"]),
        ("dns", ["h.example", "H.Example", "h.example "]),
    ],
)
def test_duplicate_targets_are_found_after_normalising(kind: str, targets: list[str]) -> None:
    for i in range(1, len(targets)):
        spec = JobSpec(kind=kind, targets=(targets[0], targets[i]))
        with pytest.raises(InvalidJob) as info:
            validate_job(spec, [], JobLimits())
        assert info.value.field == "spec.targets[1]" and "spec.targets[0]" in info.value.reason
    # distinct targets still pass
    other = {"tcp": "g.example:80", "http": "https://g.example/", "dns": "g.example"}[kind]
    agent = AgentInfo(agent_id="a", region="de", kinds=(kind,))
    assert validate_job(JobSpec(kind=kind, targets=(targets[0], other)), [agent], JobLimits()) == [agent]
