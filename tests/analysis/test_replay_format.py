"""The replay machinery on a few hand-written CSV rows (fast, unlike the full 2021
replay): parsing and units, the day-by-day evaluation, and the table and summary that
scripts/replay_2021.py prints."""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.analysis import AnalysisConfig, Measurement
from coordinator.analysis.replay import (
    ReplayResult,
    Row,
    format_table,
    load_rows,
    parse_rows,
    replay,
    summary,
    to_measurement,
)

HEADER = "datetime_rounded,anonymized_ip,asn,as_country,as_organization,test_kbps,control_kbps\n"
MARCH_13 = 1_615_593_600.0  # 2021-03-13 00:00:00 UTC
HOUR = 3600.0
DAY = 86_400.0

# One US user on the 13th; on the 14th two MegaFon users at a tenth of their control and
# two Telekom users at full speed; one unmapped address at exactly midnight of the 15th.
ROWS = [
    "2021-03-13 12:00:00 UTC,198.51.100.0,64500,US,Example Net,800,800",
    "2021-03-14 01:00:00 UTC,10.0.0.1,25159,RU,PJSC MegaFon,80,800",
    "2021-03-14 01:00:00 UTC,10.0.1.1,3320,DE,Deutsche Telekom AG,800,800",
    "2021-03-14 02:00:00 UTC,10.0.0.2,25159,RU,PJSC MegaFon,80,800",
    "2021-03-14 02:00:00 UTC,10.0.1.2,3320,DE,Deutsche Telekom AG,800,800",
    "2021-03-14 03:00:00 UTC,10.0.0.1,25159,RU,PJSC MegaFon,80,800",
    "2021-03-14 03:00:00 UTC,10.0.1.1,3320,DE,Deutsche Telekom AG,800,800",
    "2021-03-14 04:00:00 UTC,10.0.0.2,25159,RU,PJSC MegaFon,80,800",
    "2021-03-14 04:00:00 UTC,10.0.1.2,3320,DE,Deutsche Telekom AG,800,800",
    "2021-03-15 00:00:00 UTC,203.0.113.0,,,,800,800",
]


def _csv(lines: list[str]) -> io.StringIO:
    return io.StringIO(HEADER + "".join(line + "\n" for line in lines))


