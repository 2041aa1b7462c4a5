from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from tests.probes.servers import http_server, read_request, tcp_server


def vantage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vantage.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["probe", "smoke", "example.com"], "kind"),
        (["probe", "tcp", "example.com"], "target"),
        (["probe", "tcp", "example.com:1", "-o", "colour=red"], "options.colour"),
        (["probe", "tcp", "example.com:1", "-o", "colour"], "--option"),
    ],
)
async def test_usage_errors_are_one_line_exit_2(args: list[str], names: str) -> None:
    done = await asyncio.to_thread(vantage, *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in done.stderr


async def test_json_has_the_wire_names() -> None:
    async with http_server() as port:
        done = await asyncio.to_thread(
            vantage, "probe", "http", f"http://127.0.0.1:{port}/ok", "--allow-private-targets", "--json"
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"kind", "target", "failure", "failure_detail", "duration_s", "data"}
    assert result["kind"] == "http" and result["failure"] == "" and result["data"]["status"] == 200


async def test_readable_output_and_failure_exit_1() -> None:
    async with http_server() as port:
        ok = await asyncio.to_thread(
            vantage, "probe", "throughput", f"http://127.0.0.1:{port}/bytes/100000", "--allow-private-targets"
        )
        forbidden = await asyncio.to_thread(vantage, "probe", "tcp", f"127.0.0.1:{port}")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"throughput http://127.0.0.1:{port}/bytes/100000: ok in ")
    assert "bytes: 100000" in ok.stdout and "bytes_per_second:" in ok.stdout
    assert forbidden.returncode == 1
    assert "FAILED target_forbidden" in forbidden.stdout


async def test_a_probed_servers_escape_sequences_never_reach_the_terminal() -> None:
    """The reason phrase and the Server and Via headers are the server's to choose: an OSC
    title set, CSI, a C1 control and the right-to-left override come out as ``?``."""
    evil = "\x1b]0;pwned\x07 \x1b[2J\u202e\x9b"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        head = (
            f"HTTP/1.1 403 Forbidden{evil}\r\nServer: srv{evil}\r\nVia: 1.1 via{evil}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("utf-8"))
        await writer.drain()

    async with tcp_server(handler) as port:
        done = await asyncio.to_thread(vantage, "probe", "http", f"http://127.0.0.1:{port}/", "--allow-private-targets")
    assert done.returncode == 1, done.stderr
    assert "srv" in done.stdout and "via" in done.stdout, done.stdout  # the headers are shown...
    for bad in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert bad not in done.stdout, (bad, done.stdout)  # ...cleaned
    assert "?]0;pwned?" in done.stdout
