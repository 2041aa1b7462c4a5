"""Throughput verdicts for one target across its groups: throttled here, or slow everywhere.

The per-group rules are in ``rules`` (the same-agent control decides). This module puts
the groups side by side, because slowness means different things depending on where
else it is seen (docs/detection.md, "degraded"):

- **regional**: some groups are slow and at least one group is clean (its own control
  says ok, over its window and on its latest samples). The slow groups are throttled: the target is fast from somewhere, so the
  slowness is where it is seen. This is the 2021 case: most vantage points were Russian
  and slow, a few were not.
- **degraded**: every group with enough evidence is slow, there are at least
  ``outage_min_groups`` of them, and they sit in more than one place. The target itself
  is slow (an overloaded CDN, an origin in trouble): no group is throttled.
- **ambiguous**: every group with enough evidence is slow, but all of them sit in one
  place (one country), or there is only one such group. A national throttle and a slow
  target look the same from there, so nothing is called throttled, degraded or ok.
- **undecided**: some groups are slow, none is clean, and the others could not decide
  (or are clean over their window but slow on their latest samples: slowing down too).
  Without a group where the target is fast there is nothing to tell a throttle from a
  slow target with, so the slow groups are inconclusive.

A group's **place** is the set of country codes its agents declared. A group whose
agents declared none counts as a place of its own (region names are chosen by the
operator and normally name distinct places; set ``--country`` on agents so that two
regions of one country count as one). Under ``--group-by asn`` the same holds: two ASNs
in one country are one place, because a national censor (Russia's TSPU in 2021) sits in
every network of its country.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from coordinator.analysis import throttle
from coordinator.analysis.model import AnalysisConfig, Measurement
from coordinator.analysis.stats import median, median_interval
from coordinator.analysis.throttle import ThroughputJudgement

SpreadKind = Literal["none", "regional", "degraded", "ambiguous", "undecided"]
# group -> kind -> agent_id -> measurements in the window (one target).
Groups = Mapping[str, Mapping[str, Mapping[str, Sequence[Measurement]]]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Spread:
    """Where a target is slow against the same-agent control, across its groups."""

    kind: SpreadKind
    slow: tuple[str, ...] = ()
    clean: tuple[str, ...] = ()
    undecided: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    reason: str = ""


# Marks a place that is a group without a declared country (country codes never hold it).
_NO_COUNTRY = "@"


def places_of(group: str, by_agent: Mapping[str, Sequence[Measurement]]) -> frozenset[str]:
    """The countries a group's samples were measured from; the group itself (marked)
    when none of its agents declared a country."""
    countries = frozenset(m.country for ms in by_agent.values() for m in ms if m.country)
    return countries or frozenset({_NO_COUNTRY + group})


def _where(places: Sequence[str]) -> str:
    """ "2 countries (DE, RU)", or "2 places (de, ru: no country declared)"."""
    shown = throttle.names([p.removeprefix(_NO_COUNTRY) for p in places])
    n = len(places)
    if any(p.startswith(_NO_COUNTRY) for p in places):
        # a group without a country is a place of its own: with one, n >= 2 here
        return f"{n} places ({shown}: no country declared)"
    return f"{n} countr{'ies' if n != 1 else 'y'} ({shown})"


def latest_fast(paired: Mapping[str, Sequence[Measurement]], cfg: AnalysisConfig) -> bool:
    """The group is fast now, not only over its window: fewer than agent_quorum of its
    agents have their latest paired sample at or below throttle_ratio (the same
    agreement rule that makes a group slow, applied to the latest samples)."""
    latest = [max(ms, key=lambda m: m.at) for ms in paired.values() if ms]
    slow = sum(1 for m in latest if throttle.sample_ratio(m) <= cfg.throttle_ratio)
    return bool(latest) and slow < cfg.agent_quorum * len(latest)


def slow_spread(
    control: Mapping[str, ThroughputJudgement],
    places: Mapping[str, frozenset[str]],
    cfg: AnalysisConfig,
    fresh: Mapping[str, bool] | None = None,
) -> Spread:
    """Classify the control-based judgements of one target's groups (module docstring).
    ``places`` holds every group of ``control``.

    A clean group is a reference only while it is also fast on its agents' latest samples
    (``fresh``): when the target slows down for everyone at once, each group's window
    median turns slow as its own results land, seconds apart, and a group still clean on
    its window but slow on its latest samples must not make the first ones "throttled"
    for those seconds. Such a group counts as undecided; a round later it is slow too
    (degraded) or fast again (the throttle stands).
    """
    evidence = {g: j for g, j in control.items() if not j.too_little_control}
    slow = tuple(sorted(g for g, j in evidence.items() if j.status == "throttled"))
    if not slow:
        return Spread(kind="none")
    fresh = fresh or {}
    ok = {g for g, j in evidence.items() if j.status == "ok"}
    clean = tuple(sorted(g for g in ok if fresh.get(g, True)))
    slowing = tuple(sorted(ok - set(clean)))
    undecided = tuple(sorted(set(evidence) - set(slow) - set(clean)))
    where = tuple(sorted({p for g in slow for p in places[g]}))
    names = throttle.names(slow)
    kind: SpreadKind
    if clean:
        kind, reason = "regional", ""
    elif slowing:
        kind = "undecided"
        reason = (
            f"slow from {names}; {throttle.names(slowing)} fast over the window but slow on "
            "the latest samples, so a throttle cannot be told from a slow target yet"
        )
    elif undecided:
        kind = "undecided"
        reason = (
            f"slow from {names} and fast from no group ({throttle.names(undecided)} "
            "undecided), so a throttle cannot be told from a slow target"
        )
    elif len(slow) >= cfg.outage_min_groups and len(where) >= 2:
        kind = "degraded"
        reason = f"slow from every group ({names}) in {_where(where)}"
    else:
        kind = "ambiguous"
        if len(slow) == 1:
            why = f"slow from the only group with enough evidence ({names})"
        else:
            why = f"slow from every group ({names}), all in {_where(where)}"
        reason = (
            f"{why}: a throttle there and a slow target look the same; "
            "a vantage point in another country would tell them apart"
        )
    return Spread(
        kind=kind, slow=slow, clean=clean, undecided=undecided, places=where, reason=reason
    )


def judge_groups(
    groups: Groups, cfg: AnalysisConfig, series: str = "throughput"
) -> tuple[dict[str, tuple[ThroughputJudgement, float]], Spread, dict[str, tuple[float, float]]]:
    """Each group's throughput judgement and window median, the target's spread, and each
    group's 95% interval of its median (``stats.median_interval``: the rate people quote
    comes with its spread), over the measurements kept under ``series`` (the downloads,
    or ``UPLOAD_SERIES``).

    A throttled judgement here is final only for a ``regional`` spread (and for groups
    decided by the no-control fallback); ``settle`` turns the others into degraded or
    inconclusive once the target's held state is known.
    """
    tests = {
        g: throttle.throughput_samples(kinds.get(series, {})) for g, kinds in groups.items()
    }
    tests = {g: t for g, t in tests.items() if t}
    paired = {g: throttle.paired_samples(t) for g, t in tests.items()}
    control = {g: throttle.judge_against_control(p, cfg) for g, p in paired.items()}
    fresh = {g: latest_fast(paired[g], cfg) for g, j in control.items() if j.status == "ok"}
    spread = slow_spread(control, {g: places_of(g, t) for g, t in tests.items()}, cfg, fresh)
    clean = sorted(g for g, j in control.items() if j.status == "ok")
    # A clean group is never the one judged against the reference (that one is
    # throttled, or its control could not decide), so one pool serves every group.
    reference = throttle.Reference.of(
        [
            m.throughput_bps
            for g in clean
            for ms in tests[g].values()
            for m in ms
            if m.throughput_bps is not None
        ],
        clean,
    )
    out: dict[str, tuple[ThroughputJudgement, float]] = {}
    intervals: dict[str, tuple[float, float]] = {}
    for group, by_agent in tests.items():
        rates = [m.throughput_bps for ms in by_agent.values() for m in ms if m.throughput_bps is not None]
        group_median = median(rates)
        intervals[group] = median_interval(rates)
        judgement = control[group]
        if judgement.status == "throttled" and spread.kind == "regional":
            note = throttle.corroboration(group_median, reference, cfg)
            judgement = replace(judgement, reason=f"{judgement.reason}; {note}")
        elif judgement.too_little_control and any(
            m.control_bps is None or m.control_bps <= 0 for ms in by_agent.values() for m in ms
        ):
            judgement = throttle.judge_against_groups(by_agent, reference, cfg)
        out[group] = (judgement, group_median)
    return out, spread, intervals


def settle(
    group: str, judgement: ThroughputJudgement, spread: Spread, degraded: bool, held_note: str
) -> ThroughputJudgement:
    """The group's final throughput judgement once the target's degraded state is known.

    While the target is degraded (raw or held by hysteresis) a slow group is "degraded",
    never throttled; with an ambiguous or undecided spread a slow group is inconclusive.
    ``held_note`` says why the target is still degraded when the raw spread is not.
    """
    if judgement.status != "throttled":
        return judgement
    if degraded:
        why = spread.reason if spread.kind == "degraded" else held_note
        return replace(
            judgement,
            status="degraded",
            reason=f"slow everywhere: target degraded, {why}; here {judgement.reason}",
        )
    if spread.kind in ("ambiguous", "undecided") and group in spread.slow:
        return replace(
            judgement, status="inconclusive", reason=f"{spread.reason}: {judgement.reason}"
        )
    return judgement
