"""The agent's offline IP-to-ASN table (--asn-file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent import asn


def test_longest_prefix_wins_for_both_families(tmp_path: Path) -> None:
    path = tmp_path / "asn.txt"
    path.write_text("# a comment\n\n10.0.0.0/8 64500\n10.1.0.0/16 AS64501  # inline\n"
                    "10.1.2.3/32 as64502\n2001:db8::/32 64510\n0.0.0.0/0 64999\n")
    lookup = asn.load(path).lookup
    assert lookup("10.9.9.9") == 64500
    assert lookup("10.1.9.9") == 64501
    assert lookup("10.1.2.3") == 64502
    assert lookup("192.0.2.1") == 64999  # the default route's entry
    assert lookup("2001:db8:1::1") == 64510
    assert lookup("2001:db9::1") is None
    assert lookup("not an address") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.0/8\n", "asn.txt:1: expected 'PREFIX ASN'"),
        ("# ok\n10.0.0.0/8 sixty\n", "asn.txt:2: 'sixty' is not an AS number"),
        ("10.0.0.0/8 0\n", "is not an AS number"),
        ("10.0.0.0/8 4294967296\n", "is not an AS number"),
        ("10.0.0.0/8 \u00b2\n", "is not an AS number"),  # a Unicode digit, not ASCII
        ("10.0.0/33 64500\n", "asn.txt:1: '10.0.0/33' is not an IP prefix"),
    ],
)
def test_a_bad_line_is_an_error_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "asn.txt"
    path.write_text(text)
    with pytest.raises(asn.AsnFileError, match=message):
        asn.load(path)


def test_the_cli_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "asn.txt"
    path.write_bytes(b"10.0.0.0/8 \xff\n")
    done = subprocess.run(
        [sys.executable, "-m", "vantage.cli", "probe", "traceroute", "127.0.0.1", "--asn-file", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [f"vantage probe: error: --asn-file: {path}: not UTF-8 text"]
    missing = subprocess.run(
        [sys.executable, "-m", "vantage.cli", "probe", "traceroute", "127.0.0.1", "--asn-file", str(tmp_path / "no")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
