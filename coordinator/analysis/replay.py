"""Replay of the March 2021 Russia Twitter Throttle Dataset through the analysis core.

Each row is a Twitter download (test) and a control download by the same user. The
replay feeds the rows in time order with the ASN as the group and the anonymized address
as the agent, and evaluates a 7-day sliding window at the end of each UTC day: the
per-ASN, per-day verdict table of docs/detection.md.

Data: "Russia Twitter Throttle Dataset" (github.com/4ndv/russia-twitter-throttle) by
Andrey Viktorov and Leonid Evdokimov, CC BY 4.0; it contains information from the CAIDA
UCSD Routeviews Prefix to AS mappings (pfx2as) and Inferred AS to Organization Mapping
datasets. See tests/fixtures/README.md.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from common.ids import is_country
from coordinator.analysis.analyzer import Analyzer
from coordinator.analysis.model import AnalysisConfig, Measurement

DAY_S = 86_400.0
TARGET = "twitter"
COLUMNS = (
    "datetime_rounded",
    "anonymized_ip",
    "asn",
    "as_country",
    "as_organization",
    "test_kbps",
    "control_kbps",
)

# Crowdsourced data is sparse: a 7-day window, judged at the end of each day. Up to 50
# samples per user and window, so no heavy user outweighs the others; the recovery
# hysteresis counts days (2 evaluations), not seconds.
REPLAY_CONFIG = AnalysisConfig(
    window_s=7 * DAY_S,
    max_samples_per_agent=50,
    recover_evaluations=2,
    recover_s=0.0,
    max_groups=10_000,
)

# The networks the 2021 reports named (NetBlocks, per provider): MegaFon and T2 Mobile.
MEGAFON_ASNS = ("25159", "31213", "31163", "31224", "31208")
T2_MOBILE_ASNS = ("12958", "42437", "41330", "48092", "48190")


# The group of the few rows whose address CAIDA did not map to an AS.
UNKNOWN_ASN = "unknown"


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    at: float
    agent: str
    asn: str
    country: str
    organization: str
    test_bps: float
    control_bps: float


def _parse_time(text: str) -> float:
    value = text.strip()
    if value.endswith(" UTC"):
        value = value[: -len(" UTC")]
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True, kw_only=True)
class Rows:
    rows: list[Row]
    # rows left out, as "line N: why" (a negative or zero speed cannot be a download)
    skipped: list[str]


def parse_rows(lines: Iterable[str]) -> Rows:
    """Rows of the dataset's CSV text. kbit/s become bytes/s (x 1000 / 8). Malformed
    text raises ValueError naming the line and column; rows with a negative test or a
    non-positive control speed (one such row is in the data) are skipped and listed."""
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"replay CSV: missing column(s) {', '.join(missing)}")
    rows: list[Row] = []
    skipped: list[str] = []
    for line_no, record in enumerate(reader, start=2):
        try:
            at = _parse_time(record["datetime_rounded"])
        except ValueError as exc:
            raise ValueError(f"replay CSV line {line_no}: datetime_rounded: {exc}") from None
        values: dict[str, float] = {}
        for column in ("test_kbps", "control_kbps"):
            try:
                values[column] = float(record[column]) * 1000.0 / 8.0
            except ValueError:
                raise ValueError(
                    f"replay CSV line {line_no}: {column}: not a number: {record[column]!r}"
                ) from None
        if values["test_kbps"] < 0 or values["control_kbps"] <= 0:
            skipped.append(
                f"line {line_no}: test_kbps={record['test_kbps']} control_kbps={record['control_kbps']}"
            )
            continue
        rows.append(
            Row(
                at=at,
                agent=record["anonymized_ip"],
                asn=record["asn"] or UNKNOWN_ASN,
                country=record["as_country"],
                organization=record["as_organization"],
                test_bps=values["test_kbps"],
                control_bps=values["control_kbps"],
            )
        )
    return Rows(rows=rows, skipped=skipped)


def load_rows(path: Path) -> Rows:
    """Rows of the dataset file (gzip-compressed or plain CSV)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return parse_rows(io.StringIO(data.decode("utf-8")))


@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    days: tuple[str, ...]
    # asn -> one entry per day: "ok" | "throttled" | "blocked" | "inconclusive" | None
    # (None: no measurement of the ASN in that day's window).
    verdicts: dict[str, list[str | None]]
    country: dict[str, str]
    organization: dict[str, str]
    # asn -> per day: the reason string of the verdict ("" when absent)
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def throttled_days(self, asn: str) -> int:
        return sum(1 for v in self.verdicts.get(asn, []) if v == "throttled")

    def conclusive_days(self, asn: str) -> int:
        return sum(1 for v in self.verdicts.get(asn, []) if v in ("ok", "throttled", "blocked"))


