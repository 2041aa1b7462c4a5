"""The March 2021 Twitter throttling, replayed from real crowdsourced measurements
(tests/fixtures/README.md has the data and its CC BY 4.0 attribution)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from coordinator.analysis.replay import (
    MEGAFON_ASNS,
    REPLAY_CONFIG,
    T2_MOBILE_ASNS,
    ReplayResult,
    load_rows,
    parse_rows,
    replay,
)

FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "russia-twitter-throttle-2021-03.csv.gz"
)


@pytest.fixture(scope="module")
def result() -> ReplayResult:
    data = load_rows(FIXTURE)
    assert len(data.rows) + len(data.skipped) == 30_471
    assert len(data.skipped) == 1  # the one row with a negative control speed
    return replay(data.rows)


def test_the_window_is_seven_days_judged_daily(result: ReplayResult) -> None:
    assert REPLAY_CONFIG.window_s == 7 * 86_400
    assert result.days[0] == "03-13" and result.days[-1] == "03-31" and len(result.days) == 19


@pytest.mark.parametrize("asn", MEGAFON_ASNS + T2_MOBILE_ASNS)
def test_mobile_carriers_are_throttled(result: ReplayResult, asn: str) -> None:
    days = len(result.days)
    conclusive = result.conclusive_days(asn)
    throttled = result.throttled_days(asn)
    assert conclusive >= days / 2, (asn, result.verdicts[asn])
    assert throttled >= 0.9 * conclusive, (asn, result.verdicts[asn])


def test_no_network_outside_russia_is_ever_throttled(result: ReplayResult) -> None:
    foreign = [a for a in result.verdicts if result.country[a] != "RU"]
    assert len(foreign) > 500
    throttled = {a: result.verdicts[a] for a in foreign if result.throttled_days(a)}
    assert throttled == {}
    # and the check is not empty: many of them got a conclusive "ok"
    assert sum(1 for a in foreign if result.conclusive_days(a)) > 100


def test_throttled_days_carry_the_measured_figures(result: ReplayResult) -> None:
    # MegaFon 25159 on the last day: about 110 kbit/s = 13,750 B/s, far below control
    reason = result.reasons["25159"][-1]
    assert "same-agent control" in reason and "agents slow" in reason


def test_bad_csv_is_named() -> None:
    with pytest.raises(ValueError, match="missing column"):
        parse_rows(io.StringIO("a,b\n1,2\n"))
    header = (
        "datetime_rounded,anonymized_ip,asn,as_country,as_organization,test_kbps,control_kbps\n"
    )
    with pytest.raises(ValueError, match="line 2: test_kbps"):
        parse_rows(io.StringIO(header + "2021-03-13 00:00:00 UTC,1.2.3.0,1,RU,x,fast,1\n"))
    with pytest.raises(ValueError, match="line 2: datetime_rounded"):
        parse_rows(io.StringIO(header + "yesterday,1.2.3.0,1,RU,x,1,1\n"))
    assert gzip.decompress(FIXTURE.read_bytes()).startswith(header.strip().encode())
