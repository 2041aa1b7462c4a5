"""Issue 10's lab, part 1: a policer with a burst, an upload throttle and a congested
region, each caught in its region and nowhere else, with real vantage processes.

Regions ru, de, us, br (2 agents each, one network namespace per agent host), every host
with a 20 Mbit/s line both ways. Targets video, photos and control (the lab's target
server: /big.bin and POST /upload).

- **ru -> video: a policer** (tc tbf under the target's class): the first 1 MB at line
  speed, then 1 Mbit/s; the bucket refills while idle, so every round's download gets
  its burst again. Must be ``throttled`` (download) in ru, judged by the sustained rate.
- **us -> photos: an upload throttle** (HTB on the hosts' upstream, by destination):
  uploads at 1 Mbit/s. Must be ``throttled`` (upload) in us; downloads are untouched.
- **br: congested** (its whole lines at 3 Mbit/s both ways): every target, the control
  among them, is slow alike. Must stay not throttled, both ways.

Every evaluation while the faults stand is read, and no region other than the faulty
one may show throttled, blocked or degraded for any target at any time. Then the faults
are removed and both verdicts must clear. The figures (time to each verdict, time to
clear, the rates) are printed for the issue's note.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from deploy.lab.lab import Lab, parse_metrics
from tests.conftest import netns_unavailable_reason
from tests.lab.helpers import VerdictWatch, agents_connected, by_labels, wait_throttles_cleared

_reason = netns_unavailable_reason()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.e2e,
    pytest.mark.skipif(_reason is not None, reason=_reason or ""),
]

ROUND_S = 10
MAX_SECONDS = 4
REGIONS = ("ru", "de", "us", "br")
LINE_RATE_BIT = 20_000_000
POLICE_RATE_BIT = 1_000_000
POLICE_BURST = 1_000_000
UPLOAD_RATE_BIT = 1_000_000
CONGESTED_BIT = 3_000_000
SLACK_S = 2 * MAX_SECONDS + 5
BAD = ("throttled", "blocked", "degraded")


def _scenario() -> dict[str, Any]:
    obs: dict[str, Any] = {"false": []}
    with Lab(regions=REGIONS, agents_per_region=2, targets=("video", "photos", "control"),
             line_rate_bit=LINE_RATE_BIT, uplink_rate_bit=LINE_RATE_BIT) as lab:  # fmt: skip
        video, photos = lab.url("video"), lab.url("photos", path="/upload")
        obs["urls"] = {"video": video, "photos": photos}
        if not agents_connected(lab, REGIONS, 2):
            obs["logs"] = {n: lab.logs(n) for n in ("coord", "agent-ru-1")}
            return obs

        lab.police("ru", "video", POLICE_RATE_BIT, POLICE_BURST)
        lab.shape_upload("us", "photos", UPLOAD_RATE_BIT)
        lab.congest("br", CONGESTED_BIT)
        video_job = lab.submit("throughput", [video], every=f"{ROUND_S}s", count=40,
                   options={"control": lab.url("control"), "max_seconds": str(MAX_SECONDS)})  # fmt: skip
        lab.submit("throughput", [photos], every=f"{ROUND_S}s", count=40,
                   options={"control": lab.url("control", path="/upload"), "direction": "upload",
                            "max_seconds": str(MAX_SECONDS)})  # fmt: skip
        expected = {("ru", video): "download", ("us", photos): "upload"}
        watch = VerdictWatch(
            lab, detail="direction", expected=expected, pairs={(r, t) for r in REGIONS for t in (video, photos)},
            bad=BAD, false=obs["false"], is_false=lambda pair, d: expected.get(pair) != d,
        )  # fmt: skip
        # until both verdicts are in and every other pair has been judged ok
        watch.until_judged(4 * ROUND_S + SLACK_S + 20)
        obs["verdict_s"] = dict(watch.first)
        obs["all_ok_s"] = time.monotonic() - watch.started
        obs["at_verdict"] = obs["last_metrics"] = watch.last_metrics
        obs["verdicts_table"] = lab.vantage("verdicts").stdout
        # what the policed downloads' mean would have said, next to the sustained rate
        results = lab.vantage("results", video_job["job_id"], "--json").stdout
        obs["ru_video_ratios"] = [
            (d["ratio"], d["sustained_ratio"], d["drop_at_s"], d["stopped_by"])
            for line in results.splitlines() if line.strip()
            for r in [json.loads(line)] if r["place"]["region"] == "ru" and r["result"]["data"]
            for d in [r["result"]["data"]]
        ][-4:]
        obs["results_table"] = lab.vantage("results", video_job["job_id"]).stdout
        # a few more rounds with the faults standing: nothing else may turn
        watch.hold(2 * ROUND_S)

        lab.unshape("ru", "video")
        lab.unshape_upload("us", "photos")
        # from here on, any bad verdict but the two fading ones is false
        obs["cleared_s"] = wait_throttles_cleared(
            lab, {("ru", video), ("us", photos)}, 6 * ROUND_S + SLACK_S + 30, obs["false"]
        )
        obs["at_clear"] = parse_metrics(lab.metrics_text())
        obs["logs"] = {n: lab.logs(n, tail=15) for n in ("coord", "agent-ru-1", "agent-us-1")}
    return obs


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    return _scenario()


def _figures(obs: dict[str, Any]) -> str:
    m = obs.get("at_verdict", {})
    bps = by_labels(m, "vantage_throughput_bytes_per_second", "region", "target", "direction")
    ratio = by_labels(m, "vantage_throughput_ratio", "region", "target", "direction")
    return (
        f"verdicts after {obs.get('verdict_s')} s (all others ok after {obs.get('all_ok_s')} s); "
        f"cleared after {obs.get('cleared_s')} s; false verdicts: {obs.get('false')}\n"
        f"bps={bps}\nratio={ratio}\nru video (mean ratio, sustained ratio, drop at, "
        f"stopped by): {obs.get('ru_video_ratios')}\n{obs.get('verdicts_table')}"
    )


@pytest.mark.timeout(600)
def test_policer_upload_throttle_and_congestion_each_in_its_region(scenario: dict[str, Any]) -> None:
    obs = scenario
    assert "at_verdict" in obs, f"the agents never all connected: {obs}"
    video, photos = obs["urls"]["video"], obs["urls"]["photos"]
    figures = _figures(obs)
    print(figures)
    # each verdict within 4 rounds (plus one round's transfers for the results to land)
    assert set(obs["verdict_s"]) == {("ru", video), ("us", photos)}, figures
    assert all(t <= 4 * ROUND_S + SLACK_S for t in obs["verdict_s"].values()), figures
    # and nothing anywhere else, the congested region included, at any time
    assert obs["false"] == [], figures
    m = obs["at_verdict"]
    info = {(r, t): (v, d) for (r, t, v, d), x in by_labels(
        m, "vantage_verdict_info", "region", "target", "verdict", "direction").items() if x}  # fmt: skip
    assert info[("ru", video)] == ("throttled", "download"), figures
    assert info[("us", photos)] == ("throttled", "upload"), figures
    for r in REGIONS:
        for t in (video, photos):
            if (r, t) not in (("ru", video), ("us", photos)):
                assert info[(r, t)] == ("ok", ""), (r, t, figures)
    bps = by_labels(m, "vantage_throughput_bytes_per_second", "region", "target", "direction")
    # the policed download is judged by its sustained rate, the policer's (payload ~4%
    # under; 119-120 kB/s on an idle machine), not the mean with the burst in it (2 to 7
    # times more). The lower bounds are loose: under CI's load a 1 Mbit/s class with TCP
    # losses delivered as little as 64 kB/s to the uploads.
    police, upload = POLICE_RATE_BIT / 8, UPLOAD_RATE_BIT / 8
    assert 0.3 * police <= bps[("ru", video, "download")] <= 1.3 * police, figures
    assert 0.3 * upload <= bps[("us", photos, "upload")] <= 1.3 * upload, figures
    # the congested region is slow, at its line, for the target and the control alike
    for t, d in ((video, "download"), (photos, "upload")):
        assert bps[("br", t, d)] < 0.25 * LINE_RATE_BIT / 8, figures
    table = obs["verdicts_table"]
    assert "throttled (upload)" in table, table
    assert "dropped after a fast start" in table, table
    # once the faults are removed both verdicts clear within 6 rounds
    assert set(obs["cleared_s"]) == {("ru", video), ("us", photos)}, figures
    assert all(t <= 6 * ROUND_S + SLACK_S for t in obs["cleared_s"].values()), figures