def to_measurement(row: Row) -> Measurement:
    return Measurement(
        at=row.at,
        group=row.asn,
        agent_id=row.agent,
        target=TARGET,
        kind="throughput",
        failure=None,
        duration_s=0.0,  # not in the dataset
        throughput_bps=row.test_bps,
        control_bps=row.control_bps,
        # CAIDA's country of the AS: the degraded rule needs to know two ASNs share one
        country=row.country if is_country(row.country) else "",
    )


def replay(rows: Sequence[Row], config: AnalysisConfig = REPLAY_CONFIG) -> ReplayResult:
    """Feed ``rows`` in time order and evaluate at the end of every UTC day."""
    if not rows:
        raise ValueError("replay: no rows")
    ordered = sorted(rows, key=lambda r: r.at)
    first_day = int(ordered[0].at // DAY_S)
    last_day = int(ordered[-1].at // DAY_S)
    analyzer = Analyzer(config)
    country = {r.asn: r.country for r in ordered}
    organization = {r.asn: r.organization for r in ordered}
    n_days = last_day - first_day + 1
    verdicts: dict[str, list[str | None]] = {asn: [None] * n_days for asn in country}
    reasons: dict[str, list[str]] = {asn: [""] * n_days for asn in country}
    days: list[str] = []
    i = 0
    for index, day in enumerate(range(first_day, last_day + 1)):
        day_end = (day + 1) * DAY_S
        while i < len(ordered) and ordered[i].at < day_end:
            analyzer.add(to_measurement(ordered[i]))
            i += 1
        snapshot = analyzer.evaluate(day_end)
        days.append(datetime.fromtimestamp(day * DAY_S, tz=UTC).strftime("%m-%d"))
        for verdict in snapshot.regions:
            verdicts[verdict.group][index] = verdict.verdict
            reasons[verdict.group][index] = verdict.reason
    return ReplayResult(
        days=tuple(days),
        verdicts=verdicts,
        country=country,
        organization=organization,
        reasons=reasons,
    )


_CELL = {
    "ok": ".",
    "throttled": "T",
    "blocked": "B",
    "inconclusive": "?",
    "degraded": "D",
    None: " ",
}


def format_table(result: ReplayResult, asns: Sequence[str]) -> str:
    """A fixed-width per-ASN, per-day table: T throttled, . ok, ? inconclusive, D degraded,
    blank no data; then throttled/conclusive/days-with-data counts."""
    header = f"{'ASN':>7} {'CC':2} {'organization':24} " + " ".join(d[-2:] for d in result.days)
    lines = [
        "day of March 2021 (UTC), verdict over the 7 days ending that day",
        header + "  thr/concl/data",
    ]
    for asn in asns:
        cells = " ".join(f"{_CELL[v]:>2}" for v in result.verdicts[asn])
        with_data = sum(1 for v in result.verdicts[asn] if v is not None)
        lines.append(
            f"{asn:>7} {result.country[asn] or '--':2} {result.organization[asn][:24]:24} {cells}"
            f"  {result.throttled_days(asn):>3}/{result.conclusive_days(asn)}/{with_data}"
        )
    return "\n".join(lines)


def summary(result: ReplayResult) -> str:
    """Counts over every ASN: how many were ever throttled, inside and outside Russia."""
    russian = [a for a in result.verdicts if result.country[a] == "RU"]
    foreign = [a for a in result.verdicts if result.country[a] != "RU"]
    ru_thr = [a for a in russian if result.throttled_days(a)]
    fo_thr = [a for a in foreign if result.throttled_days(a)]
    fo_concl = [a for a in foreign if result.conclusive_days(a)]
    fo_days = sum(result.conclusive_days(a) for a in foreign)
    return "\n".join(
        [
            f"ASNs: {len(result.verdicts)} ({len(russian)} in RU, {len(foreign)} elsewhere)",
            f"RU ASNs throttled on at least one day: {len(ru_thr)}",
            f"non-RU ASNs with a conclusive verdict: {len(fo_concl)} "
            f"({fo_days} conclusive ASN-days); throttled on any day: {len(fo_thr)}"
            + (f" ({', '.join(fo_thr)})" if fo_thr else ""),
        ]
    )
