"""What the lab tests share: reading /metrics as the lab's parse_metrics returns it, and
the bounded waits on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from tests.polling import poll

Metrics = dict[str, dict[frozenset[tuple[str, str]], float]]


def by_labels(m: Metrics, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """The samples of metric ``name``, keyed by the values of the labels ``keys``."""
    return {
        tuple(dict(labels).get(k, "") for k in keys): v for labels, v in m.get(name, {}).items()
    }


def agents_connected(lab: Any, regions: Sequence[str], per_region: int, timeout_s: float = 60.0) -> bool:
    """Wait (bounded) until /metrics counts ``per_region`` agents in each region."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c = by_labels(lab.metrics(), "vantage_agents_connected", "region")
        if all(c.get((r,), 0) == per_region for r in regions):
            return True
        time.sleep(1)
    return False


def wait_throttles_cleared(
    lab: Any, fading: set[tuple[str, str]], timeout_s: float, false: list[tuple[Any, ...]]
) -> dict[tuple[str, str], float]:
    """After the faults are removed: poll ``vantage_throttled`` (bounded by ``timeout_s``)
    until every (region, target) of ``fading`` reads 0; returns the seconds each took.
    Any other pair throttled meanwhile is appended to ``false``."""
    from deploy.lab.lab import parse_metrics

    started = time.monotonic()
    cleared: dict[tuple[str, str], float] = {}
    while time.monotonic() - started < timeout_s:
        thr = by_labels(parse_metrics(lab.metrics_text()), "vantage_throttled", "region", "target")
        for key in fading:
            if thr.get(key) == 0 and key not in cleared:
                cleared[key] = time.monotonic() - started
        for (r, t), v in thr.items():
            if v and (r, t) not in fading:
                false.append(("after", r, t, "throttled", ""))
        if len(cleared) == len(fading):
            break
        time.sleep(2)
    return cleared


Pair = tuple[str, str]  # (region, target)


class VerdictWatch:
    """Watches ``vantage_verdict_info`` while faults stand. Each look notes when each of
    ``expected`` (a (region, target) pair and the value its ``detail`` label must have)
    first reads ``throttled`` with that value, and appends to ``false`` any bad verdict
    (``bad``) that ``is_false(pair, detail)`` says was not expected. ``until_judged`` and
    ``hold`` poll it with a bounded number of looks and a bounded time."""

    def __init__(
        self, lab: Any, *, detail: str, expected: dict[Pair, str], pairs: set[Pair], bad: Collection[str],
        false: list[tuple[Any, ...]], is_false: Callable[[Pair, str], bool], interval_s: float = 2.0,
    ) -> None:  # fmt: skip
        self.lab = lab
        self.detail = detail
        self.expected = expected
        self.others = pairs - set(expected)
        self.bad = bad
        self.false = false
        self.is_false = is_false
        self.interval_s = interval_s
        self.started = time.monotonic()
        self.first: dict[Pair, float] = {}
        self.last_metrics: Metrics = {}

    def look(self) -> dict[tuple[str, str, str], str]:
        """One read of /metrics: {(region, target, verdict): detail} of the verdicts shown."""
        from deploy.lab.lab import parse_metrics

        m = parse_metrics(self.lab.metrics_text())
        info = {
            (r, t, v): d
            for (r, t, v, d), x in by_labels(m, "vantage_verdict_info", "region", "target", "verdict", self.detail).items()
            if x
        }  # fmt: skip
        for (r, t), v, d in (((r, t), v, d) for (r, t, v), d in info.items()):
            if v in self.bad and self.is_false((r, t), d):
                self.false.append((round(time.monotonic() - self.started, 1), r, t, v, d))
            if v == "throttled" and self.expected.get((r, t)) == d and (r, t) not in self.first:
                self.first[(r, t)] = time.monotonic() - self.started
        self.last_metrics = m
        return info

    def judged(self, info: dict[tuple[str, str, str], str]) -> bool:
        """Every expected pair has read throttled with its detail, every other pair ok."""
        oks = {(r, t) for (r, t, v) in info if v == "ok"}
        return len(self.first) == len(self.expected) and self.others <= oks

    def until_judged(self, timeout_s: float) -> bool:
        """Poll until ``judged``: at most ``timeout_s`` seconds, and at most as many looks
        as fit in it at ``interval_s``."""
        _, took = poll(self.look, self.judged, timeout=timeout_s, interval=self.interval_s,
                       attempts=int(timeout_s / self.interval_s) + 1)  # fmt: skip
        return took is not None

    def hold(self, seconds: float) -> int:
        """Keep looking (so any bad verdict that turns meanwhile is caught) for ``seconds``,
        in at most ``seconds / interval_s + 1`` looks; the number of looks."""
        looks = 0

        def look() -> int:
            nonlocal looks
            self.look()
            looks += 1
            return looks

        poll(look, lambda _: False, timeout=seconds, interval=self.interval_s,
             attempts=int(seconds / self.interval_s) + 1)  # fmt: skip
        return looks
