"""Small builders for analysis tests."""

from __future__ import annotations

from collections.abc import Mapping

from coordinator.analysis import Analyzer, Measurement


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


def paired_rounds(
    a: Analyzer,
    rounds: range,
    test_bps: Mapping[str, float],
    control_bps: float | None,
    countries: Mapping[str, str] | None = None,
    agents: int = 2,
    target: str = "twitter",
) -> None:
    """One throughput sample per agent ("<group>-<i>") per 10 s round for each group of
    ``test_bps``; test and control share a +-3% jitter, so their ratio is exact."""
    for r in rounds:
        for g, bps in test_bps.items():
            for i in range(agents):
                jitter = 1.0 + 0.03 * ((r + i) % 3)
                a.add(
                    tput(
                        r * 10.0 + i,
                        g,
                        f"{g}-{i}",
                        bps * jitter,
                        control_bps * jitter if control_bps is not None else None,
                        target,
                        (countries or {}).get(g, ""),
                    )
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
