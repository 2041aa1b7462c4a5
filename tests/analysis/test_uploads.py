"""Uploads (issue 10): judged apart from the downloads of the same target, with their own
figures, and the verdict says which direction is throttled."""

from __future__ import annotations

import pytest

from coordinator.analysis import Analyzer, Measurement
from coordinator.analysis.model import UPLOAD_SERIES

TARGET = "http://twitter.example/upload"
LINE = 2_500_000.0


def _m(at: float, group: str, agent: str, bps: float, control: float, direction: str) -> Measurement:
    return Measurement(
        at=at, group=group, agent_id=agent, target=TARGET, kind="throughput", failure=None,
        duration_s=2.0, throughput_bps=bps, control_bps=control, direction=direction,  # type: ignore[arg-type]
        country=group.upper(),
    )  # fmt: skip


def _rounds(a: Analyzer, rates: dict[tuple[str, str], float], rounds: range = range(3)) -> None:
    """``rates[(group, direction)]``: the test's rate; each control runs at LINE."""
    for r in rounds:
        for (group, direction), bps in rates.items():
            for i in (1, 2):
                jitter = 1 + 0.02 * ((r + i) % 3)
                a.add(_m(r * 10.0 + i, group, f"{group}-{i}", bps * jitter, LINE * jitter, direction))


def _by_group(a: Analyzer, now: float) -> dict[str, object]:
    return {v.group: v for v in a.evaluate(now).regions}


def test_an_upload_throttle_is_throttled_upload_and_the_downloads_stay_ok() -> None:
    a = Analyzer()
    rates = {(g, "download"): LINE for g in ("ru", "de", "us")}
    rates.update({("ru", "upload"): 16_000.0, ("de", "upload"): LINE, ("us", "upload"): LINE})
    _rounds(a, rates)
    v = _by_group(a, 30.0)
    ru, de = v["ru"], v["de"]
    assert ru.verdict == "throttled" and ru.direction == "upload", ru  # type: ignore[attr-defined]
    assert ru.reason.startswith("upload: "), ru.reason  # type: ignore[attr-defined]
    assert ru.upload_ratio == pytest.approx(16_000 / LINE, rel=0.05)  # type: ignore[attr-defined]
    assert ru.ratio == pytest.approx(1.0, rel=0.05)  # type: ignore[attr-defined]
    assert de.verdict == "ok" and de.direction == "", de  # type: ignore[attr-defined]


def test_downloads_and_uploads_are_not_pooled() -> None:
    """Slow uploads next to fast downloads of the same URL: pooled, the median of the mix
    could land either side; kept apart, the downloads are ok and the uploads throttled."""
    a = Analyzer()
    _rounds(a, {("ru", "download"): LINE, ("ru", "upload"): 16_000.0,
                ("de", "download"): LINE, ("de", "upload"): LINE})  # fmt: skip
    snap = a.evaluate(30.0)
    kinds = {(s.group, s.kind) for s in snap.success}
    assert ("ru", "throughput") in kinds and ("ru", UPLOAD_SERIES) in kinds
    ru = next(v for v in snap.regions if v.group == "ru")
    assert ru.throughput_bps == pytest.approx(LINE, rel=0.05)
    assert ru.upload_bps == pytest.approx(16_000, rel=0.05)


def test_both_directions_throttled() -> None:
    a = Analyzer()
    _rounds(a, {("ru", "download"): 16_000.0, ("ru", "upload"): 16_000.0,
                ("de", "download"): LINE, ("de", "upload"): LINE})  # fmt: skip
    ru = _by_group(a, 30.0)["ru"]
    assert ru.verdict == "throttled" and ru.direction == "download,upload"  # type: ignore[attr-defined]
    assert "download: " in ru.reason and "; upload: " in ru.reason  # type: ignore[attr-defined]


def test_slow_uploads_everywhere_are_degraded_not_throttled() -> None:
    a = Analyzer()
    _rounds(a, {(g, "upload"): 16_000.0 for g in ("ru", "de", "us")})
    snap = a.evaluate(30.0)
    assert all(v.verdict == "degraded" and v.direction == "upload" for v in snap.regions), snap.regions
    (t,) = snap.targets
    assert t.degraded and t.degraded_reason.startswith("upload: slow from every group"), t


def test_an_upload_of_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="only throughput uploads"):
        Measurement(at=0.0, group="g", agent_id="a", target="t", kind="http", failure=None,
                    duration_s=1.0, direction="upload")  # fmt: skip
    with pytest.raises(ValueError, match=r"Measurement\.direction"):
        Measurement(at=0.0, group="g", agent_id="a", target="t", kind="throughput",
                    failure=None, duration_s=1.0, direction="sideways")  # type: ignore[arg-type]  # fmt: skip
