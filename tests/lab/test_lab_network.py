"""The lab's network alone (no vantage processes): shaping, breaking, teardown.

Real namespaces, veths, tc and curl; only 198.18.0.0/15 addresses inside the lab's own
namespaces.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.lab.lab import Host, Lab, LabError, list_namespaces
from tests.conftest import netns_unavailable_reason

_reason = netns_unavailable_reason() or (
    None if shutil.which("curl") else "curl is not installed (the lab test downloads with it)"
)
# Only the tests that build namespaces need root; the argument checks run everywhere.
needs_netns = pytest.mark.skipif(_reason is not None, reason=_reason or "")

RATE_BYTES = 16_250  # 130 kbit/s
PACE_BYTES = 50_000


def _network_checks() -> dict[str, object]:
    out: dict[str, object] = {}
    with Lab(regions=("ru", "de"), run_vantage=False, big_file_bytes=4_000_000) as lab:
        out["prefix"] = lab.prefix
        out["namespaces_while_up"] = [n for n in list_namespaces() if n.startswith(lab.prefix)]
        ru1, ru2 = lab.hosts_of("ru")
        de1 = lab.hosts_of("de")[0]
        lab.shape("ru", "twitter")
        lab.break_target("ru", "facebook")  # reset
        out["ru_twitter"] = lab.curl(ru1, lab.url("twitter"), max_time=4)
        out["de_twitter"] = lab.curl(de1, lab.url("twitter"), max_time=4)
        out["ru_control"] = lab.curl(ru1, lab.url("control"), max_time=4)
        out["ru_facebook"] = lab.curl(ru1, lab.url("facebook", path="/"), max_time=4)
        out["de_facebook"] = lab.curl(de1, lab.url("facebook", path="/"), max_time=4)
        out["ru_twitter_https_index"] = lab.curl(ru2, lab.url("twitter", https=True, path="/"))
        lab.break_target("ru", "facebook", "drop")
        out["ru_facebook_drop"] = lab.curl(ru2, lab.url("facebook", path="/"), max_time=2)
        lab.break_target("ru", "facebook", "unreachable")
        out["ru_facebook_unreachable"] = lab.curl(ru2, lab.url("facebook", path="/"), max_time=2)
        lab.unbreak("ru", "facebook")
        out["ru_facebook_fixed"] = lab.curl(ru2, lab.url("facebook", path="/"), max_time=4)
        lab.take_down("kremlin")
        out["de_kremlin_down"] = lab.curl(de1, lab.url("kremlin", path="/"), max_time=2)
        lab.unshape("ru", "twitter")
        out["ru_twitter_unshaped"] = lab.curl(ru2, lab.url("twitter"), max_time=4)
        lab.pace("cdn", PACE_BYTES)  # slow at the target side, for every region
        out["ru_cdn_paced"] = lab.curl(ru1, lab.url("cdn"), max_time=3)
        out["de_cdn_paced"] = lab.curl(de1, lab.url("cdn"), max_time=3)
        lab.unpace("cdn")
        out["de_cdn_unpaced"] = lab.curl(de1, lab.url("cdn"), max_time=3)
    out["namespaces_after"] = [n for n in list_namespaces() if n.startswith(str(out["prefix"]))]
    return out


@pytest.mark.netns
@needs_netns
async def test_lab_shapes_breaks_and_tears_down() -> None:
    r = await asyncio.to_thread(_network_checks)
    assert len(r["namespaces_while_up"]) == 1 + 3 + 4  # core, tr1, tr2, www, 4 hosts  # type: ignore[arg-type]
    ru = r["ru_twitter"]
    # tc counts whole frames: payload goodput at 130 kbit/s on the wire is ~15.5-16.3 kB/s
    assert abs(ru["speed"] - RATE_BYTES) / RATE_BYTES <= 0.2, r  # type: ignore[index]
    assert r["de_twitter"]["exitcode"] == 0 and r["de_twitter"]["speed"] > 20 * RATE_BYTES, r  # type: ignore[index]
    assert r["ru_control"]["exitcode"] == 0 and r["ru_control"]["speed"] > 20 * RATE_BYTES, r  # type: ignore[index]
    assert r["ru_facebook"]["exitcode"] == 56, r  # type: ignore[index]  # recv failure: reset
    assert r["de_facebook"]["exitcode"] == 0 and r["de_facebook"]["size"] > 0, r  # type: ignore[index]
    assert r["ru_twitter_https_index"]["exitcode"] == 0, r  # type: ignore[index]
    assert r["ru_facebook_drop"]["exitcode"] == 28, r  # type: ignore[index]  # timeout
    assert r["ru_facebook_unreachable"]["exitcode"] == 7, r  # type: ignore[index]
    assert r["ru_facebook_fixed"]["exitcode"] == 0, r  # type: ignore[index]
    assert r["de_kremlin_down"]["exitcode"] == 7, r  # type: ignore[index]  # refused
    assert r["ru_twitter_unshaped"]["speed"] > 20 * RATE_BYTES, r  # type: ignore[index]
    # the paced target is as slow from ru as from de: its own server writes at the rate
    for key in ("ru_cdn_paced", "de_cdn_paced"):
        assert r[key]["exitcode"] == 28, r  # type: ignore[index]  # stopped at max_time
        assert abs(r[key]["speed"] - PACE_BYTES) / PACE_BYTES <= 0.15, r  # type: ignore[index]
    assert r["de_cdn_unpaced"]["speed"] > 20 * PACE_BYTES, r  # type: ignore[index]
    assert r["namespaces_after"] == [], r


def _curl_upload(lab: Lab, host: Host, url: str, body: Path, max_time: float = 4.0) -> dict[str, float]:
    proc = lab.exec_in(
        host.ns,
        ["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "-m", str(max_time), "--data-binary",
         f"@{body}", "-H", "Content-Type: application/octet-stream", "-w",
         "%{size_upload} %{speed_upload} %{exitcode}", url],
        timeout_s=max_time + 10,
    )  # fmt: skip
    size, speed, code = proc.stdout.split()
    return {"size": float(size), "speed": float(speed), "exitcode": float(code)}


def _evidence_network_checks() -> dict[str, dict[str, float]]:
    """The policer, the upload throttle and the congested region, measured with curl."""
    out: dict[str, dict[str, float]] = {}
    with Lab(regions=("ru", "de", "br"), agents_per_region=1, run_vantage=False,
             big_file_bytes=6_000_000, line_rate_bit=20_000_000,
             uplink_rate_bit=20_000_000) as lab:  # fmt: skip
        (ru,), (de,), (br,) = lab.hosts_of("ru"), lab.hosts_of("de"), lab.hosts_of("br")
        body = lab.dir / "www" / "big.bin"
        lab.police("ru", "twitter", 1_000_000, 1_000_000)
        # the first 900 kB come out of the bucket at line speed; what follows at the rate
        out["ru_burst"] = lab.curl(ru, lab.url("twitter"), max_time=0.8)
        out["ru_after_burst"] = lab.curl(ru, lab.url("twitter"), max_time=3)
        out["de_twitter"] = lab.curl(de, lab.url("twitter"), max_time=2)
        lab.shape_upload("de", "control", 1_000_000)
        out["de_upload_control"] = _curl_upload(lab, de, lab.url("control", path="/upload"), body)
        out["ru_upload_control"] = _curl_upload(lab, ru, lab.url("control", path="/upload"), body)
        lab.unshape_upload("de", "control")
        out["de_upload_unshaped"] = _curl_upload(lab, de, lab.url("control", path="/upload"), body)
        lab.congest("br", 3_000_000)
        out["br_control"] = lab.curl(br, lab.url("control"), max_time=3)
        out["br_twitter"] = lab.curl(br, lab.url("twitter"), max_time=3)
        out["br_upload"] = _curl_upload(lab, br, lab.url("control", path="/upload"), body)
        lab.uncongest("br")
        out["br_uncongested"] = lab.curl(br, lab.url("control"), max_time=2)
        print(lab.describe())
    return out


@pytest.mark.netns
@needs_netns
async def test_lab_polices_throttles_uploads_and_congests() -> None:
    r = await asyncio.to_thread(_evidence_network_checks)
    print(r)
    line = 20_000_000 / 8
    # the policer: a burst at line speed (under a second for 1 MB), then 1 Mbit/s
    assert r["ru_burst"]["size"] > 700_000, r
    assert r["ru_after_burst"]["speed"] < 1.3 * 125_000, r
    # TCP under a drop policer gets less than the policed rate, and less again on a loaded
    # machine: 54 kB/s (0.43) was seen in a CI run beside three other labs
    assert r["ru_after_burst"]["speed"] > 0.35 * 125_000, r
    assert r["de_twitter"]["speed"] > 0.6 * line, r
    # uploads from de to control at 1 Mbit/s; from ru at the line (curl counts what it
    # wrote, which runs ahead of the wire by the send buffer: the bounds allow for it)
    assert r["de_upload_control"]["speed"] < 2.5 * 125_000, r
    assert r["ru_upload_control"]["speed"] > 0.6 * line, r
    assert r["de_upload_unshaped"]["speed"] > 0.6 * line, r
    # the congested region: every target alike, at its line's 3 Mbit/s, both ways
    for key in ("br_control", "br_twitter"):
        assert abs(r[key]["speed"] - 375_000) / 375_000 <= 0.25, r
    assert r["br_upload"]["speed"] < 2 * 375_000, r  # curl: plus the send buffer
    assert r["br_uncongested"]["speed"] > 0.6 * line, r


def _two_ru_hosts_at_once() -> list[dict[str, float]]:
    with Lab(regions=("ru",), run_vantage=False, big_file_bytes=1_000_000) as lab:
        lab.shape("ru", "twitter")
        procs = [
            subprocess.Popen(
                ["ip", "netns", "exec", h.ns, "curl", "-s", "-o", "/dev/null", "--noproxy", "*",
                 "-m", "4", "-w", "%{size_download} %{speed_download}", lab.url("twitter")],
                stdout=subprocess.PIPE, text=True,
            )
            for h in lab.hosts_of("ru")
        ]
        outs = [p.communicate(timeout=15)[0].split() for p in procs]
    return [{"size": float(a), "speed": float(b)} for a, b in outs]


@pytest.mark.netns
@needs_netns
async def test_throttle_is_per_host_not_shared_by_the_region() -> None:
    results = await asyncio.to_thread(_two_ru_hosts_at_once)
    for r in results:
        assert abs(r["speed"] - RATE_BYTES) / RATE_BYTES <= 0.2, results


def _down_removes_leftovers() -> tuple[int, list[str]]:
    prefix = "vlab-t3st-"
    for ns in (f"{prefix}core", f"{prefix}ru-1"):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "deploy.lab", "down", "--prefix", prefix],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return proc.returncode, [n for n in list_namespaces() if n.startswith(prefix)]


@pytest.mark.netns
@needs_netns
async def test_down_removes_leftover_namespaces_by_prefix() -> None:
    code, left = await asyncio.to_thread(_down_removes_leftovers)
    assert code == 0
    assert left == []


def test_bad_lab_arguments_name_the_field() -> None:
    with pytest.raises(LabError, match="regions"):
        Lab(regions=("RU!",))
    with pytest.raises(LabError, match="agents_per_region"):
        Lab(agents_per_region=0)
    lab = Lab(run_vantage=False)
    try:
        with pytest.raises(LabError, match="region"):
            lab.hosts_of("mars")
        with pytest.raises(LabError, match="target"):
            lab.url("myspace")
        with pytest.raises(LabError, match="rate_bytes"):
            lab.pace("cdn", 10)
    finally:
        lab.close()
