"""agent/probes/page.py: the body features a block page is told by, from untrusted bytes."""

from __future__ import annotations

import pytest

from agent.probes import page


def test_title_is_the_first_one_decoded_and_bounded() -> None:
    found = page.features(b"<TITLE lang=en>A &lt;b&gt;\x00\r\n title</TITLE><title>second</title>")
    assert found.title == "A <b> title"  # entities, control characters and runs of space
    long = page.features(b"<title>" + b"x" * 10_000 + b"</title>")
    assert long.title == "x" * page.MAX_TITLE
    assert page.features(b"<title>never closed").title == ""


def test_link_hosts_are_distinct_lower_case_plausible_and_capped() -> None:
    body = b" ".join(f"http://h{i}.example/p".encode() for i in range(40))
    body = b"https://A.example:8443/x HTTP://a.example/ http://-bad/ http://" + b"y" * 300 + b" " + body
    hosts = page.features(body).link_hosts
    assert hosts[0] == "a.example" and hosts.count("a.example") == 1
    assert "-bad" not in hosts and all(len(h) <= 253 for h in hosts)
    assert len(hosts) == page.MAX_HOSTS


def test_refresh_url_forms() -> None:
    assert page.features(b'<meta http-equiv="refresh" content="0;url=http://b.example/x">').refresh_url == (
        "http://b.example/x"
    )
    assert page.features(b"<meta content='3' http-equiv=Refresh>").refresh_url == ""
    assert page.features(b'<meta name="x" content="url=http://no.example">').refresh_url == ""


def test_a_long_meta_tag_does_not_hide_a_later_refresh() -> None:
    csp = b'<meta http-equiv="Content-Security-Policy" content="' + b"x" * 3000 + b'">'
    found = page.features(csp + b'<meta http-equiv="refresh" content="0; url=http://block.example/">')
    assert found.refresh_url == "http://block.example/"


def test_only_the_first_bytes_are_scanned_and_any_charset_is_survived() -> None:
    late = b"x" * page.MAX_SCAN_BYTES + b"<title>late</title>"
    assert page.features(late).title == ""
    assert page.features(b"<title>\xff\xfe</title>", "no-such-charset").title == "\ufffd\ufffd"


@pytest.mark.timing
@pytest.mark.parametrize(
    "hostile",
    [b"<title>" * 9400, b"<title" * 11000, b"<meta " * 11000, b"<meta http-equiv=refresh content=" * 2000,
     b"http://" * 9400, b"<title>" + b"a" * 65_000],
)
def test_hostile_bodies_take_linear_time(hostile: bytes) -> None:
    """A server may send 64 KiB built to make a careless parser quadratic (the features are
    read on the agent's event loop). Each of these took 0.9 to 7 s with the first, regex
    based parser; linear scanning takes milliseconds. The bound is loose: 50 ms a body."""
    import time

    started = time.perf_counter()
    for _ in range(5):
        page.features(hostile[: page.MAX_SCAN_BYTES])
    assert (time.perf_counter() - started) / 5 < 0.05
