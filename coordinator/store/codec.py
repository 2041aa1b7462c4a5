"""Job specs as JSON text, the same in every engine."""

from __future__ import annotations

import json
from dataclasses import asdict

from coordinator.model import JobSpec, Selector


def spec_to_json(spec: JobSpec) -> str:
    d = asdict(spec)
    d["selector"]["labels"] = dict(spec.selector.labels)
    d["options"] = dict(spec.options)
    return json.dumps(d, sort_keys=True)


def spec_from_json(text: str) -> JobSpec:
    d = json.loads(text)
    sel = d.pop("selector")
    return JobSpec(
        kind=d["kind"],
        targets=tuple(d["targets"]),
        options=dict(d["options"]),
        selector=Selector(
            regions=tuple(sel["regions"]),
            countries=tuple(sel["countries"]),
            asns=tuple(sel["asns"]),
            labels=dict(sel["labels"]),
            agent_ids=tuple(sel["agent_ids"]),
            per_region=sel["per_region"],
        ),
        every_s=d["every_s"],
        count=d["count"],
        until=d["until"],
        spread_s=d["spread_s"],
        timeout_s=d["timeout_s"],
        purpose=d.get("purpose", ""),  # absent in jobs stored before issue 15
    )

