"""A task's ca_file: read only from the agent's --ca-dir, only a regular file, and refused
with one generic reason whatever is wrong (the submitter learns nothing of the host)."""

from __future__ import annotations

import os
import ssl
import threading
import time
from pathlib import Path

import pytest
import trustme

from agent.probes.base import Limits, SpecError
from agent.probes.tls import CA_FILE_UNUSABLE, make_context, read_ca_file


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cas"
    d.mkdir()
    trustme.CA().cert_pem.write_to_path(str(d / "lab.pem"))
    return d


def test_a_pem_in_the_directory_is_read_by_name_or_by_path(ca_dir: Path) -> None:
    assert "BEGIN CERTIFICATE" in read_ca_file("lab.pem", str(ca_dir))
    assert "BEGIN CERTIFICATE" in read_ca_file(str(ca_dir / "lab.pem"), str(ca_dir))
    make_context(verify=True, sni="x", ca_file="lab.pem", alpn=(), ca_dir=str(ca_dir))


def _refusal(ca_file: str, ca_dir: str | None) -> str:
    with pytest.raises(SpecError) as info:
        read_ca_file(ca_file, ca_dir)
    assert info.value.field == "options.ca_file"
    return info.value.reason


def test_every_refusal_reads_the_same(ca_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.pem"
    trustme.CA().cert_pem.write_to_path(str(outside))
    (ca_dir / "link.pem").symlink_to(outside)
    (ca_dir / "notes.txt").write_text("not a certificate\n")
    (ca_dir / "big.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n" + b"A" * (1024 * 1024 + 10))
    (ca_dir / "sub").mkdir()
    cases = {
        "no --ca-dir at all": (str(ca_dir / "lab.pem"), None),
        "a real file outside the directory": (str(outside), str(ca_dir)),
        "a path climbing out": ("../outside.pem", str(ca_dir)),
        "a symbolic link out of the directory": ("link.pem", str(ca_dir)),
        "a system file": ("/etc/passwd", str(ca_dir)),
        "a file that does not exist": ("missing.pem", str(ca_dir)),
        "not PEM": ("notes.txt", str(ca_dir)),
        "larger than 1 MiB": ("big.pem", str(ca_dir)),
        "a directory": ("sub", str(ca_dir)),
    }
    reasons = {name: _refusal(*args) for name, args in cases.items()}
    assert set(reasons.values()) == {CA_FILE_UNUSABLE}, reasons
    for name, reason in reasons.items():
        assert "passwd" not in reason and "exist" not in reason, name


def test_a_fifo_is_refused_at_once_instead_of_pinning_a_thread(ca_dir: Path) -> None:
    os.mkfifo(ca_dir / "pipe.pem")
    done = threading.Event()
    outcome: list[str] = []

    def read() -> None:
        try:
            read_ca_file("pipe.pem", str(ca_dir))
        except SpecError as exc:
            outcome.append(exc.reason)
        done.set()

    started = time.monotonic()
    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked (no writer ever comes)"
    assert outcome == [CA_FILE_UNUSABLE]
    assert time.monotonic() - started < 5


async def test_a_probe_with_a_forbidden_ca_file_reports_the_generic_reason(ca_dir: Path) -> None:
    from agent.probes import parse_spec, run_probe

    limits = Limits(allow_private_targets=True, ca_dir=str(ca_dir))
    spec = parse_spec("tls", "127.0.0.1:9", {"ca_file": "/etc/passwd"}, limits)
    with pytest.raises(SpecError) as info:
        await run_probe(spec, limits)
    assert info.value.reason == CA_FILE_UNUSABLE


def test_contexts_are_made_once_per_setting_and_a_changed_ca_file_gives_a_new_one(ca_dir: Path) -> None:
    """Loading CA certificates costs ~20 ms of CPU: the same settings share one context
    (agent/probes/tls.py CONTEXT_CACHE), but the ca_file is read every time."""
    system = make_context(verify=True, sni="x", ca_file=None, alpn=("http/1.1",))
    assert make_context(verify=True, sni="y", ca_file=None, alpn=("http/1.1",)) is system
    assert make_context(verify=True, sni="", ca_file=None, alpn=("http/1.1",)) is not system  # no name check
    assert make_context(verify=False, sni="x", ca_file=None, alpn=("http/1.1",)) is not system
    lab = make_context(verify=True, sni="x", ca_file="lab.pem", alpn=(), ca_dir=str(ca_dir))
    assert lab is not system and lab.check_hostname and lab.verify_mode is ssl.CERT_REQUIRED
    assert make_context(verify=True, sni="x", ca_file="lab.pem", alpn=(), ca_dir=str(ca_dir)) is lab
    (ca_dir / "lab.pem").write_text(trustme.CA().cert_pem.bytes().decode())  # another CA, same name
    assert make_context(verify=True, sni="x", ca_file="lab.pem", alpn=(), ca_dir=str(ca_dir)) is not lab