@pytest.fixture
def clock_west_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local zone 5 hours behind UTC, so a local-time slip shows."""
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---------------------------------------------------------------- parsing


def test_rows_are_parsed_in_bytes_per_second_and_utc(clock_west_of_utc: None) -> None:
    rows = parse_rows(_csv(["2021-03-13 00:00:00 UTC,10.0.0.1,25159,RU,PJSC MegaFon,80,8"])).rows
    assert rows == [
        Row(
            at=MARCH_13,
            agent="10.0.0.1",
            asn="25159",
            country="RU",
            organization="PJSC MegaFon",
            test_bps=10_000.0,  # 80 kbit/s = 80 * 1000 / 8 bytes/s
            control_bps=1_000.0,
        )
    ]
    # the " UTC" suffix is optional
    plain = parse_rows(_csv(["2021-03-13 06:30:00,10.0.0.1,25159,RU,x,1,1"])).rows
    assert plain[0].at == MARCH_13 + 6.5 * HOUR


def test_an_address_without_an_asn_is_grouped_as_unknown() -> None:
    (row,) = parse_rows(_csv(["2021-03-13 00:00:00 UTC,10.0.0.1,,,,8,8"])).rows
    assert (row.asn, row.country, row.organization) == ("unknown", "", "")


def test_rows_that_cannot_be_downloads_are_skipped_and_listed() -> None:
    data = parse_rows(
        _csv(
            [
                "2021-03-13 00:00:00 UTC,10.0.0.1,1,RU,x,0,8",  # a stalled download: kept
                "2021-03-13 00:00:00 UTC,10.0.0.1,1,RU,x,-1,8",
                "2021-03-13 00:00:00 UTC,10.0.0.1,1,RU,x,8,0",
                "2021-03-13 00:00:00 UTC,10.0.0.1,1,RU,x,8,-3",
                "2021-03-13 00:00:00 UTC,10.0.0.1,1,RU,x,0.5,0.004",  # 0.5 B/s control: kept
            ]
        )
    )
    assert [(r.test_bps, r.control_bps) for r in data.rows] == [(0.0, 1000.0), (62.5, 0.5)]
    assert data.skipped == [
        "line 3: test_kbps=-1 control_kbps=8",
        "line 4: test_kbps=8 control_kbps=0",
        "line 5: test_kbps=8 control_kbps=-3",
    ]


def test_missing_columns_are_all_named() -> None:
    with pytest.raises(ValueError) as caught:
        parse_rows(io.StringIO("datetime_rounded,anonymized_ip,asn,as_country\n"))
    assert str(caught.value) == (
        "replay CSV: missing column(s) as_organization, test_kbps, control_kbps"
    )


def test_bad_values_are_named_with_their_line() -> None:
    with pytest.raises(ValueError) as caught:
        parse_rows(_csv(["2021-03-13 00:00:00 UTC,a,1,RU,x,1,1", "2021-03-13,a,1,RU,x,1,1"]))
    assert str(caught.value).startswith("replay CSV line 3: datetime_rounded: ")
    with pytest.raises(ValueError) as caught:
        parse_rows(_csv(["2021-03-13 00:00:00 UTC,a,1,RU,x,1,n/a"]))
    assert str(caught.value) == "replay CSV line 2: control_kbps: not a number: 'n/a'"


def test_load_rows_reads_plain_and_gzip_files(tmp_path: Path) -> None:
    text = HEADER + ROWS[1] + "\n"
    plain = tmp_path / "rows.csv"
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / "rows.csv.gz"
    packed.write_bytes(gzip.compress(text.encode("utf-8")))
    assert load_rows(plain) == load_rows(packed)
    assert [r.asn for r in load_rows(packed).rows] == ["25159"]


# ---------------------------------------------------------------- replay


def test_a_row_becomes_a_paired_throughput_measurement_of_its_asn() -> None:
    row = Row(
        at=MARCH_13,
        agent="10.0.0.1",
        asn="25159",
        country="RU",
        organization="PJSC MegaFon",
        test_bps=10_000.0,
        control_bps=100_000.0,
    )
    assert to_measurement(row) == Measurement(
        at=MARCH_13,
        group="25159",
        agent_id="10.0.0.1",
        target="twitter",
        kind="throughput",
        failure=None,
        duration_s=0.0,  # the dataset has no durations
        throughput_bps=10_000.0,
        control_bps=100_000.0,
        country="RU",
    )
    # a country column that is not a two-letter code (blank, "??") is left out
    for bad in ("", "??", "ru", "RUS"):
        odd = Row(**{**{f: getattr(row, f) for f in row.__dataclass_fields__}, "country": bad})
        assert to_measurement(odd).country == ""


@pytest.fixture
def result(clock_west_of_utc: None) -> ReplayResult:
    rows = parse_rows(_csv(list(reversed(ROWS)))).rows  # any order: replay sorts by time
    return replay(rows)


def test_replay_evaluates_the_end_of_every_utc_day(result: ReplayResult) -> None:
    assert result.days == ("03-13", "03-14", "03-15")
    assert result.verdicts == {
        "64500": ["inconclusive", "inconclusive", "inconclusive"],
        "25159": [None, "throttled", "throttled"],  # the 7-day window keeps the 14th
        "3320": [None, "ok", "ok"],
        # measured at exactly midnight: part of the 15th, not of the 14th
        "unknown": [None, None, "inconclusive"],
    }
    assert result.country == {"64500": "US", "25159": "RU", "3320": "DE", "unknown": ""}
    assert result.organization == {
        "64500": "Example Net",
        "25159": "PJSC MegaFon",
        "3320": "Deutsche Telekom AG",
        "unknown": "",
    }


def test_replay_keeps_each_days_reason(result: ReplayResult) -> None:
    throttled = (
        "median 10 kB/s vs same-agent control 100 kB/s, ratio 0.1, p=0, 2/2 agents slow, "
        "4 samples; corroborated by clean groups 3320 (ratio 0.1)"
    )
    assert result.reasons["25159"] == ["", throttled, throttled]
    assert result.reasons["unknown"][:2] == ["", ""]
    assert result.reasons["64500"][0] == (
        "too little evidence: 1 paired samples from 1 agents (need 4 from 2)"
    )


def test_replay_counts_days(result: ReplayResult) -> None:
    assert (result.throttled_days("25159"), result.conclusive_days("25159")) == (2, 2)
    assert (result.throttled_days("3320"), result.conclusive_days("3320")) == (0, 2)
    assert (result.throttled_days("64500"), result.conclusive_days("64500")) == (0, 0)
    assert (result.throttled_days("1"), result.conclusive_days("1")) == (0, 0)  # never seen


def test_replay_uses_the_configuration_it_is_given() -> None:
    rows = parse_rows(_csv(ROWS[1:9])).rows
    assert replay(rows).verdicts["25159"] == ["throttled"]
    # with the live coordinator's 60 s window nothing measured hours ago is left at midnight
    short = replay(rows, AnalysisConfig(window_s=60.0))
    assert short.verdicts["25159"] == [None]


def test_replay_needs_rows() -> None:
    with pytest.raises(ValueError) as caught:
        replay([])
    assert str(caught.value) == "replay: no rows"


# ---------------------------------------------------------------- table and summary


def _result() -> ReplayResult:
    return ReplayResult(
        days=("03-29", "03-30", "03-31"),
        verdicts={
            "25159": ["throttled", "throttled", "ok"],
            "12389": ["blocked", "inconclusive", None],
            "3320": [None, "ok", "throttled"],
            "64500": [None, None, "inconclusive"],
        },
        country={"25159": "RU", "12389": "RU", "3320": "DE", "64500": ""},
        organization={
            "25159": "PJSC MegaFon",
            "12389": "PJSC Rostelecom and a name longer than the column",
            "3320": "Deutsche Telekom AG",
            "64500": "",
        },
    )


def test_table_shows_one_cell_per_day_and_the_counts() -> None:
    table = format_table(_result(), ["25159", "12389", "3320", "64500"])
    assert table.split("\n") == [
        "day of March 2021 (UTC), verdict over the 7 days ending that day",
        "    ASN CC organization             29 30 31  thr/concl/data",
        "  25159 RU PJSC MegaFon              T  T  .    2/3/3",
        "  12389 RU PJSC Rostelecom and a na  B  ?       0/1/2",
        "   3320 DE Deutsche Telekom AG          .  T    1/2/2",
        "  64500 --                                 ?    0/0/1",
    ]


def test_summary_counts_networks_inside_and_outside_russia() -> None:
    assert summary(_result()).split("\n") == [
        "ASNs: 4 (2 in RU, 2 elsewhere)",
        "RU ASNs throttled on at least one day: 1",
        "non-RU ASNs with a conclusive verdict: 1 (2 conclusive ASN-days); "
        "throttled on any day: 1 (3320)",
    ]
    many = ReplayResult(
        days=("03-31",),
        verdicts={
            "25159": ["throttled"],
            "31213": ["throttled"],
            "12389": ["ok"],
            "3320": ["throttled"],
            "7922": ["throttled"],
        },
        country={"25159": "RU", "31213": "RU", "12389": "RU", "3320": "DE", "7922": "US"},
        organization={a: "" for a in ("25159", "31213", "12389", "3320", "7922")},
    )
    assert summary(many).split("\n") == [
        "ASNs: 5 (3 in RU, 2 elsewhere)",
        "RU ASNs throttled on at least one day: 2",
        "non-RU ASNs with a conclusive verdict: 2 (2 conclusive ASN-days); "
        "throttled on any day: 2 (3320, 7922)",
    ]


def test_summary_without_foreign_throttling_names_nobody() -> None:
    clean = ReplayResult(
        days=("03-31",),
        verdicts={"25159": ["throttled"], "3320": ["ok"], "7922": ["ok"]},
        country={"25159": "RU", "3320": "DE", "7922": "US"},
        organization={"25159": "", "3320": "", "7922": ""},
    )
    assert summary(clean).split("\n")[-1] == (
        "non-RU ASNs with a conclusive verdict: 2 (2 conclusive ASN-days); throttled on any day: 0"
    )
