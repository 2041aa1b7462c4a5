"""Small builders for analysis tests."""

from __future__ import annotations

from coordinator.analysis import Measurement


def tput(
    at: float,
    group: str,
    agent: str,
    bps: float,
    control: float | None,
    target: str = "twitter",
    country: str = "",
) -> Measurement:
    return Measurement(
        at=at,
        group=group,
        agent_id=agent,
        target=target,
        kind="throughput",
        failure=None,
        duration_s=2.0,
        throughput_bps=bps,
        control_bps=control,
        country=country,
    )


def reach(
    at: float,
    group: str,
    agent: str,
    target: str,
    failure: str | None = None,
    kind: str = "tcp",
    block_page: bool = False,
) -> Measurement:
    return Measurement(
        at=at,
        group=group,
        agent_id=agent,
        target=target,
        kind=kind,
        failure=failure,
        duration_s=0.1,
        block_page=block_page,
    )


def measurement(**over: object) -> Measurement:
    """A valid tcp measurement, with ``over`` replacing any of its fields."""
    fields: dict[str, object] = dict(
        at=1.0, group="ru", agent_id="a", target="t", kind="tcp", failure=None, duration_s=0.1
    )
    fields.update(over)
    return Measurement(**fields)  # type: ignore[arg-type]
